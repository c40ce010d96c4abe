//! The `sinergi` command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use sinergi::{
    auth::{ServiceKeys, jwk::PublicJwk, keys::SigningKey},
    client::{connect, issue_token},
    config::{Config, Overrides},
    domain::agency::KeyAlgorithm,
    server::app::App,
    server::telemetry,
    store,
};

mod cli;

use cli::{admin::AdminCommand, audit::AuditCommand};

#[derive(Parser)]
#[command(
    name = "sinergi",
    version,
    about = "Employer social-security compliance data exchange"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// See it work: a server on SQLite in ./sinergi-demo/ with the agencies of Pekalongan,
    /// Batang and Banten, thousands of fictional employers and their cases, loaded through the
    /// public RPCs; serves until Ctrl-C. A second run resumes the same world.
    Demo(DemoArgs),
    /// Run the server (gRPC, and HTTP/JSON on its own port) until SIGINT or SIGTERM.
    Serve(ConfigArgs),
    /// Print the OpenAPI 3.1 document of the HTTP/JSON door (also served at /openapi.json).
    Openapi,
    /// Apply pending database migrations, then exit.
    Migrate(ConfigArgs),
    /// Check the configuration (file, environment, flags) and print the settings in effect,
    /// secrets masked; exits non-zero on an unknown key or a bad value.
    Config(ConfigArgs),
    /// Write a new private key (PKCS#8 PEM) and print its public JWK, for RegisterKey.
    Keygen {
        /// File to write the private key to; it must not exist yet.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "ed25519")]
        algorithm: KeyKind,
    },
    /// This deployment's own signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Obtain an access token for an agency and print it (for grpcurl's -H "authorization: Bearer …").
    Token(TokenArgs),
    /// Administration: bootstrap the first administrator, manage agencies, keys and grants.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The audit log: fetch checkpoints, export entries, verify the log has not been rewritten.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyKind {
    Ed25519,
    P256,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print the public signing keys as a JWK Set (generating the key on first use, as serve does).
    Jwks(ConfigArgs),
}

#[derive(Args)]
struct DemoArgs {
    /// The demo's data directory: made by the demo, refused if it holds anything else.
    #[arg(long, default_value = "sinergi-demo")]
    dir: PathBuf,
    /// Address to listen on for gRPC.
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: std::net::SocketAddr,
    /// Address to listen on for HTTP/JSON.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http_listen: std::net::SocketAddr,
    /// Employers of the world (at least 100).
    #[arg(long, default_value_t = sinergi::demo::world::DEFAULT_EMPLOYERS)]
    employers: usize,
    /// Load the world anew instead of resuming it.
    #[arg(long)]
    reset: bool,
}

/// How to reach a server as an agency.
#[derive(Args)]
struct TokenArgs {
    /// Server address.
    #[arg(long, env = "SINERGI_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// The agency the token is for.
    #[arg(long, env = "SINERGI_AGENCY")]
    agency: String,
    /// The agency's private key: Ed25519 or P-256, PKCS#8 PEM (`sinergi keygen`, `openssl
    /// genpkey`) or SEC1 PEM (`openssl ecparam -genkey`).
    #[arg(long, env = "SINERGI_KEY_FILE")]
    key: PathBuf,
    /// The deployment's audience.
    #[arg(long, env = "SINERGI_AUDIENCE", default_value = "sinergi")]
    audience: String,
    /// Space-separated scopes to ask for; all granted scopes when absent.
    #[arg(long)]
    scope: Option<String>,
    /// Why access is needed; recorded with every call made with the token.
    #[arg(long)]
    purpose: Option<String>,
}

/// Where the configuration comes from; every flag has an environment variable.
#[derive(Args)]
struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "SINERGI_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:50051.
    #[arg(long, env = "SINERGI_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Directory holding the embedded SQLite database.
    #[arg(long, env = "SINERGI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// postgres://… for PostgreSQL (production) or sqlite://path for another SQLite file.
    #[arg(long, env = "SINERGI_DATABASE_URL")]
    database_url: Option<String>,
}

impl ConfigArgs {
    fn load(self) -> anyhow::Result<Config> {
        let overrides = Overrides {
            listen: self.listen,
            data_dir: self.data_dir,
            database_url: self.database_url,
        };
        Ok(Config::load(self.config.as_ref(), &overrides)?)
    }
}

/// A database URL with its password replaced, fit to print.
fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sinergi: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => {
            let options = sinergi::demo::DemoOptions {
                dir: args.dir,
                listen: args.listen,
                http_listen: args.http_listen,
                employers: args.employers,
                reset: args.reset,
            };
            let _telemetry = telemetry::init(&sinergi::demo::config(&options).log)?;
            sinergi::demo::run(options, shutdown_signal()).await?;
        }
        Command::Openapi => {
            use std::io::Write;
            let pool = sinergi::http::descriptor_pool()?;
            let bindings = sinergi::http::routes::Bindings::from_pool(&pool)?;
            std::io::stdout().write_all(&sinergi::http::openapi::document(&pool, &bindings))?;
        }
        Command::Serve(args) => {
            let config = args.load()?;
            let _telemetry = telemetry::init(&config.log)?;
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            let app = App::build(config, listener).await?;
            app.serve(shutdown_signal()).await?;
        }
        Command::Config(args) => {
            let mut config = args.load()?;
            if config.auth.signing_key_pem.is_some() {
                config.auth.signing_key_pem = Some("(set)".into());
            }
            config.database_url = config.database_url.as_deref().map(mask_password);
            println!("{}", serde_json::to_string_pretty(&config)?);
        }
        Command::Migrate(args) => {
            let config = args.load()?;
            let _telemetry = telemetry::init(&config.log)?;
            let store = store::connect(&config).await?;
            store.migrate().await?;
            tracing::info!(backend = store.backend(), "migrations applied");
        }
        Command::Keygen { out, algorithm } => {
            let algorithm = match algorithm {
                KeyKind::Ed25519 => KeyAlgorithm::EdDsa,
                KeyKind::P256 => KeyAlgorithm::Es256,
            };
            let (key, pem) = SigningKey::generate(algorithm)?;
            SigningKey::write_pem(&out, &pem)?;
            println!("{}", key.public().to_published_json());
        }
        Command::Keys {
            command: KeysCommand::Jwks(args),
        } => {
            let config = args.load()?;
            let keys = ServiceKeys::load(&config.auth, &config.data_dir)?;
            let published: Vec<Value> = keys
                .public_keys()
                .iter()
                .map(PublicJwk::to_published_json)
                .collect();
            println!("{}", json!({ "keys": published }));
        }
        Command::Token(args) => {
            let key = SigningKey::read(&args.key)?;
            let issued = issue_token(
                connect(&args.server).await?,
                &args.agency,
                &key,
                &args.audience,
                args.scope.as_deref(),
                args.purpose.as_deref(),
            )
            .await?;
            println!("{}", issued.access_token);
        }
        Command::Admin { command } => cli::admin::admin(command).await?,
        Command::Audit { command } => cli::audit::audit(command).await?,
    }
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what Kubernetes sends before stopping a pod).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    use super::mask_password;

    #[test]
    fn printed_database_urls_hide_their_password() {
        assert_eq!(
            mask_password("postgres://sinergi:s3cr%40t@db.example:5432/sinergi?sslmode=require"),
            "postgres://sinergi:***@db.example:5432/sinergi?sslmode=require"
        );
        assert_eq!(
            mask_password("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(mask_password("sqlite://data/s.db"), "sqlite://data/s.db");
    }
}

//! The `sinergi` command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use sinergi::{
    app::App,
    config::{Config, Overrides},
    store, telemetry,
};

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
    /// Run the gRPC server until SIGINT or SIGTERM.
    Serve(ConfigArgs),
    /// Apply pending database migrations, then exit.
    Migrate(ConfigArgs),
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
        Command::Serve(args) => {
            let config = args.load()?;
            telemetry::init(&config.log);
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            let app = App::build(config, listener).await?;
            app.serve(shutdown_signal()).await?;
        }
        Command::Migrate(args) => {
            let config = args.load()?;
            telemetry::init(&config.log);
            let store = store::connect(&config).await?;
            store.migrate().await?;
            tracing::info!(backend = store.backend(), "migrations applied");
        }
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

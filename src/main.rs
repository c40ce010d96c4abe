//! The `sinergi` command line.

use std::{collections::HashMap, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use sinergi::{
    auth::{
        ServiceKeys, bootstrap_admin,
        jwk::PublicJwk,
        keys::{SigningKey, public_key_from_text},
    },
    client::{BearerToken, connect, issue_token},
    config::{Config, Overrides},
    domain::{
        agency::{AgencyKind, KeyAlgorithm},
        scope::Scope,
    },
    proto::{self, agency_admin_service_client::AgencyAdminServiceClient},
    server::app::App,
    server::telemetry,
    store,
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

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

#[derive(Subcommand)]
enum AuditCommand {
    /// Print the current signed checkpoint.
    Checkpoint {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Verify the log. With --checkpoint: fetch the current checkpoint, check its signature and
    /// that the log only grew since the checkpoint saved in the file, then save the new one.
    /// With --entries: recompute the root from an export and check it against the export's
    /// checkpoint (asking the server, when credentials are given, to locate a bad entry).
    Verify {
        #[command(flatten)]
        remote: RemoteArgs,
        /// File holding the last verified checkpoint (created on first use; the server's key is
        /// pinned beside it in <file>.key).
        #[arg(long, required_unless_present = "entries")]
        checkpoint: Option<PathBuf>,
        /// Also fetch every entry and check it against the signed root.
        #[arg(long)]
        all_entries: bool,
        /// An export written by `sinergi audit export` to verify instead.
        #[arg(long, conflicts_with_all = ["checkpoint", "all_entries"])]
        entries: Option<PathBuf>,
        /// The note verifier key to trust (`<name>+<id>+<key>`); otherwise the pinned one, or
        /// the server's on first use. After the server's key was rotated, pass the new key
        /// (learned out of band): the saved checkpoint is still checked under the old one.
        #[arg(long)]
        verifier_key: Option<String>,
    },
    /// Write the current checkpoint and every entry it covers to a file (JSON lines).
    Export {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        out: PathBuf,
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

/// Credentials for administration over gRPC: a token, or an agency key to obtain one.
#[derive(Args)]
struct RemoteArgs {
    /// Server address.
    #[arg(long, env = "SINERGI_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// An access token with the admin scope.
    #[arg(long, env = "SINERGI_TOKEN", conflicts_with_all = ["agency", "key"])]
    token: Option<String>,
    /// The administrator agency, to obtain a token with --key.
    #[arg(long, env = "SINERGI_AGENCY", requires = "key")]
    agency: Option<String>,
    /// The administrator agency's private key.
    #[arg(long, env = "SINERGI_KEY_FILE", requires = "agency")]
    key: Option<PathBuf>,
    /// The deployment's audience.
    #[arg(long, env = "SINERGI_AUDIENCE", default_value = "sinergi")]
    audience: String,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create the first administrator agency directly in the database (only while none exists).
    Bootstrap {
        #[command(flatten)]
        config: ConfigArgs,
        /// Id of the administrator agency.
        #[arg(long, default_value = "sinergi-admin")]
        agency: String,
        #[arg(long, default_value = "Sinergi administrators")]
        display_name: String,
        /// Its key: a private key PEM (from keygen) or a public JWK JSON file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Register an agency.
    CreateAgency {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        id: String,
        #[arg(long, value_enum)]
        kind: AgencyKindArg,
        #[arg(long)]
        display_name: String,
        /// Kemendagri code of the region it serves.
        #[arg(long)]
        home_region: Option<String>,
    },
    /// Show one agency.
    GetAgency {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        id: String,
    },
    /// List agencies.
    ListAgencies {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long, value_enum)]
        kind: Option<AgencyKindArg>,
    },
    /// Disable an agency: its tokens stop working.
    DisableAgency {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        id: String,
    },
    /// Register a public key: a JWK JSON file, a public key PEM (`openssl pkey -pubout`), or a
    /// private key PEM whose public half is sent.
    RegisterKey {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        agency_id: String,
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Revoke a key.
    RevokeKey {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        agency_id: String,
        #[arg(long)]
        kid: String,
    },
    /// List an agency's keys.
    ListKeys {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        agency_id: String,
    },
    /// Grant a scope, optionally limited to regions and programmes, until a time.
    Grant {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        agency_id: String,
        #[arg(long)]
        scope: String,
        /// A region the grant is limited to (repeatable).
        #[arg(long = "region")]
        regions: Vec<String>,
        /// A programme the grant is limited to (repeatable): JKN, JKK, JKM, JHT, JP, JKP.
        #[arg(long = "programme")]
        programmes: Vec<String>,
        /// Expiry, RFC 3339 (e.g. 2027-01-01T00:00:00Z).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Withdraw a grant.
    RevokeGrant {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        id: String,
    },
    /// List grants.
    ListGrants {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        agency_id: Option<String>,
        /// Include withdrawn and lapsed grants.
        #[arg(long)]
        include_inactive: bool,
        /// Only grants of a scope the agency's kind may not hold (given before that rule;
        /// they are not honoured): revoke them.
        #[arg(long)]
        violations: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum AgencyKindArg {
    Disnaker,
    DisnakertransProvinsi,
    BpjsKesehatan,
    BpjsKetenagakerjaan,
    Kejaksaan,
    LicensingOffice,
    Forum,
    Admin,
}

impl From<AgencyKindArg> for proto::AgencyKind {
    fn from(kind: AgencyKindArg) -> Self {
        match kind {
            AgencyKindArg::Disnaker => Self::Disnaker,
            AgencyKindArg::DisnakertransProvinsi => Self::DisnakertransProvinsi,
            AgencyKindArg::BpjsKesehatan => Self::BpjsKesehatan,
            AgencyKindArg::BpjsKetenagakerjaan => Self::BpjsKetenagakerjaan,
            AgencyKindArg::Kejaksaan => Self::Kejaksaan,
            AgencyKindArg::LicensingOffice => Self::LicensingOffice,
            AgencyKindArg::Forum => Self::Forum,
            AgencyKindArg::Admin => Self::Admin,
        }
    }
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
        Command::Admin { command } => admin(command).await?,
        Command::Audit { command } => audit(command).await?,
    }
    Ok(())
}

/// The public JWK of the key in `path`: a JWK, a public key PEM, or the public half of a
/// private key PEM.
fn public_jwk_from_file(path: &PathBuf) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let key = public_key_from_text(&text).with_context(|| format!("{}", path.display()))?;
    Ok(key.canonical_json())
}

type Authed = InterceptedService<Channel, BearerToken>;

impl RemoteArgs {
    /// Whether credentials were given at all.
    fn has_credentials(&self) -> bool {
        self.token.is_some() || self.agency.is_some()
    }

    async fn client(&self) -> anyhow::Result<AgencyAdminServiceClient<Authed>> {
        Ok(AgencyAdminServiceClient::new(
            self.connect(Some("admin")).await?,
        ))
    }

    /// A channel carrying a token: the one given, or one obtained for `scope` with the key.
    async fn connect(&self, scope: Option<&str>) -> anyhow::Result<Authed> {
        let channel = connect(&self.server).await?;
        let token = match (&self.token, &self.agency, &self.key) {
            (Some(token), _, _) => token.clone(),
            (None, Some(agency), Some(key)) => {
                let key = SigningKey::read(key)?;
                issue_token(channel.clone(), agency, &key, &self.audience, scope, None)
                    .await?
                    .access_token
            }
            _ => anyhow::bail!("give --token, or --agency and --key"),
        };
        Ok(InterceptedService::new(channel, BearerToken::new(&token)?))
    }
}

fn region(code: &str) -> proto::RegionCode {
    proto::RegionCode { code: code.into() }
}

fn timestamp_text(at: Option<&prost_types::Timestamp>) -> Value {
    at.and_then(|at| time::OffsetDateTime::from_unix_timestamp(at.seconds).ok())
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map_or(Value::Null, Value::String)
}

fn agency_json(agency: &proto::Agency) -> Value {
    json!({
        "id": agency.id,
        "kind": agency.kind().as_str_name(),
        "display_name": agency.display_name,
        "home_region": agency.home_region.as_ref().map(|r| r.code.clone()),
        "disabled": agency.disabled,
        "create_time": timestamp_text(agency.create_time.as_ref()),
    })
}

fn key_json(key: &proto::AgencyKey) -> Value {
    json!({
        "agency_id": key.agency_id,
        "kid": key.kid,
        "alg": key.public_key.as_ref().map(|k| k.alg.clone()),
        "create_time": timestamp_text(key.create_time.as_ref()),
        "revoke_time": timestamp_text(key.revoke_time.as_ref()),
    })
}

fn grant_json(grant: &proto::Grant) -> Value {
    json!({
        "id": grant.id,
        "agency_id": grant.agency_id,
        "scope": grant.scope,
        "regions": grant.regions.iter().map(|r| r.code.clone()).collect::<Vec<_>>(),
        "programmes": grant.programmes().map(|p| p.as_str_name()).collect::<Vec<_>>(),
        "expire_time": timestamp_text(grant.expire_time.as_ref()),
        "granted_by": grant.granted_by,
        "revoke_time": timestamp_text(grant.revoke_time.as_ref()),
    })
}

/// Every agency, or every one of `kind`, through as many pages as it takes.
async fn all_agencies(
    client: &mut AgencyAdminServiceClient<Authed>,
    kind: Option<proto::AgencyKind>,
) -> anyhow::Result<Vec<proto::Agency>> {
    let mut agencies = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_agencies(proto::ListAgenciesRequest {
                kind: kind.map_or(0, Into::into),
                page_size: 1000,
                page_token,
            })
            .await?
            .into_inner();
        agencies.extend(page.agencies);
        if page.next_page_token.is_empty() {
            return Ok(agencies);
        }
        page_token = page.next_page_token;
    }
}

async fn admin(command: AdminCommand) -> anyhow::Result<()> {
    let printed = match command {
        AdminCommand::Bootstrap {
            config,
            agency,
            display_name,
            key,
        } => {
            let config = config.load()?;
            let store = store::connect(&config).await?;
            store.migrate().await?;
            let jwk = public_jwk_from_file(&key)?;
            let (agency, kid) = bootstrap_admin(store.as_ref(), &agency, &display_name, &jwk)
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            json!({ "agency": agency.id.as_str(), "kid": kid, "scope": "admin" })
        }
        AdminCommand::CreateAgency {
            remote,
            id,
            kind,
            display_name,
            home_region,
        } => {
            let agency = proto::Agency {
                id,
                kind: proto::AgencyKind::from(kind).into(),
                display_name,
                home_region: home_region.as_deref().map(region),
                ..Default::default()
            };
            let response = remote
                .client()
                .await?
                .create_agency(proto::CreateAgencyRequest {
                    agency: Some(agency),
                })
                .await?;
            agency_json(&response.into_inner().agency.unwrap_or_default())
        }
        AdminCommand::GetAgency { remote, id } => {
            let response = remote
                .client()
                .await?
                .get_agency(proto::GetAgencyRequest { id })
                .await?;
            agency_json(&response.into_inner().agency.unwrap_or_default())
        }
        AdminCommand::ListAgencies { remote, kind } => {
            let mut client = remote.client().await?;
            let kind = kind.map(proto::AgencyKind::from);
            Value::Array(
                all_agencies(&mut client, kind)
                    .await?
                    .iter()
                    .map(agency_json)
                    .collect(),
            )
        }
        AdminCommand::DisableAgency { remote, id } => {
            let response = remote
                .client()
                .await?
                .disable_agency(proto::DisableAgencyRequest { id })
                .await?;
            agency_json(&response.into_inner().agency.unwrap_or_default())
        }
        AdminCommand::RegisterKey {
            remote,
            agency_id,
            public_key,
        } => {
            let public_jwk = public_jwk_from_file(&public_key)?;
            let response = remote
                .client()
                .await?
                .register_key(proto::RegisterKeyRequest {
                    agency_id,
                    public_jwk,
                })
                .await?;
            key_json(&response.into_inner().key.unwrap_or_default())
        }
        AdminCommand::RevokeKey {
            remote,
            agency_id,
            kid,
        } => {
            let response = remote
                .client()
                .await?
                .revoke_key(proto::RevokeKeyRequest { agency_id, kid })
                .await?;
            key_json(&response.into_inner().key.unwrap_or_default())
        }
        AdminCommand::ListKeys { remote, agency_id } => {
            let response = remote
                .client()
                .await?
                .list_keys(proto::ListKeysRequest { agency_id })
                .await?;
            Value::Array(response.into_inner().keys.iter().map(key_json).collect())
        }
        AdminCommand::Grant {
            remote,
            agency_id,
            scope,
            regions,
            programmes,
            expires,
        } => {
            let programmes = programmes
                .iter()
                .map(|name| {
                    proto::Programme::from_str_name(&format!("PROGRAMME_{}", name.to_uppercase()))
                        .map(i32::from)
                        .with_context(|| format!("{name} is not a programme"))
                })
                .collect::<anyhow::Result<_>>()?;
            let expire_time = expires
                .map(|text| {
                    time::OffsetDateTime::parse(
                        &text,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .map(|at| prost_types::Timestamp {
                        seconds: at.unix_timestamp(),
                        nanos: 0,
                    })
                    .with_context(|| format!("{text} is not an RFC 3339 time"))
                })
                .transpose()?;
            let response = remote
                .client()
                .await?
                .grant_scope(proto::GrantScopeRequest {
                    agency_id,
                    scope,
                    regions: regions.iter().map(|code| region(code)).collect(),
                    programmes,
                    expire_time,
                })
                .await?;
            grant_json(&response.into_inner().grant.unwrap_or_default())
        }
        AdminCommand::RevokeGrant { remote, id } => {
            let response = remote
                .client()
                .await?
                .revoke_grant(proto::RevokeGrantRequest { id })
                .await?;
            grant_json(&response.into_inner().grant.unwrap_or_default())
        }
        AdminCommand::ListGrants {
            remote,
            agency_id,
            include_inactive,
            violations,
        } => {
            let mut client = remote.client().await?;
            let kinds: HashMap<String, AgencyKind> = if violations {
                all_agencies(&mut client, None)
                    .await?
                    .into_iter()
                    .filter_map(|agency| {
                        let kind =
                            sinergi::grpc::agency_admin::convert::agency_kind(agency.kind).ok()?;
                        Some((agency.id, kind))
                    })
                    .collect()
            } else {
                HashMap::new()
            };
            let mut grants = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_grants(proto::ListGrantsRequest {
                        agency_id: agency_id.clone().unwrap_or_default(),
                        include_inactive,
                        page_size: 1000,
                        page_token,
                    })
                    .await?
                    .into_inner();
                for grant in &page.grants {
                    if !violations {
                        grants.push(grant_json(grant));
                        continue;
                    }
                    let refused = kinds.get(&grant.agency_id).and_then(|kind| {
                        let scope = Scope::parse(&grant.scope).ok()?;
                        kind.check_grant(scope).err()
                    });
                    if let Some(refused) = refused {
                        let mut listed = grant_json(grant);
                        listed["violation"] = Value::String(refused.to_string());
                        grants.push(listed);
                    }
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            Value::Array(grants)
        }
    };
    println!("{}", serde_json::to_string_pretty(&printed)?);
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

/// One line of an audit export after the first.
#[derive(serde::Serialize, serde::Deserialize)]
struct ExportedEntry {
    index: u64,
    entry: String,
}

/// The first line of an audit export.
#[derive(serde::Serialize, serde::Deserialize)]
struct ExportedCheckpoint {
    checkpoint: String,
    verifier_key: String,
}

fn verification_failed(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("audit log verification FAILED: {error}")
}

async fn audit(command: AuditCommand) -> anyhow::Result<()> {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use sinergi::proto::audit_service_client::AuditServiceClient;
    use sinergi::{audit::checkpoint, client::verify};

    match command {
        AuditCommand::Checkpoint { remote } => {
            let mut client = AuditServiceClient::new(remote.connect(None).await?);
            let current = client
                .get_checkpoint(proto::GetCheckpointRequest {})
                .await?
                .into_inner();
            print!("{}", current.checkpoint);
            eprintln!("verifier key: {}", current.verifier_key);
        }
        AuditCommand::Verify {
            remote,
            checkpoint: Some(saved),
            all_entries,
            verifier_key,
            ..
        } => {
            let mut client = AuditServiceClient::new(remote.connect(None).await?);
            let verified =
                verify::verify_server(&mut client, &saved, verifier_key.as_deref(), all_entries)
                    .await
                    .map_err(verification_failed)?;
            let previous = verified.previous_size.map_or(String::new(), |size| {
                format!(", consistent with the saved checkpoint of {size}")
            });
            let recomputed = if all_entries {
                format!(", all {} entries recomputed", verified.entries_checked)
            } else {
                String::new()
            };
            println!(
                "audit log verified: {} entries, root {}{previous}{recomputed}",
                verified.checkpoint.size,
                STANDARD.encode(verified.checkpoint.root),
            );
        }
        AuditCommand::Verify {
            remote,
            entries: Some(file),
            verifier_key,
            ..
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let mut lines = text.lines();
            let head: ExportedCheckpoint =
                serde_json::from_str(lines.next().unwrap_or_default())
                    .context("the export does not start with its checkpoint")?;
            let key = verifier_key.unwrap_or(head.verifier_key);
            let signed = checkpoint::verify(&head.checkpoint, &key).map_err(verification_failed)?;
            let mut entries = Vec::new();
            for (expected, line) in lines.enumerate() {
                let exported: ExportedEntry = serde_json::from_str(line)
                    .with_context(|| format!("line {} of the export", expected + 2))?;
                if exported.index != expected as u64 {
                    return Err(verification_failed(format!(
                        "entry {expected} is missing: first bad index {expected}"
                    )));
                }
                entries.push(
                    STANDARD
                        .decode(&exported.entry)
                        .with_context(|| format!("entry {expected} is not base64"))?,
                );
            }
            let mut client = if remote.has_credentials() {
                Some(AuditServiceClient::new(remote.connect(None).await?))
            } else {
                None
            };
            verify::check_against(&entries, &signed, client.as_mut())
                .await
                .map_err(verification_failed)?;
            println!(
                "audit export verified: {} entries reproduce the signed root",
                entries.len()
            );
        }
        AuditCommand::Verify { .. } => anyhow::bail!("give --checkpoint or --entries"),
        AuditCommand::Export { remote, out } => {
            let mut client = AuditServiceClient::new(remote.connect(None).await?);
            let current = client
                .get_checkpoint(proto::GetCheckpointRequest {})
                .await?
                .into_inner();
            let mut lines = vec![serde_json::to_string(&ExportedCheckpoint {
                checkpoint: current.checkpoint,
                verifier_key: current.verifier_key,
            })?];
            let mut next = 0;
            while next < current.tree_size {
                let page = client
                    .get_entries(proto::GetEntriesRequest {
                        start: next,
                        end: current.tree_size,
                    })
                    .await?
                    .into_inner();
                for entry in page.entries {
                    lines.push(serde_json::to_string(&ExportedEntry {
                        index: next,
                        entry: STANDARD.encode(entry),
                    })?);
                    next += 1;
                }
            }
            std::fs::write(&out, lines.join("\n") + "\n")
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("exported {next} entries to {}", out.display());
        }
    }
    Ok(())
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

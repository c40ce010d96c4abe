//! Service configuration. Sources, later ones winning: built-in defaults (which need nothing: a
//! SQLite file under `./sinergi-data/`, listening on `127.0.0.1:50051`), a TOML file, `SINERGI_*`
//! environment variables (nested keys with `__`, e.g. `SINERGI_DATABASE__MAX_CONNECTIONS`), and
//! command-line flags.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the gRPC server listens on. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Directory for the embedded SQLite database (and, later, generated keys).
    pub data_dir: PathBuf,
    /// `postgres://…` for PostgreSQL, `sqlite://path` for a SQLite file elsewhere; unset means
    /// SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Whether `serve` applies pending migrations before it starts. Turn off where a separate
    /// `sinergi migrate` step (a deployment job) owns the schema.
    pub migrate_on_start: bool,
    /// How long in-flight calls may take to finish after a shutdown signal, in seconds.
    pub shutdown_grace_secs: u64,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub audit: AuditConfig,
    pub feed: FeedConfig,
    pub compliance: ComplianceConfig,
    pub limits: LimitsConfig,
    pub grpc_web: GrpcWebConfig,
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub metrics: MetricsConfig,
    pub health: HealthConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// The log's name in signed checkpoints (C2SP origin, also the signing key's name). Make
    /// it unique per deployment, e.g. `sinergi.jateng.example/audit`.
    pub origin: String,
    /// How often each replica gives the entries of writes their sequence numbers, in
    /// milliseconds, when no other call's entry has taken them into the log first: the most
    /// such an entry waits before a checkpoint can cover it.
    pub sequence_interval_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            origin: "sinergi/audit".into(),
            sequence_interval_ms: 100,
        }
    }
}

/// The change feed (`FeedService.Watch`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    /// How often each replica looks for events numbered by any replica, in milliseconds: the
    /// most an event written through another replica waits before subscribers here see it.
    pub poll_interval_ms: u64,
    /// A stream with nothing to send gets a heartbeat this often, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// Messages queued per stream for a client that reads slowly.
    pub subscriber_queue: usize,
    /// How long a full queue may stay full before the stream is ended with RESOURCE_EXHAUSTED
    /// (telling the client where to resume), in milliseconds.
    pub slow_subscriber_timeout_ms: u64,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 200,
            heartbeat_interval_ms: 15_000,
            subscriber_queue: 256,
            slow_subscriber_timeout_ms: 30_000,
        }
    }
}

/// Compliance statuses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplianceConfig {
    /// How often each replica looks for employers whose statuses a report batch of more than
    /// one chunk left to recompute, in milliseconds, when it last found none. Until then
    /// `ListNonCompliant` ranks them by their previous status; reading a status is exact
    /// throughout. Zero runs no status worker on this replica (another replica's does the
    /// work).
    pub status_interval_ms: u64,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        Self {
            status_interval_ms: 200,
        }
    }
}

/// Bounds on what one caller, one connection or the whole server can be made to hold. Each
/// answers the caller with a clear status instead of letting work queue up without bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest HTTP/2 header block (all metadata of a call) accepted, in bytes. Larger ones
    /// are refused by the HTTP/2 layer before they reach any service.
    pub max_header_list_bytes: u32,
    /// Largest message a call may send, in bytes, after decompression. For a streaming call it
    /// bounds each item, not the stream. Larger messages are refused OUT_OF_RANGE unread.
    pub max_message_bytes: usize,
    /// Calls open at once on one HTTP/2 connection; a client opening more waits for one to end.
    pub max_concurrent_streams_per_connection: u32,
    /// Streams the server may reset on one connection because of the client's protocol errors
    /// before it closes the connection (the defence against "rapid reset" floods).
    pub max_local_error_reset_streams: usize,
    /// Streams a client may open and reset before the server has accepted them.
    pub max_pending_accept_reset_streams: usize,
    /// How long a unary call (or the time to the first response of a streaming one) may take,
    /// in milliseconds, before it is answered DEADLINE_EXCEEDED. A client's shorter
    /// `grpc-timeout` wins. The bulk report stream is bounded by its items instead.
    pub request_timeout_ms: u64,
    /// Calls served at once by this replica; one more is refused at once with
    /// RESOURCE_EXHAUSTED rather than queued, so an overload cannot grow memory or latency.
    pub max_in_flight_calls: usize,
    /// Calls per second each agency may make to this replica, on average...
    pub agency_calls_per_second: u32,
    /// ...and in a burst. Calls over the limit are answered RESOURCE_EXHAUSTED, so one
    /// agency's flood cannot starve the others. Zero turns the limit off.
    pub agency_burst: u32,
    /// Token requests (`IssueToken`, the one call without an identified caller) per second from
    /// one client address to this replica, on average...
    pub token_requests_per_second_per_address: u32,
    /// ...and in a burst; zero turns the limit off. A token lasts minutes, so an agency needs
    /// few; behind a proxy that hides client addresses, raise both or turn them off.
    pub token_request_burst_per_address: u32,
    /// Interval of HTTP/2 pings on idle connections, in seconds, so dead peers are noticed
    /// and middleboxes keep the connection open.
    pub keepalive_interval_secs: u64,
    /// How long a ping may go unanswered before the connection is closed, in seconds.
    pub keepalive_timeout_secs: u64,
    /// Connections are closed gracefully after this many seconds, so clients spread over new
    /// replicas after a scale-out.
    pub max_connection_age_secs: u64,
    /// How long calls still open on a connection past its age may take to finish, in seconds.
    pub max_connection_age_grace_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_header_list_bytes: 64 * 1024,
            max_message_bytes: 4 * 1024 * 1024,
            max_concurrent_streams_per_connection: 200,
            max_local_error_reset_streams: 1024,
            max_pending_accept_reset_streams: 20,
            request_timeout_ms: 30_000,
            max_in_flight_calls: 512,
            agency_calls_per_second: 500,
            agency_burst: 1_000,
            token_requests_per_second_per_address: 10,
            token_request_burst_per_address: 50,
            keepalive_interval_secs: 30,
            keepalive_timeout_secs: 10,
            max_connection_age_secs: 30 * 60,
            max_connection_age_grace_secs: 60,
        }
    }
}

impl LimitsConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }
}

/// TLS on the gRPC port and the HTTP door. Off unless a certificate is configured; turn it on
/// wherever the network between agencies and Sinergi is not fully trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM.
    pub cert_file: Option<PathBuf>,
    /// The server's private key, PEM.
    pub key_file: Option<PathBuf>,
    /// CA certificates (PEM, several may be concatenated) that agencies' client certificates
    /// must chain to. Set, it turns on mutual TLS: access tokens obtained over a connection
    /// with a client certificate are bound to it (RFC 8705).
    pub client_ca_file: Option<PathBuf>,
    /// With `client_ca_file`: refuse connections without a client certificate. Off, clients
    /// without one may still connect, and their tokens are unbound.
    pub client_cert_required: bool,
    /// How long a client may take to finish the TLS handshake, in milliseconds; a connection
    /// that sends nothing is closed after it.
    pub handshake_timeout_ms: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            client_ca_file: None,
            client_cert_required: false,
            handshake_timeout_ms: 10_000,
        }
    }
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some() || self.key_file.is_some()
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms.max(1))
    }
}

/// Prometheus metrics, served over plain HTTP at `/metrics` on their own port, so scraping
/// needs neither gRPC, TLS nor a token, and the port can be kept inside the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// Address of the metrics endpoint. Port 0 picks a free port.
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

/// The HTTP/JSON door: every RPC at the path its `google.api.http` binding names, through the
/// same layers and audit as a gRPC call, and the OpenAPI document at `/openapi.json`. Plain
/// HTTP on its own port: on loopback by default; in a cluster, TLS ends at the ingress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub enabled: bool,
    /// Address of the HTTP/JSON listener (HTTP/1.1 and HTTP/2). Port 0 picks a free port.
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// gRPC-Web on the gRPC port, for browsers: the same services, layers and audit as gRPC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcWebConfig {
    /// Accept gRPC-Web calls, over HTTP/1.1 as well as HTTP/2.
    pub enabled: bool,
    /// Web origins whose pages may call across origins (`https://console.example.go.id`).
    /// None by default: only pages served from the server's own origin can call it.
    pub cors_allowed_origins: Vec<WebOrigin>,
}

impl Default for GrpcWebConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// A web origin as browsers send it: `scheme://host[:port]`, nothing after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebOrigin(String);

impl WebOrigin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WebOrigin {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let refused =
            || format!("`{text}` is not a web origin such as https://console.example.go.id");
        let (scheme, host) = text.split_once("://").ok_or_else(refused)?;
        let valid_host = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !matches!(scheme, "http" | "https") || !valid_host {
            return Err(refused());
        }
        Ok(Self(text))
    }
}

impl From<WebOrigin> for String {
    fn from(origin: WebOrigin) -> Self {
        origin.0
    }
}

/// The `grpc.health.v1` answers, which orchestrators use to route traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// A second, plaintext port answering only `grpc.health.v1` (no data, no token): for
    /// orchestrator probes, which cannot speak TLS, and which should not queue behind the
    /// limits that apply to agencies' calls. Unset: health answers on the main port only.
    pub probe_listen: Option<SocketAddr>,
    /// How often the database is pinged, in milliseconds. While it does not answer, health
    /// reports NOT_SERVING and calls are refused UNAVAILABLE at once instead of each waiting
    /// for a connection; the first answer turns both back.
    pub database_check_interval_ms: u64,
    /// How long one ping may take before the database counts as unreachable, in milliseconds.
    pub database_check_timeout_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            probe_listen: None,
            database_check_interval_ms: 1_000,
            database_check_timeout_ms: 2_000,
        }
    }
}

impl HealthConfig {
    pub fn check_interval(&self) -> Duration {
        Duration::from_millis(self.database_check_interval_ms.max(50))
    }

    pub fn check_timeout(&self) -> Duration {
        Duration::from_millis(self.database_check_timeout_ms.max(50))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `iss` of the access tokens this deployment signs.
    pub issuer: String,
    /// `aud` that client assertions must name and access tokens carry. Distinct per
    /// deployment, so a token of one deployment is useless on another.
    pub audience: String,
    /// Lifetime of access tokens, in seconds.
    pub access_token_ttl_secs: u64,
    /// Sinergi's Ed25519 signing key as PKCS#8 PEM text (e.g. from a secret in the
    /// environment). Takes precedence over `signing_key_file`.
    pub signing_key_pem: Option<String>,
    /// File holding the signing key. When neither this nor `signing_key_pem` is set, the key
    /// is `keys/signing-key.pem` in the data directory, generated on first start.
    pub signing_key_file: Option<PathBuf>,
    /// Earlier signing keys, kept after a rotation so the tokens they signed stay valid until
    /// they expire (keep each for at least `access_token_ttl_secs`).
    pub previous_signing_key_files: Vec<PathBuf>,
    /// How often each replica checks for changed agencies, keys and grants, in milliseconds.
    pub refresh_interval_ms: u64,
    /// Verified access tokens remembered, so repeated calls skip the signature check.
    pub token_cache_capacity: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "sinergi".into(),
            audience: "sinergi".into(),
            access_token_ttl_secs: 600,
            signing_key_pem: None,
            signing_key_file: None,
            previous_signing_key_files: Vec::new(),
            refresh_interval_ms: 500,
            token_cache_capacity: 100_000,
        }
    }
}

impl AuthConfig {
    pub fn refresh_interval(&self) -> Duration {
        Duration::from_millis(self.refresh_interval_ms.max(10))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// PostgreSQL connections per replica (at least 2: a quarter of them serve lookups of
    /// single employers, the rest everything else).
    pub max_connections: u32,
    /// SQLite read connections (writes always go through one connection, as SQLite allows
    /// only one writer at a time).
    pub sqlite_readers: u32,
    /// How long a call waits for a free connection before it fails with UNAVAILABLE, in
    /// milliseconds.
    pub acquire_timeout_ms: u64,
    /// How long a `request_id` keeps a write safe to retry, in hours; older idempotency
    /// records are purged hourly, and a retry after that counts as a new request.
    pub idempotency_retention_hours: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info,sqlx=warn`; `RUST_LOG` overrides it.
    pub filter: String,
    /// OTLP/gRPC collector that call spans are exported to, e.g. `http://otel-collector:4317`;
    /// unset exports nothing.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("sinergi-data"),
            database_url: None,
            migrate_on_start: true,
            shutdown_grace_secs: 30,
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            audit: AuditConfig::default(),
            feed: FeedConfig::default(),
            compliance: ComplianceConfig::default(),
            limits: LimitsConfig::default(),
            grpc_web: GrpcWebConfig::default(),
            http: HttpConfig::default(),
            tls: TlsConfig::default(),
            metrics: MetricsConfig::default(),
            health: HealthConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            sqlite_readers: 4,
            acquire_timeout_ms: 5_000,
            idempotency_retention_hours: 7 * 24,
        }
    }
}

impl DatabaseConfig {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    pub fn idempotency_retention(&self) -> Duration {
        Duration::from_secs(self.idempotency_retention_hours.max(1) * 3600)
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info,sqlx=warn".into(),
            otlp_endpoint: None,
            service_name: "sinergi".into(),
        }
    }
}

/// Values given on the command line; each overrides the file and environment.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(#[from] Box<figment::Error>);

impl Config {
    /// Layers defaults, the optional TOML file, `SINERGI_*` variables and the overrides.
    pub fn load(file: Option<&PathBuf>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(
                Env::prefixed("SINERGI_")
                    .split("__")
                    // Read by the command line itself (the config file, and the client
                    // commands' server and credentials), not settings.
                    .ignore(&[
                        "config", "server", "agency", "key_file", "token", "audience",
                    ]),
            )
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|error| ConfigError(Box::new(error)))
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_nothing() {
        let config = Config::default();
        assert_eq!(config.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(config.data_dir, PathBuf::from("sinergi-data"));
        assert!(config.database_url.is_none());
    }

    #[test]
    fn file_then_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sinergi.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:6000\"\ndata_dir = \"/var/lib/x\"\n[database]\nmax_connections = 3\n",
        )
        .unwrap();
        let overrides = Overrides {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..Default::default()
        };
        let config = Config::load(Some(&file), &overrides).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/x"));
        assert_eq!(config.database.max_connections, 3);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sinergi.toml");
        std::fs::write(&file, "lisen = \"0.0.0.0:6000\"\n").unwrap();
        assert!(Config::load(Some(&file), &Overrides::default()).is_err());
    }
}

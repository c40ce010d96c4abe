//! Spawns a real Sinergi server per test on `127.0.0.1:0`, on a fresh SQLite file or a fresh
//! PostgreSQL database (dropped when the test ends), and hands out connected clients.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod pki;
pub mod process;
pub mod python;

use std::sync::atomic::{AtomicU64, Ordering};

use sinergi::{
    auth::{bootstrap_admin, keys::SigningKey},
    client::{BearerToken, issue_token, onboard_agency},
    config::Config,
    domain::{agency::KeyAlgorithm, identifiers::luhn_check_digit},
    proto,
    server::app::App,
    store::{self, postgres::ScratchDatabase},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Channel, ClientTlsConfig},
};

pub use proto::{
    agency_admin_service_client::AgencyAdminServiceClient, auth_service_client::AuthServiceClient,
    employer_service_client::EmployerServiceClient,
};

/// A channel that sends an access token with every call.
pub type Authed = InterceptedService<Channel, BearerToken>;

/// An agency created for a test, with its private key and a token for all its grants.
#[derive(Clone)]
pub struct TestAgency {
    pub id: String,
    pub key: SigningKey,
    pub kid: String,
    pub token: String,
}

/// The PostgreSQL server tests create their databases on; `SINERGI_TEST_POSTGRES_URL` overrides.
pub fn postgres_admin_url() -> String {
    std::env::var("SINERGI_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub channel: Channel,
    /// The bootstrapped administrator.
    pub admin: TestAgency,
    /// An agency allowed to read and write the whole employer registry.
    pub registry: TestAgency,
    config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// Where the server's Prometheus endpoint listens.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Where the HTTP/JSON door listens, if it is on.
    pub http_addr: Option<std::net::SocketAddr>,
    /// Where the server's plaintext health port listens, if configured.
    pub probe_addr: Option<std::net::SocketAddr>,
    // Held for their Drop: the SQLite directory and the PostgreSQL database (a replica shares
    // those of the app it was started beside and holds neither).
    _data_dir: Option<tempfile::TempDir>,
    _database: Option<TestDatabase>,
}

impl TestApp {
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn authed(&self, token: &str) -> Authed {
        authed(&self.channel, token)
    }

    /// The registry as the all-regions registry agency sees it.
    pub fn employers(&self) -> EmployerServiceClient<Authed> {
        self.employers_as(&self.registry.token)
    }

    pub fn employers_as(&self, token: &str) -> EmployerServiceClient<Authed> {
        EmployerServiceClient::new(self.authed(token))
    }

    pub fn admin_client(&self) -> AgencyAdminServiceClient<Authed> {
        AgencyAdminServiceClient::new(self.authed(&self.admin.token))
    }

    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel.clone())
    }

    /// A fresh access token for `agency`, for `scope` or all of its grants.
    pub async fn token(
        &self,
        agency: &TestAgency,
        scope: Option<&str>,
    ) -> Result<String, sinergi::client::ClientError> {
        issue_token(
            self.channel.clone(),
            &agency.id,
            &agency.key,
            "sinergi",
            scope,
            None,
        )
        .await
        .map(|issued| issued.access_token)
    }

    /// Creates an agency of `kind` with an Ed25519 key and the given grants (scope, regions),
    /// and obtains a token for it.
    pub async fn agency(&self, kind: proto::AgencyKind, grants: &[(&str, &[&str])]) -> TestAgency {
        create_agency(&self.channel, &self.admin.token, kind, grants).await
    }

    /// A connection of its own to the app's PostgreSQL database, inside an open transaction:
    /// for a test to hold rows (or a transaction id) the way another writer would.
    pub async fn postgres_transaction(&self) -> sqlx::PgConnection {
        use sqlx::Connection;

        let url = self
            .config()
            .database_url
            .as_deref()
            .expect("a PostgreSQL database");
        let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut connection).await.unwrap();
        connection
    }

    /// Stops the server the way a signal would and waits until it has finished.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task panicked");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// `channel`, sending `token` with every call.
pub fn authed(channel: &Channel, token: &str) -> Authed {
    InterceptedService::new(
        channel.clone(),
        BearerToken::new(token).expect("ASCII token"),
    )
}

/// The request for the employer with `id`.
pub fn get_employer(id: &str) -> proto::GetEmployerRequest {
    proto::GetEmployerRequest {
        key: Some(proto::get_employer_request::Key::Id(id.to_owned())),
    }
}

/// Creates an agency of `kind` through the server `channel` leads to, as the administrator
/// holding `admin_token`, and obtains a token for it.
pub async fn create_agency(
    channel: &Channel,
    admin_token: &str,
    kind: proto::AgencyKind,
    grants: &[(&str, &[&str])],
) -> TestAgency {
    let id = format!("agency-{}", unique_number());
    let (key, _) = SigningKey::generate(KeyAlgorithm::EdDsa).expect("key");
    let agency = proto::Agency {
        id: id.clone(),
        kind: kind.into(),
        display_name: format!("Test agency {id}"),
        ..Default::default()
    };
    let mut admin = AgencyAdminServiceClient::new(authed(channel, admin_token));
    let kid = onboard_agency(&mut admin, agency, &key, grants)
        .await
        .expect("onboard agency");
    let token = issue_token(channel.clone(), &id, &key, "sinergi", None, None)
        .await
        .expect("token")
        .access_token;
    TestAgency {
        id,
        key,
        kid,
        token,
    }
}

/// A PostgreSQL database that exists for one test.
pub struct TestDatabase(Option<ScratchDatabase>);

impl TestDatabase {
    pub async fn create() -> Self {
        let admin_url = postgres_admin_url();
        let database = ScratchDatabase::create(&admin_url, "sinergi_test")
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {admin_url}: {e:?}"));
        Self(Some(database))
    }

    pub fn url(&self) -> &str {
        self.0.as_ref().map_or("", ScratchDatabase::url)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(database) = self.0.take() else {
            return;
        };
        // Drop runs outside async code, possibly while the test's runtime is shutting down, so
        // the cleanup gets a runtime of its own on a separate thread.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            if let Err(error) = runtime.block_on(database.drop()) {
                eprintln!("could not drop a test database: {error:?}");
            }
        });
        let _ = cleanup.join();
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Spawns a server after letting the test adjust the configuration.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_over(backend, adjust, None).await
}

/// Spawns a server whose configuration turns TLS on; the test's own clients connect with
/// `client_tls`.
pub async fn spawn_app_over(
    backend: Backend,
    adjust: impl FnOnce(&mut Config),
    client_tls: Option<ClientTlsConfig>,
) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temporary data directory");
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(TestDatabase::create().await),
    };
    let mut config = Config {
        data_dir: data_dir.path().to_owned(),
        database_url: database.as_ref().map(|db| db.url().to_owned()),
        ..Config::default()
    };
    config.database.max_connections = 8;
    config.metrics.listen = "127.0.0.1:0".parse().expect("address");
    config.http.listen = "127.0.0.1:0".parse().expect("address");
    adjust(&mut config);

    // The first administrator, as `sinergi admin bootstrap` creates it on a new deployment.
    let (admin_key, _) = SigningKey::generate(KeyAlgorithm::EdDsa).expect("admin key");
    let admin_id = "sinergi-admin";
    {
        let store = store::connect(&config).await.expect("open store");
        store.migrate().await.expect("migrate");
        bootstrap_admin(
            store.as_ref(),
            admin_id,
            "Sinergi administrators",
            &admin_key.public().canonical_json(),
        )
        .await
        .expect("bootstrap admin");
    }

    let started = start_server(config.clone(), client_tls).await;
    let admin_token = issue_token(
        started.channel.clone(),
        admin_id,
        &admin_key,
        "sinergi",
        None,
        None,
    )
    .await
    .expect("admin token")
    .access_token;
    let admin = TestAgency {
        id: admin_id.into(),
        kid: admin_key.kid(),
        key: admin_key,
        token: admin_token,
    };
    let mut app = started.into_app(config, admin.clone(), admin);
    app._data_dir = Some(data_dir);
    app._database = database;
    app.registry = app
        .agency(
            proto::AgencyKind::Disnaker,
            &[("employers.read", &[]), ("employers.write", &[])],
        )
        .await;
    app
}

/// Builds and starts a server; the returned channel is connected to it, over TLS when
/// `client_tls` is given.
async fn start_server(config: Config, client_tls: Option<ClientTlsConfig>) -> Started {
    // Bound before the server is built, so clients can connect as soon as this returns.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let app = App::build(config, listener).await.expect("build app");
    let addr = app.addr();
    let metrics_addr = app.metrics_addr();
    let http_addr = app.http_addr();
    let probe_addr = app.probe_addr();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.serve(async {
            let _ = stopped.await;
        })
        .await
        .expect("server failed");
    });
    let channel = connect(addr, client_tls).await.expect("connect");
    Started {
        addr,
        metrics_addr,
        http_addr,
        probe_addr,
        channel,
        shutdown,
        server,
    }
}

struct Started {
    addr: std::net::SocketAddr,
    metrics_addr: Option<std::net::SocketAddr>,
    http_addr: Option<std::net::SocketAddr>,
    probe_addr: Option<std::net::SocketAddr>,
    channel: Channel,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

impl Started {
    /// The running server as a test's handle on it, holding neither data directory nor
    /// database (the caller hands those over when the app owns them).
    fn into_app(self, config: Config, admin: TestAgency, registry: TestAgency) -> TestApp {
        TestApp {
            addr: self.addr,
            channel: self.channel,
            admin,
            registry,
            config,
            shutdown: Some(self.shutdown),
            server: Some(self.server),
            metrics_addr: self.metrics_addr,
            http_addr: self.http_addr,
            probe_addr: self.probe_addr,
            _data_dir: None,
            _database: None,
        }
    }
}

/// A new connection to the server at `addr`, over TLS when `client_tls` is given.
pub async fn connect(
    addr: std::net::SocketAddr,
    client_tls: Option<ClientTlsConfig>,
) -> Result<Channel, tonic::transport::Error> {
    match client_tls {
        None => {
            Channel::from_shared(format!("http://{addr}"))
                .expect("endpoint")
                .connect()
                .await
        }
        Some(tls) => {
            Channel::from_shared(format!("https://{addr}"))
                .expect("endpoint")
                .tls_config(tls)?
                .connect()
                .await
        }
    }
}

/// A second server on the same database and signing key as `app`: another replica.
pub async fn spawn_replica(app: &TestApp) -> TestApp {
    spawn_replica_with(app, |_| {}).await
}

/// Another replica, its configuration adjusted by the test.
pub async fn spawn_replica_with(app: &TestApp, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = app.config.clone();
    adjust(&mut config);
    start_server(config.clone(), None).await.into_app(
        config,
        app.admin.clone(),
        app.registry.clone(),
    )
}

/// Runs each named `async fn(TestApp)` as two tests: one on SQLite, one on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::common::spawn_app($crate::common::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test($crate::common::spawn_app($crate::common::Backend::Postgres).await).await;
                }
            )*
        }
    };
}

static SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// A number unique within this test process, for identifiers that must not collide.
pub fn unique_number() -> u64 {
    SEQUENCE.fetch_add(1, Ordering::Relaxed)
}

/// A valid old-style 15-digit NPWP built from `n`.
pub fn npwp15(n: u64) -> String {
    let body = format!("{:08}", n % 100_000_000);
    format!("{body}{}000000", luhn_check_digit(&body))
}

/// The 16-digit form the service stores for `npwp15(n)`.
pub fn npwp16(n: u64) -> String {
    format!("0{}", npwp15(n))
}

pub fn nib(n: u64) -> String {
    format!("{:013}", 1_000_000_000_000 + n)
}

/// A valid employer in Kota Pekalongan with fresh identifiers.
pub fn employer(name: &str) -> proto::Employer {
    let n = unique_number();
    proto::Employer {
        npwp: npwp15(n),
        nib: nib(n),
        bpjs_tk_npp: vec![format!("{:08}", 10_000_000 + n)],
        bpjs_kes_code: format!("KES-{n}"),
        name: name.into(),
        address: "Jl. Hayam Wuruk 1, Pekalongan".into(),
        region: Some(proto::RegionCode {
            code: "33.75".into(),
        }),
        kbli: "13134".into(),
        size_class: proto::SizeClass::Medium.into(),
        workforce_declared: Some(120),
        ..Default::default()
    }
}

pub async fn create(app: &TestApp, employer: proto::Employer) -> proto::Employer {
    app.employers()
        .upsert_employer(proto::UpsertEmployerRequest {
            employer: Some(employer),
            ..Default::default()
        })
        .await
        .expect("create employer")
        .into_inner()
        .employer
        .expect("employer in response")
}

//! Sinergi as operators run it: `sinergi serve` processes, configured through the
//! environment, stopped with signals.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use sinergi::{
    auth::{bootstrap_admin, keys::SigningKey},
    client::issue_token,
    config::Config,
    domain::agency::KeyAlgorithm,
    store,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tonic::transport::Channel;

use super::TestAgency;

/// What every process of one deployment shares: the database, the signing key, the first
/// administrator.
pub struct Deployment {
    /// PostgreSQL; `None` is the SQLite default in the data directory.
    pub database_url: Option<String>,
    pub signing_key_file: PathBuf,
    pub admin: TestAgency,
    dir: tempfile::TempDir,
}

impl Deployment {
    /// Prepares a deployment on `database_url` as its operator would: a signing key in a file,
    /// `sinergi migrate`, the first administrator.
    pub async fn prepare(database_url: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("deployment directory");
        let signing_key_file = dir.path().join("signing-key.pem");
        let (_, pem) = SigningKey::generate(KeyAlgorithm::EdDsa).expect("signing key");
        SigningKey::write_pem(&signing_key_file, &pem).expect("write signing key");

        let mut migrate = Command::new(env!("CARGO_BIN_EXE_sinergi"));
        migrate.arg("migrate").env("SINERGI_DATA_DIR", dir.path());
        if let Some(url) = database_url {
            migrate.env("SINERGI_DATABASE_URL", url);
        }
        let migrate = migrate.output().await.expect("run sinergi migrate");
        assert!(migrate.status.success(), "sinergi migrate: {migrate:?}");

        let (admin_key, _) = SigningKey::generate(KeyAlgorithm::EdDsa).expect("admin key");
        let config = Config {
            database_url: database_url.map(str::to_owned),
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let store = store::connect(&config).await.expect("open store");
        bootstrap_admin(
            store.as_ref(),
            "sinergi-admin",
            "Sinergi administrators",
            &admin_key.public().canonical_json(),
        )
        .await
        .expect("bootstrap admin");
        Self {
            database_url: database_url.map(str::to_owned),
            signing_key_file,
            admin: TestAgency {
                id: "sinergi-admin".into(),
                kid: admin_key.kid(),
                key: admin_key,
                token: String::new(),
            },
            dir,
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts a replica and obtains an administrator token through it.
    pub async fn start(&mut self, extra_env: &[(&str, &str)]) -> ServerProcess {
        let process = ServerProcess::start(self, extra_env).await;
        self.admin.token = issue_token(
            process.channel.clone(),
            &self.admin.id,
            &self.admin.key,
            "sinergi",
            None,
            None,
        )
        .await
        .expect("admin token")
        .access_token;
        process
    }
}

/// One `sinergi serve` process, killed if the test ends before it stops.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// The plaintext health port, when the process was started with one.
    pub probe_addr: Option<SocketAddr>,
    pub channel: Channel,
}

impl ServerProcess {
    async fn start(deployment: &Deployment, extra_env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sinergi"));
        if let Some(url) = &deployment.database_url {
            command.env("SINERGI_DATABASE_URL", url);
        }
        let mut child = command
            .arg("serve")
            .env("SINERGI_LISTEN", "127.0.0.1:0")
            .env("SINERGI_METRICS__LISTEN", "127.0.0.1:0")
            .env("SINERGI_HTTP__LISTEN", "127.0.0.1:0")
            .env("SINERGI_DATA_DIR", deployment.data_dir())
            .env(
                "SINERGI_AUTH__SIGNING_KEY_FILE",
                &deployment.signing_key_file,
            )
            .env("SINERGI_MIGRATE_ON_START", "false")
            .env("SINERGI_LOG__FORMAT", "json")
            .envs(extra_env.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start sinergi serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read log") {
                let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if record["fields"]["message"] == "sinergi ready" {
                    return record;
                }
            }
            panic!("sinergi serve ended before it was ready");
        })
        .await
        .expect("ready within 60 s");
        // Keep reading, so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let address = |field: &str| -> SocketAddr {
            ready["fields"][field]
                .as_str()
                .and_then(|text| text.parse().ok())
                .unwrap_or_else(|| panic!("{field} in the ready line: {ready}"))
        };
        let addr = address("addr");
        let metrics_addr = address("metrics");
        let probe_addr = ready["fields"]["probe"]
            .as_str()
            .and_then(|text| text.parse().ok());
        let channel = super::connect(addr, None).await.expect("connect");
        Self {
            child,
            addr,
            metrics_addr,
            probe_addr,
            channel,
        }
    }

    /// Sends SIGTERM, as Kubernetes does to stop a pod.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    }

    /// The most memory the process has held (VmHWM), in KiB.
    pub fn peak_memory_kib(&self) -> u64 {
        let pid = self.child.id().expect("running");
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmHWM:"))
                    .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Waits for the process to end by itself within `limit`.
    pub async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("the process ends in time")
            .expect("wait")
    }
}

//! PostgreSQL going away under load: calls fail fast with UNAVAILABLE, no acknowledged write is
//! lost, the service recovers by itself, and the audit log verifies afterwards.

mod common;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{Backend, spawn_app_with};
use sinergi::proto;
use tokio::{net::TcpListener, sync::watch};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client};

/// A TCP relay between the server and PostgreSQL. Cut, it drops every connection it carries
/// and every new one, as a database host that went down would.
struct Relay {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let (cut, _) = watch::channel(false);
        let cuts = cut.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let mut cut = cuts.subscribe();
                if *cut.borrow_and_update() {
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { addr, cut }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let (authority, path) = rest.split_once('/').expect("database name");
    let userinfo = authority
        .rsplit_once('@')
        .map_or(String::new(), |(user, _)| format!("{user}@"));
    format!("{scheme}://{userinfo}{addr}/{path}")
}

/// host:port of a PostgreSQL URL.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").expect("scheme").1;
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned()
}

#[derive(Default)]
struct Log {
    /// Ids of employers whose creation was acknowledged.
    acknowledged: Vec<String>,
    /// (when the call started, how long it took, its code) of every failed call.
    failures: Vec<(Instant, Duration, Code)>,
    first_success_after: Option<Instant>,
}

async fn serving(app: &common::TestApp) -> Option<ServingStatus> {
    health_client::HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()
        .map(|response| response.into_inner().status())
}

/// Polls the overall health status until it is `wanted`; true if it was within `limit`.
async fn health_becomes(app: &common::TestApp, wanted: ServingStatus, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if serving(app).await == Some(wanted) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn postgres_down_for_ten_seconds_under_load() {
    let relay = Relay::start(authority(&common::postgres_admin_url())).await;
    let relay_addr = relay.addr;
    let app = spawn_app_with(Backend::Postgres, |config| {
        let direct = config.database_url.take().expect("a PostgreSQL database");
        config.database_url = Some(through(&direct, relay_addr));
        config.health.database_check_interval_ms = 200;
        config.health.database_check_timeout_ms = 500;
        config.database.acquire_timeout_ms = 1_000;
    })
    .await;
    let app = Arc::new(app);
    let log = Arc::new(Mutex::new(Log::default()));
    let (stop, stopped) = watch::channel(false);
    let restored_at: Arc<Mutex<Option<Instant>>> = Arc::default();

    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let mut client = app.employers();
            let log = Arc::clone(&log);
            let restored_at = Arc::clone(&restored_at);
            let stopped = stopped.clone();
            tokio::spawn(async move {
                let mut round = 0;
                while !*stopped.borrow() {
                    round += 1;
                    let started = Instant::now();
                    let answer = client
                        .upsert_employer(proto::UpsertEmployerRequest {
                            employer: Some(common::employer(&format!("PT Beban {writer}-{round}"))),
                            ..Default::default()
                        })
                        .await;
                    let failed = {
                        let mut log = log.lock().expect("log");
                        match answer {
                            Ok(response) => {
                                let employer = response.into_inner().employer.expect("employer");
                                log.acknowledged.push(employer.id);
                                let restored = *restored_at.lock().expect("restored");
                                if restored.is_some_and(|at| started >= at)
                                    && log.first_success_after.is_none()
                                {
                                    log.first_success_after = Some(Instant::now());
                                }
                                false
                            }
                            Err(status) => {
                                log.failures
                                    .push((started, started.elapsed(), status.code()));
                                true
                            }
                        }
                    };
                    if failed {
                        // A client backing off, as the UNAVAILABLE message asks.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();

    // Load runs against a healthy database first.
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.lock().expect("log").acknowledged.len() < 50 {
        assert!(
            Instant::now() < deadline,
            "no load got through before the cut"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let cut_at = Instant::now();
    relay.set_cut(true);
    assert!(
        health_becomes(&app, ServingStatus::NotServing, Duration::from_secs(5)).await,
        "health reports NOT_SERVING while the database is down"
    );
    let detected_at = Instant::now();
    let outage = Duration::from_secs(10);
    tokio::time::sleep(outage.saturating_sub(cut_at.elapsed())).await;
    let restored = Instant::now();
    *restored_at.lock().expect("restored") = Some(restored);
    relay.set_cut(false);
    assert!(
        health_becomes(&app, ServingStatus::Serving, Duration::from_secs(15)).await,
        "health reports SERVING again without a restart"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while log.lock().expect("log").first_success_after.is_none() {
        assert!(
            Instant::now() < deadline,
            "writes succeed again after the outage"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send_replace(true);
    for writer in writers {
        writer.await.expect("writer");
    }

    let log = Arc::try_unwrap(log)
        .ok()
        .expect("writers done")
        .into_inner()
        .expect("log");
    let recovery = log.first_success_after.expect("recovered") - restored;
    let during: Vec<_> = log
        .failures
        .iter()
        .filter(|(started, _, _)| *started >= cut_at && *started < restored)
        .collect();
    assert!(!during.is_empty(), "calls failed during the outage");
    for (_, took, code) in &log.failures {
        assert_eq!(*code, Code::Unavailable, "every failure is UNAVAILABLE");
        assert!(
            *took < Duration::from_millis(2_500),
            "no call waits long: one took {took:?}"
        );
    }
    let after_detection: Vec<_> = during
        .iter()
        .filter(|(started, _, _)| *started >= detected_at)
        .map(|(_, took, _)| *took)
        .collect();
    let slowest_after_detection = after_detection.iter().max().copied().unwrap_or_default();
    assert!(
        slowest_after_detection < Duration::from_millis(200),
        "once the outage is detected, calls are refused at once (slowest {slowest_after_detection:?})"
    );
    eprintln!(
        "outage: {} writes acknowledged, {} refused during the cut (slowest after detection \
         {slowest_after_detection:?}); detected after {:?}; first write {recovery:?} after the \
         database came back",
        log.acknowledged.len(),
        during.len(),
        detected_at - cut_at,
    );

    let mut client = app.employers();
    for id in &log.acknowledged {
        client
            .get_employer(common::get_employer(id))
            .await
            .unwrap_or_else(|status| panic!("acknowledged write {id} lost: {status:?}"));
    }

    let auditor = app
        .agency(proto::AgencyKind::Admin, &[("audit.read", &[])])
        .await;
    let mut audit =
        proto::audit_service_client::AuditServiceClient::new(app.authed(&auditor.token));
    // Every acknowledged write and every read above has its entry; once the log covers them
    // all, it must verify in full.
    let expected = 2 * log.acknowledged.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let size = audit
            .get_checkpoint(proto::GetCheckpointRequest {})
            .await
            .expect("checkpoint")
            .into_inner()
            .tree_size;
        if size >= expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the log stays at {size} entries, short of {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let saved = tempfile::tempdir().expect("directory");
    let verified = sinergi::client::verify::verify_server(
        &mut audit,
        &saved.path().join("cp.txt"),
        None,
        true,
    )
    .await
    .expect("the audit log verifies after the outage");
    assert_eq!(verified.entries_checked, verified.checkpoint.size);
    assert!(verified.checkpoint.size >= expected);
}

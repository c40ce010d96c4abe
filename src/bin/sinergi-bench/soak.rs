//! The soak suite: a mixed, steady load for `--minutes`, as agencies leave Sinergi running for
//! months: registry reads and writes, single reports and bulk batches, feed subscribers that
//! disconnect and resume from their cursor, tokens re-issued, grants given and withdrawn.
//! Every 10 s it samples what must not drift (resident memory, open file descriptors, database
//! connections, the status, feed and audit backlogs, p99 latency), prints the series, and fails
//! when any of them still grows over the second half of the run.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};
use std::time::{Duration, Instant};

use sinergi::{
    auth::keys::SigningKey,
    client::{AdminClient, BearerToken, issue_token},
    config::Config,
    proto::{
        self, compliance_service_client::ComplianceServiceClient,
        employer_service_client::EmployerServiceClient, feed_service_client::FeedServiceClient,
        get_employer_request::Key,
    },
};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use super::compliance::{Database, registration_report, workforce_report};
use super::{bench_npwp, xorshift};

/// How often the series are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Items in each bulk batch, one batch every [`BULK_EVERY`].
const BULK_ITEMS: u64 = 500;
const BULK_EVERY: Duration = Duration::from_secs(5);
/// Feed subscribers, each reconnecting from its cursor after a few seconds.
const SUBSCRIBERS: usize = 8;

/// The agencies the load runs as.
pub struct Callers {
    /// Disnaker: the registry and workforce reports.
    pub disnaker: BearerToken,
    /// BPJS Kesehatan: registration reports in bulk.
    pub kesehatan: BearerToken,
    /// The inspectors: the feed.
    pub inspector: BearerToken,
    /// An agency whose token is re-issued and whose grant comes and goes all run long.
    pub churn: (String, SigningKey),
    pub admin: AdminClient,
}

/// One sample of every series.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_mib: f64,
    open_files: f64,
    database_connections: f64,
    status_backlog: f64,
    feed_backlog: f64,
    audit_backlog: f64,
    p99_ms: f64,
    calls: u64,
    errors: u64,
}

/// A series and how much growth over the second half is still noise: a fraction of its mean
/// or an absolute floor, whichever is larger.
struct Series {
    name: &'static str,
    value: fn(&Sample) -> f64,
    fraction: f64,
    floor: f64,
}

const SERIES: [Series; 7] = [
    Series {
        name: "resident memory (MiB)",
        value: |s| s.rss_mib,
        fraction: 0.10,
        floor: 16.0,
    },
    Series {
        name: "open file descriptors",
        value: |s| s.open_files,
        fraction: 0.10,
        floor: 8.0,
    },
    Series {
        name: "database connections",
        value: |s| s.database_connections,
        fraction: 0.0,
        floor: 2.0,
    },
    Series {
        name: "status backlog",
        value: |s| s.status_backlog,
        fraction: 0.25,
        floor: 2.0 * BULK_ITEMS as f64,
    },
    Series {
        name: "feed backlog",
        value: |s| s.feed_backlog,
        fraction: 0.25,
        floor: 2.0 * BULK_ITEMS as f64,
    },
    Series {
        name: "audit backlog",
        value: |s| s.audit_backlog,
        fraction: 0.25,
        floor: 500.0,
    },
    Series {
        name: "p99 latency (ms)",
        value: |s| s.p99_ms,
        fraction: 0.25,
        floor: 5.0,
    },
];

/// What the load tasks share: call latencies since the last sample, and counters.
#[derive(Default)]
struct Load {
    latencies: Mutex<Vec<Duration>>,
    calls: AtomicU64,
    errors: AtomicU64,
}

impl Load {
    fn record<T, E: std::fmt::Display>(&self, started: Instant, outcome: Result<T, E>) {
        self.latencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(started.elapsed());
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = outcome
            && self.errors.fetch_add(1, Ordering::Relaxed) < 10
        {
            eprintln!("soak: a call failed: {error}");
        }
    }

    /// The p99 of the latencies since the last call, which it clears.
    fn take_p99(&self) -> Duration {
        let mut latencies = std::mem::take(
            &mut *self
                .latencies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        latencies.sort_unstable();
        latencies
            .get((latencies.len().saturating_sub(1)) * 99 / 100)
            .copied()
            .unwrap_or_default()
    }
}

pub async fn run(
    config: &Config,
    channels: &[Channel],
    metrics_addr: std::net::SocketAddr,
    callers: Callers,
    employers: usize,
    minutes: u64,
) -> anyhow::Result<()> {
    let ids = super::load(channels[0].clone(), &callers.disnaker, employers)
        .await?
        .0;
    let ids = Arc::new(ids);
    let duration = Duration::from_secs(minutes * 60);
    let started = Instant::now();
    let deadline = started + duration;
    let load = Arc::new(Load::default());
    println!(
        "soak suite: {employers} employers, {minutes} min of mixed load, sampled every {} s",
        SAMPLE_EVERY.as_secs()
    );

    let mut tasks = tokio::task::JoinSet::new();
    for reader in 0..8u64 {
        let mut client = EmployerServiceClient::with_interceptor(
            channels[reader as usize % channels.len()].clone(),
            callers.disnaker.clone(),
        );
        let (ids, load) = (Arc::clone(&ids), Arc::clone(&load));
        tasks.spawn(async move {
            let mut seed = reader + 1;
            while Instant::now() < deadline {
                seed = xorshift(seed);
                let id = ids[seed as usize % ids.len()].clone();
                let at = Instant::now();
                let outcome = client
                    .get_employer(proto::GetEmployerRequest {
                        key: Some(Key::Id(id)),
                    })
                    .await;
                load.record(at, outcome);
            }
        });
    }
    {
        let mut registry =
            EmployerServiceClient::with_interceptor(channels[0].clone(), callers.disnaker.clone());
        let mut reports = ComplianceServiceClient::with_interceptor(
            channels[0].clone(),
            callers.disnaker.clone(),
        );
        let load = Arc::clone(&load);
        tasks.spawn(async move {
            let mut round = 0u64;
            while Instant::now() < deadline {
                round += 1;
                let i = (round as usize) % employers;
                // Read, change and write back under the etag read, as a registry system does.
                let at = Instant::now();
                let outcome = async {
                    let mut record = registry
                        .get_employer(proto::GetEmployerRequest {
                            key: Some(Key::Npwp(bench_npwp(i as u64))),
                        })
                        .await?
                        .into_inner()
                        .employer
                        .unwrap_or_default();
                    record.workforce_declared = Some((round % 3000) as u32);
                    registry
                        .upsert_employer(proto::UpsertEmployerRequest {
                            etag: record.etag.clone(),
                            employer: Some(record),
                            request_id: format!("soak-upsert-{round}"),
                        })
                        .await
                        .map(drop)
                }
                .await;
                load.record(at, outcome);
                let at = Instant::now();
                let outcome = reports
                    .submit_report(proto::SubmitReportRequest {
                        report: Some(workforce(i as u64, round)),
                        request_id: format!("soak-report-{round}"),
                    })
                    .await;
                load.record(at, outcome);
            }
        });
    }
    {
        let mut bulk = ComplianceServiceClient::with_interceptor(
            channels[1 % channels.len()].clone(),
            callers.kesehatan.clone(),
        );
        let load = Arc::clone(&load);
        tasks.spawn(async move {
            let mut batch = 0u64;
            let mut every = tokio::time::interval(BULK_EVERY);
            while Instant::now() < deadline {
                every.tick().await;
                batch += 1;
                let first = batch * BULK_ITEMS % employers as u64;
                let items = (0..BULK_ITEMS)
                    .map(move |n| proto::BulkSubmitReportsRequest {
                        item: Some(registration((first + n) % employers as u64, batch)),
                        request_id: if n == 0 {
                            format!("soak-batch-{batch}")
                        } else {
                            String::new()
                        },
                        ..Default::default()
                    })
                    .chain(std::iter::once(proto::BulkSubmitReportsRequest {
                        end_of_batch: true,
                        ..Default::default()
                    }));
                let at = Instant::now();
                let outcome = bulk.bulk_submit_reports(tokio_stream::iter(items)).await;
                load.record(at, outcome);
            }
        });
    }
    for subscriber in 0..SUBSCRIBERS {
        let channel = channels[subscriber % channels.len()].clone();
        let (inspector, load) = (callers.inspector.clone(), Arc::clone(&load));
        tasks.spawn(async move {
            let mut cursor = None;
            let mut seed = subscriber as u64 + 101;
            while Instant::now() < deadline {
                seed = xorshift(seed);
                // Connected for 2 to 10 s, then gone, then back from where it stopped.
                let connected = Duration::from_millis(2_000 + seed % 8_000);
                let mut client =
                    FeedServiceClient::with_interceptor(channel.clone(), inspector.clone());
                let at = Instant::now();
                let stream = client
                    .watch(proto::WatchRequest {
                        after_cursor: cursor,
                        ..Default::default()
                    })
                    .await;
                let mut stream = match stream {
                    Ok(stream) => stream.into_inner(),
                    Err(status) => {
                        load.record(at, Err::<(), _>(status));
                        continue;
                    }
                };
                let until = tokio::time::Instant::now() + connected;
                let mut outcome = Ok(());
                while let Ok(Some(event)) = tokio::time::timeout_at(until, stream.next()).await {
                    match event.map(|answer| answer.message) {
                        Ok(Some(proto::watch_response::Message::Event(event))) => {
                            if cursor.is_some_and(|seen| event.cursor <= seen) {
                                outcome = Err(format!(
                                    "the feed repeated cursor {} after {cursor:?}",
                                    event.cursor
                                ));
                                break;
                            }
                            cursor = Some(event.cursor);
                        }
                        Ok(_) => {}
                        Err(status) => {
                            outcome = Err(status.to_string());
                            break;
                        }
                    }
                }
                load.record(at, outcome);
            }
        });
    }
    {
        let channel = channels[0].clone();
        let (churn, mut admin, load) = (callers.churn, callers.admin, Arc::clone(&load));
        tasks.spawn(async move {
            let (id, key) = churn;
            let mut round = 0u64;
            while Instant::now() < deadline {
                round += 1;
                // A fresh token every second, used once.
                let at = Instant::now();
                let token = issue_token(channel.clone(), &id, &key, "sinergi", None, None).await;
                let used = match token.map_err(|e| e.to_string()).and_then(|issued| {
                    BearerToken::new(&issued.access_token).map_err(|e| e.to_string())
                }) {
                    Ok(bearer) => EmployerServiceClient::with_interceptor(channel.clone(), bearer)
                        .get_employer(proto::GetEmployerRequest {
                            key: Some(Key::Npwp(bench_npwp(round % employers as u64))),
                        })
                        .await
                        .map(drop)
                        .map_err(|status| status.to_string()),
                    Err(error) => Err(error),
                };
                load.record(at, used);
                // Every fifth second a grant given, and withdrawn again.
                if round.is_multiple_of(5) {
                    let at = Instant::now();
                    let outcome = async {
                        let grant = admin
                            .grant_scope(proto::GrantScopeRequest {
                                agency_id: id.clone(),
                                scope: "compliance.read".into(),
                                ..Default::default()
                            })
                            .await?
                            .into_inner()
                            .grant
                            .unwrap_or_default();
                        admin
                            .revoke_grant(proto::RevokeGrantRequest { id: grant.id })
                            .await
                            .map(drop)
                    }
                    .await;
                    load.record(at, outcome);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    let mut database = Database::open(config).await?;
    let mut samples = Vec::new();
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.tick().await;
    println!(
        "{:>6} {:>9} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>7}",
        "s", "rss MiB", "fds", "db", "statuses", "feed", "audit", "p99 ms", "calls", "errors"
    );
    while Instant::now() < deadline {
        every.tick().await;
        let sample = Sample {
            at: started.elapsed(),
            rss_mib: resident_mib().unwrap_or(f64::NAN),
            open_files: open_files().unwrap_or(f64::NAN),
            database_connections: database_connections(metrics_addr).await.unwrap_or(f64::NAN),
            status_backlog: database.count(&["status_queue", "status_pending"]).await? as f64,
            feed_backlog: database.count(&["feed_pending"]).await? as f64,
            audit_backlog: database.count(&["audit_pending"]).await? as f64,
            p99_ms: load.take_p99().as_secs_f64() * 1e3,
            calls: load.calls.load(Ordering::Relaxed),
            errors: load.errors.load(Ordering::Relaxed),
        };
        println!(
            "{:>6} {:>9.1} {:>6} {:>6} {:>9} {:>9} {:>9} {:>9.2} {:>10} {:>7}",
            sample.at.as_secs(),
            sample.rss_mib,
            sample.open_files,
            sample.database_connections,
            sample.status_backlog,
            sample.feed_backlog,
            sample.audit_backlog,
            sample.p99_ms,
            sample.calls,
            sample.errors,
        );
        samples.push(sample);
    }
    while tasks.join_next().await.is_some() {}
    verdict(&samples, load.errors.load(Ordering::Relaxed))
}

/// Fails when a series grows over the second half of the run by more than its noise, taking
/// the growth from a least-squares line (so one busy sample does not decide).
fn verdict(samples: &[Sample], errors: u64) -> anyhow::Result<()> {
    let second_half = &samples[samples.len() / 2..];
    anyhow::ensure!(
        second_half.len() >= 3,
        "too short a run to tell a trend: give --minutes 1 or more"
    );
    let mut growing = Vec::new();
    for series in &SERIES {
        let points: Vec<(f64, f64)> = second_half
            .iter()
            .map(|sample| (sample.at.as_secs_f64(), (series.value)(sample)))
            .filter(|(_, value)| value.is_finite())
            .collect();
        let Some((slope, mean)) = trend(&points) else {
            println!("{}: not measured here", series.name);
            continue;
        };
        let span = points[points.len() - 1].0 - points[0].0;
        let growth = slope * span;
        let allowed = (series.fraction * mean).max(series.floor);
        println!(
            "{}: mean {mean:.1} over the second half, trend {growth:+.1} across it (allowed \
             {allowed:.1})",
            series.name
        );
        if growth > allowed {
            growing.push(series.name);
        }
    }
    anyhow::ensure!(growing.is_empty(), "still growing: {}", growing.join(", "));
    anyhow::ensure!(errors == 0, "{errors} calls failed during the soak");
    println!("soak: nothing grew over the second half, and no call failed");
    Ok(())
}

/// The least-squares slope of `points` and the mean of their values.
fn trend(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (mean_x, mean_y) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let covariance: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let variance: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    (variance > 0.0).then(|| (covariance / variance, mean_y))
}

fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn open_files() -> Option<f64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as f64)
}

/// The server's open database connections (in use and idle, every pool), from its metrics.
async fn database_connections(metrics: std::net::SocketAddr) -> anyhow::Result<f64> {
    let text = super::http::get_text(metrics, "/metrics").await?;
    Ok(text
        .lines()
        .filter(|line| line.starts_with("sinergi_database_pool_connections{"))
        .filter(|line| line.contains("state=\"in_use\"") || line.contains("state=\"idle\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

fn workforce(i: u64, round: u64) -> proto::ReportSubmission {
    let total = 20 + ((i + round) * 7919 % 3000) as u32;
    workforce_report(i, 1 + (round % 12) as i32, total)
}

fn registration(i: u64, batch: u64) -> proto::ReportSubmission {
    let registered = 10 + ((i + batch) * 13 % 2000) as u32;
    registration_report(i, 1 + (batch % 12) as i32, registered, (0, 0))
}

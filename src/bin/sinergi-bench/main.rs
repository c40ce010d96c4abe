//! Throughput and latency of Sinergi's RPCs against a baseline measured in the same run.
//!
//! Starts the server in-process on a fresh database, loads employers, then drives each workload
//! with a fixed number of calls in flight for a fixed time. The baseline is the gRPC health
//! check: the same transport, codec and middleware with no application work, so the ratio says
//! what the application itself costs on this machine, whatever the machine.
//!
//! `cargo run --release --bin sinergi-bench -- --backend sqlite|postgres [--suite compliance|soak]`

mod compliance;
mod http;
mod soak;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use sinergi::audit::{PendingEntry, merkle};
use sinergi::{
    auth::{Authenticator, bootstrap_admin, keys::SigningKey},
    client::{AdminClient, BearerToken, issue_token, onboard_agency},
    config::{AuthConfig, Config},
    domain::agency::KeyAlgorithm,
    proto::{
        self, GetEmployerRequest, UpsertEmployerRequest,
        employer_service_client::EmployerServiceClient, get_employer_request::Key,
    },
    server::app::App,
    store::{self, Store, postgres::ScratchDatabase},
    workers::{AbortOnDrop, audit_index::index_audit_records, audit_writer::AuditWriter},
};
use tokio::{net::TcpListener, sync::oneshot};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Suite {
    /// The registry, token checks and the audit log.
    Registry,
    /// Bulk ingest, the non-compliance list and the change feed, over a large registry.
    Compliance,
    /// Mixed load for `--minutes`, failing if memory, descriptors, connections, backlogs or
    /// latency keep growing.
    Soak,
}

#[derive(Parser)]
#[command(about = "Measure Sinergi RPCs against the health-check baseline")]
struct Args {
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    #[arg(long, value_enum, default_value = "registry")]
    suite: Suite,
    /// Employers in the registry of the compliance suite, each reported on by Disnaker and by
    /// BPJS Kesehatan through one bulk stream each.
    #[arg(long, default_value_t = 1_000_000)]
    compliance_employers: u64,
    /// PostgreSQL server on which a scratch database is created (and dropped afterwards).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// Employers loaded before the measurements.
    #[arg(long, default_value_t = 5_000)]
    employers: usize,
    /// Calls in flight during each measurement.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Length of each measurement, in seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Client connections the calls are spread over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Entries the audit log is filled to before proof generation is timed.
    #[arg(long, default_value_t = 100_000)]
    proof_log_size: u64,
    /// Length of the soak suite's run, in minutes.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
}

/// What one measurement saw.
struct Measurement {
    name: &'static str,
    calls: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// CPU time the whole process (client and server) spent during the run, when known.
    cpu: Option<Duration>,
}

impl Measurement {
    fn per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[rank]
    }

    /// Microseconds of CPU per call: unlike calls per second, it does not move when other
    /// work on the machine takes cores away from the run.
    fn cpu_us_per_call(&self) -> Option<f64> {
        let cpu = self.cpu?;
        (self.calls > 0).then(|| cpu.as_secs_f64() * 1e6 / self.calls as f64)
    }
}

/// CPU time (user and system) this process has used so far (Linux).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel reports in USER_HZ, 100 on every Linux platform Rust supports.
    Some(Duration::from_millis(ticks * 10))
}

/// Runs `call` with `concurrency` calls in flight for `duration`, round-robin over `channels`
/// (gRPC channels, or HTTP connections).
async fn drive<C, F, Fut, E>(
    name: &'static str,
    channels: &[C],
    concurrency: usize,
    duration: Duration,
    call: F,
) -> Measurement
where
    C: Clone + Send + 'static,
    F: Fn(C, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
{
    let call = Arc::new(call);
    let cpu_before = process_cpu();
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let call = Arc::clone(&call);
            let channel = channels[worker % channels.len()].clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                let mut seed = worker as u64 + 1;
                while Instant::now() < deadline {
                    seed = xorshift(seed);
                    let begun = Instant::now();
                    if call(channel.clone(), seed).await.is_err() {
                        errors += 1;
                    }
                    latencies.push(begun.elapsed());
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut seen, failed) = worker.await.expect("bench worker");
        latencies.append(&mut seen);
        errors += failed;
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    latencies.sort_unstable();
    Measurement {
        name,
        calls: latencies.len(),
        errors,
        elapsed,
        latencies,
        cpu,
    }
}

/// The health check driven like a workload: the same transport, codec and middleware with no
/// application work, which every workload's ratio is taken against.
async fn health_baseline(
    channels: &[Channel],
    concurrency: usize,
    duration: Duration,
) -> Measurement {
    drive(
        "health Check (baseline)",
        channels,
        concurrency,
        duration,
        |channel, _| async move {
            HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
                .map(drop)
        },
    )
    .await
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// The NPWP of bench employer `i`: a resident's NIK, valid as the NPWP check reads one, in the
/// regency the employer is placed in (`REGIONS[i % 5]`), district 01, with the birth date and
/// serial counting `i` (unique up to 336 million). The compliance suite's bulk load writes
/// the same numbers in SQL.
pub fn bench_npwp(i: u64) -> String {
    const PREFIXES: [&str; 5] = ["3325", "3326", "3327", "3375", "3671"];
    let rest = i / 9999;
    format!(
        "{}01{:02}{:02}{:02}{:04}",
        PREFIXES[(i % 5) as usize],
        1 + rest % 28,
        1 + rest / 28 % 12,
        rest / 28 / 12 % 100,
        1 + i % 9999
    )
}

fn bench_employer(i: usize) -> proto::Employer {
    let regions = ["33.25", "33.26", "33.27", "33.75", "36.71"];
    proto::Employer {
        npwp: bench_npwp(i as u64),
        nib: format!("{:013}", 9_000_000_000_000u64 + i as u64),
        name: format!("PT Bench {i:06}"),
        region: Some(proto::RegionCode {
            code: regions[i % regions.len()].into(),
        }),
        kbli: "13134".into(),
        size_class: proto::SizeClass::Medium.into(),
        workforce_declared: Some((i % 2000) as u32),
        ..Default::default()
    }
}

type Authed = InterceptedService<Channel, BearerToken>;

fn employers(channel: Channel, bearer: &BearerToken) -> EmployerServiceClient<Authed> {
    EmployerServiceClient::with_interceptor(channel, bearer.clone())
}

/// Loads the employers with a few writers in flight and returns their ids.
async fn load(
    channel: Channel,
    bearer: &BearerToken,
    count: usize,
) -> anyhow::Result<(Vec<String>, Duration)> {
    let started = Instant::now();
    let writers = 8;
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let mut client = employers(channel.clone(), bearer);
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in (writer..count).step_by(writers) {
                    let created = client
                        .upsert_employer(UpsertEmployerRequest {
                            employer: Some(bench_employer(i)),
                            ..Default::default()
                        })
                        .await?
                        .into_inner();
                    ids.extend(created.employer.map(|e| e.id));
                }
                Ok::<_, tonic::Status>(ids)
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(count);
    for task in tasks {
        ids.extend(task.await??);
    }
    Ok((ids, started.elapsed()))
}

fn report(measurements: &[Measurement]) {
    let baseline = measurements[0].per_second();
    let baseline_cpu = measurements[0].cpu_us_per_call();
    println!(
        "{:<28} {:>10} {:>12} {:>10} {:>10} {:>8} {:>8} {:>12} {:>10}",
        "workload",
        "calls",
        "calls/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "ratio",
        "cpu µs/call",
        "cpu ratio"
    );
    for m in measurements {
        let cpu = m.cpu_us_per_call();
        println!(
            "{:<28} {:>10} {:>12.0} {:>10.3} {:>10.3} {:>8} {:>8.3} {:>12.1} {:>10.3}",
            m.name,
            m.calls,
            m.per_second(),
            m.percentile(0.50).as_secs_f64() * 1e3,
            m.percentile(0.99).as_secs_f64() * 1e3,
            m.errors,
            m.per_second() / baseline,
            cpu.unwrap_or(f64::NAN),
            // Calls per CPU second against the baseline's: the ratio the machine would show
            // with the run to itself.
            baseline_cpu
                .zip(cpu)
                .map_or(f64::NAN, |(base, own)| base / own),
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The server's warnings and errors, which a measurement must not hide.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let data_dir = tempfile::tempdir()?;
    let scratch = match args.backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            Some(ScratchDatabase::create(&args.postgres_url, "sinergi_bench").await?)
        }
    };
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: data_dir.path().to_owned(),
        database_url: scratch.as_ref().map(|db| db.url().to_owned()),
        // A run over a large registry outlasts the default token lifetime.
        auth: AuthConfig {
            access_token_ttl_secs: 24 * 3600,
            ..AuthConfig::default()
        },
        ..Config::default()
    };
    config.metrics.listen = "127.0.0.1:0".parse()?;
    config.http.listen = "127.0.0.1:0".parse()?;
    // The bench drives everything as one agency on purpose; the per-agency limit would
    // measure itself.
    config.limits.agency_calls_per_second = 0;
    let outcome = run(&args, config).await;
    if let Some(scratch) = scratch {
        scratch.drop().await?;
    }
    outcome
}

/// Entry `i`, stamped with the current time as the server stamps each call it records (so
/// entries arrive in nearly ascending time, as in the server, and the log's time index grows at
/// its end).
fn bench_audit_entry(i: u64) -> PendingEntry {
    let entry = proto::AuditEntry {
        time_unix_micros: (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64,
        agency_id: "bench-disnaker".into(),
        subject: "00000000-0000-4000-8000-000000000000".into(),
        method: "/sinergi.v1.EmployerService/GetEmployer".into(),
        decision: proto::Decision::Allowed.into(),
        resource_ids: vec![format!("employer-{}", i % 5000)],
        peer: "127.0.0.1:40000".into(),
        ..Default::default()
    };
    PendingEntry::from_entry(&entry)
}

/// Entries per second that `concurrency` callers get durably appended through group commit.
async fn audit_append(
    store: Arc<dyn Store>,
    concurrency: usize,
    duration: Duration,
) -> (u64, Duration) {
    let (writer, task) = AuditWriter::start(
        Arc::clone(&store),
        Arc::new(sinergi::metrics::Metrics::new()),
    );
    let _writer_task = AbortOnDrop(task);
    // Where the store indexes records apart from the append, that work runs alongside, as
    // it does in the server.
    let _indexer = AbortOnDrop(tokio::spawn(index_audit_records(Arc::clone(&store))));
    let started = Instant::now();
    let deadline = started + duration;
    let callers: Vec<_> = (0..concurrency as u64)
        .map(|caller| {
            let writer = writer.clone();
            tokio::spawn(async move {
                let mut appended = 0u64;
                while Instant::now() < deadline {
                    if writer
                        .append(bench_audit_entry(caller << 32 | appended))
                        .await
                        .is_ok()
                    {
                        appended += 1;
                    }
                }
                appended
            })
        })
        .collect();
    let mut total = 0;
    for caller in callers {
        total += caller.await.unwrap_or(0);
    }
    (total, started.elapsed())
}

/// Fills the log to `size` entries, then times inclusion and consistency proofs (storage reads
/// included) at random positions; returns the median and p99 of each.
async fn proof_generation(store: Arc<dyn Store>, size: u64) -> anyhow::Result<[Duration; 4]> {
    let (mut current, _) = store.audit_head().await?;
    while current < size {
        let batch: Vec<PendingEntry> = (current..size.min(current + 2000))
            .map(bench_audit_entry)
            .collect();
        store.append_audit(&batch).await?;
        while store.sequence_audit(2000).await? > 0 {}
        current = store.audit_head().await?.0;
    }
    // The log was just filled far faster than calls append, and the server's record indexer
    // (on SQLite) is still working through it: settle that here first, so what is timed is
    // the proofs and not a catch-up no live log goes through all at once.
    let settling = Instant::now();
    while store.index_audit_records(10_000).await? > 0 {}
    println!(
        "audit record index caught up with the filled log in {:.1} s",
        settling.elapsed().as_secs_f64()
    );
    let mut inclusion = Vec::new();
    let mut consistency = Vec::new();
    let mut seed = 7u64;
    for _ in 0..500 {
        seed = xorshift(seed);
        let index = seed % current;
        let started = Instant::now();
        let nodes = store
            .audit_nodes(&merkle::inclusion_nodes(index, current))
            .await?;
        let proof = merkle::inclusion_proof(index, current, &nodes);
        inclusion.push(started.elapsed());
        anyhow::ensure!(proof.is_some(), "inclusion proof nodes missing");
        let old = 1 + seed % current;
        let started = Instant::now();
        let nodes = store
            .audit_nodes(&merkle::consistency_nodes(old, current))
            .await?;
        let proof = merkle::consistency_proof(old, current, &nodes);
        consistency.push(started.elapsed());
        anyhow::ensure!(proof.is_some(), "consistency proof nodes missing");
    }
    inclusion.sort_unstable();
    consistency.sort_unstable();
    let at = |v: &[Duration], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Ok([
        at(&inclusion, 0.5),
        at(&inclusion, 0.99),
        at(&consistency, 0.5),
        at(&consistency, 0.99),
    ])
}

/// Median cost of authenticating a call whose token was verified before (the cache hit every
/// call after an agency's first takes), in batches so the clock is read rarely.
async fn cached_verification(
    authenticator: &Authenticator,
    token: &str,
) -> anyhow::Result<Duration> {
    let header = format!("Bearer {token}");
    authenticator
        .authenticate(Some(header.as_bytes()), None)
        .await?;
    const BATCH: u32 = 1_000;
    let mut batches = Vec::with_capacity(200);
    for _ in 0..200 {
        let started = Instant::now();
        for _ in 0..BATCH {
            std::hint::black_box(
                authenticator
                    .authenticate(Some(header.as_bytes()), None)
                    .await?,
            );
        }
        batches.push(started.elapsed() / BATCH);
    }
    batches.sort_unstable();
    Ok(batches[batches.len() / 2])
}

/// An agency onboarded by the administrator, and a token for all of its grants.
async fn onboard(
    admin: &mut AdminClient,
    channel: Channel,
    id: &str,
    kind: proto::AgencyKind,
    grants: &[(&str, &[&str])],
) -> anyhow::Result<BearerToken> {
    let (key, _) = SigningKey::generate(KeyAlgorithm::EdDsa)?;
    let agency = proto::Agency {
        id: id.into(),
        kind: kind.into(),
        display_name: format!("Benchmark {id}"),
        ..Default::default()
    };
    onboard_agency(admin, agency, &key, grants).await?;
    let token = issue_token(channel, id, &key, "sinergi", None, None)
        .await?
        .access_token;
    Ok(BearerToken::new(&token)?)
}

/// An administrator, as `sinergi admin bootstrap` makes one.
async fn bench_admin(config: &Config, channel: Channel) -> anyhow::Result<AdminClient> {
    let (admin_key, _) = SigningKey::generate(KeyAlgorithm::EdDsa)?;
    let store = store::connect(config).await?;
    store.migrate().await?;
    bootstrap_admin(
        store.as_ref(),
        "bench-admin",
        "Benchmark administrators",
        &admin_key.public().canonical_json(),
    )
    .await
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    let admin_token = issue_token(
        channel.clone(),
        "bench-admin",
        &admin_key,
        "sinergi",
        None,
        None,
    )
    .await?
    .access_token;
    Ok(
        proto::agency_admin_service_client::AgencyAdminServiceClient::with_interceptor(
            channel,
            BearerToken::new(&admin_token)?,
        ),
    )
}

async fn run(args: &Args, config: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen).await?;
    let app = App::build(config.clone(), listener).await?;
    let addr = app.addr();
    let http_addr = app.http_addr();
    let metrics_addr = app.metrics_addr();
    let authenticator = app.authenticator();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(async {
        let _ = stopped.await;
    }));

    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(
            Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await?,
        );
    }
    let mut admin = bench_admin(&config, channels[0].clone()).await?;
    if args.suite == Suite::Soak {
        let (churn_key, _) = SigningKey::generate(KeyAlgorithm::EdDsa)?;
        onboard_agency(
            &mut admin,
            proto::Agency {
                id: "bench-churn".into(),
                kind: proto::AgencyKind::Disnaker.into(),
                display_name: "Benchmark bench-churn".into(),
                ..Default::default()
            },
            &churn_key,
            &[("employers.read", &[])],
        )
        .await?;
        let callers = soak::Callers {
            disnaker: onboard(
                &mut admin,
                channels[0].clone(),
                "bench-disnaker",
                proto::AgencyKind::Disnaker,
                &[
                    ("employers.read", &[]),
                    ("employers.write", &[]),
                    ("reports.write", &[]),
                ],
            )
            .await?,
            kesehatan: onboard(
                &mut admin,
                channels[0].clone(),
                "bench-bpjs-kesehatan",
                proto::AgencyKind::BpjsKesehatan,
                &[("reports.write", &[])],
            )
            .await?,
            inspector: onboard(
                &mut admin,
                channels[0].clone(),
                "bench-inspector",
                proto::AgencyKind::DisnakertransProvinsi,
                &[("feed.read", &[])],
            )
            .await?,
            churn: ("bench-churn".into(), churn_key),
            admin,
        };
        let outcome = soak::run(
            &config,
            &channels,
            metrics_addr.ok_or_else(|| anyhow::anyhow!("the metrics endpoint is off"))?,
            callers,
            args.employers,
            args.minutes,
        )
        .await;
        let _ = stop.send(());
        server.await??;
        return outcome;
    }
    if args.suite == Suite::Compliance {
        let writer: &[(&str, &[&str])] = &[("reports.write", &[]), ("compliance.read", &[])];
        let tokens = compliance::Tokens {
            disnaker: onboard(
                &mut admin,
                channels[0].clone(),
                "bench-disnaker",
                proto::AgencyKind::Disnaker,
                writer,
            )
            .await?,
            kesehatan: onboard(
                &mut admin,
                channels[0].clone(),
                "bench-bpjs-kesehatan",
                proto::AgencyKind::BpjsKesehatan,
                writer,
            )
            .await?,
            inspector: onboard(
                &mut admin,
                channels[0].clone(),
                "bench-inspector",
                proto::AgencyKind::DisnakertransProvinsi,
                &[("compliance.read", &[]), ("feed.read", &[])],
            )
            .await?,
        };
        compliance::run(
            &config,
            &channels,
            http_addr.ok_or_else(|| anyhow::anyhow!("the HTTP door is off"))?,
            &tokens,
            args.compliance_employers,
            args.concurrency,
            Duration::from_secs(args.seconds),
        )
        .await?;
        let _ = stop.send(());
        server.await??;
        return Ok(());
    }
    let bearer = onboard(
        &mut admin,
        channels[0].clone(),
        "bench-registry",
        proto::AgencyKind::Disnaker,
        &[("employers.read", &[]), ("employers.write", &[])],
    )
    .await?;
    let (ids, load_time) = load(channels[0].clone(), &bearer, args.employers).await?;
    println!(
        "backend {:?}: loaded {} employers in {:.2} s ({:.0}/s, 8 writers); {} in flight, {} s per workload, {} connections",
        args.backend,
        ids.len(),
        load_time.as_secs_f64(),
        ids.len() as f64 / load_time.as_secs_f64(),
        args.concurrency,
        args.seconds,
        channels.len(),
    );

    let duration = Duration::from_secs(args.seconds);
    let baseline = health_baseline(&channels, args.concurrency, duration).await;
    let ids = Arc::new(ids);
    let http_ids = Arc::clone(&ids);
    let get_bearer = bearer.clone();
    let get = drive(
        "GetEmployer (authenticated)",
        &channels,
        args.concurrency,
        duration,
        move |channel, seed| {
            let id = ids[(seed % ids.len() as u64) as usize].clone();
            let mut client = employers(channel, &get_bearer);
            async move {
                client
                    .get_employer(GetEmployerRequest {
                        key: Some(Key::Id(id)),
                    })
                    .await
                    .map(drop)
            }
        },
    )
    .await;
    let http_addr = http_addr.ok_or_else(|| anyhow::anyhow!("the HTTP door is off"))?;
    let connections = http::connections(http_addr, channels.len()).await?;
    let authorization: ::http::HeaderValue = format!("Bearer {}", bearer.token()).parse()?;
    let get_over_http = drive(
        "GetEmployer over HTTP/JSON",
        &connections,
        args.concurrency,
        duration,
        move |sender, seed| {
            let id = &http_ids[(seed % http_ids.len() as u64) as usize];
            http::get(
                sender,
                format!("http://{http_addr}/v1/employers/{id}"),
                authorization.clone(),
            )
        },
    )
    .await;
    let http_ratio = get_over_http.per_second() / get.per_second();
    let cpu = get.cpu_us_per_call().zip(get_over_http.cpu_us_per_call());
    report(&[baseline, get, get_over_http]);
    if let Some((grpc_cpu, http_cpu)) = cpu {
        println!(
            "GetEmployer over HTTP/JSON: {http_ratio:.3}× the calls/s over gRPC; {http_cpu:.1} \
             against {grpc_cpu:.1} µs of CPU per call (client and server), so the transcoder \
             costs about {:.1} µs per call",
            http_cpu - grpc_cpu
        );
    }

    let cached = cached_verification(&authenticator, bearer.token()).await?;
    println!(
        "cached token verification: median {:.2} µs per call",
        cached.as_secs_f64() * 1e6
    );

    let store = store::connect(&config).await?;
    let (appended, elapsed) = audit_append(Arc::clone(&store), args.concurrency, duration).await;
    println!(
        "audit append (group commit, {} callers): {appended} entries in {:.2} s = {:.0} entries/s",
        args.concurrency,
        elapsed.as_secs_f64(),
        appended as f64 / elapsed.as_secs_f64(),
    );
    let [
        inclusion_p50,
        inclusion_p99,
        consistency_p50,
        consistency_p99,
    ] = proof_generation(store, args.proof_log_size).await?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "proofs at {} entries: inclusion p50 {:.3} ms p99 {:.3} ms; consistency p50 {:.3} ms p99 {:.3} ms",
        args.proof_log_size,
        ms(inclusion_p50),
        ms(inclusion_p99),
        ms(consistency_p50),
        ms(consistency_p99),
    );

    let _ = stop.send(());
    server.await??;
    Ok(())
}

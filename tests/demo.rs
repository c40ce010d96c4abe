//! The demo world, loaded through the public RPCs into a real server on both backends, tells
//! the articles' story: the gap of 500, that employer first in its regency's list, coverage
//! near the published figures, the prosecutors' 50 % success, a TMP2T check that answers
//! "withheld", and an audit log that verifies. And `sinergi demo` itself: it resumes its world,
//! refuses a directory it did not make, and names a port in use.

mod common;

use std::process::Stdio;

use common::TestApp;
use sinergi::client::BearerToken;
use sinergi::demo::load::{Credentials, Loaded, load};
use sinergi::demo::progress::Progress;
use sinergi::demo::world::{CENTRAL_REGISTERED, CENTRAL_WORKERS, REGIONS, World};
use sinergi::proto::{
    self, compliance_service_client::ComplianceServiceClient,
    referral_service_client::ReferralServiceClient, sanction_service_client::SanctionServiceClient,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Small enough for a test, large enough for every part of the story.
const EMPLOYERS: usize = 300;

struct Demo {
    app: TestApp,
    world: World,
    loaded: Loaded,
    dir: tempfile::TempDir,
}

impl Demo {
    /// A channel carrying the token the load wrote for `agency`.
    fn as_agency(&self, agency: &str) -> InterceptedService<Channel, BearerToken> {
        let token =
            std::fs::read_to_string(self.dir.path().join("agencies").join(agency).join("token"))
                .expect("the agency's token file");
        InterceptedService::new(
            self.app.channel.clone(),
            BearerToken::new(token.trim()).expect("an ASCII token"),
        )
    }
}

/// Loads the demo world of `EMPLOYERS` employers into `app`, whose administrator onboards
/// every agency.
async fn load_demo(app: TestApp) -> Demo {
    let world = World::generate(EMPLOYERS, sinergi::demo::SEED);
    let dir = tempfile::tempdir().expect("a directory for the agencies' keys");
    let admin = Credentials {
        id: app.admin.id.clone(),
        key: app.admin.key.clone(),
        token: app.admin.token.clone(),
    };
    let loaded = load(
        app.channel.clone(),
        &admin,
        &world,
        dir.path(),
        &mut Progress::silent(),
    )
    .await
    .expect("the demo world loads");
    Demo {
        app,
        world,
        loaded,
        dir,
    }
}

fn region(code: &str) -> Option<proto::RegionCode> {
    Some(proto::RegionCode { code: code.into() })
}

const OCTOBER: proto::Period = proto::Period {
    year: 2026,
    month: 10,
};

async fn the_story_holds(app: TestApp) {
    let demo = load_demo(app).await;
    let central = &demo.loaded.central_employer_id;
    let jkn = proto::ProgrammeGroup::Jkn as i32;

    // The central case: 1,500 workers, 1,000 registered, a gap of 500.
    let statuses = ComplianceServiceClient::new(demo.as_agency("bpjs-kes-pekalongan"))
        .get_compliance_status(proto::GetComplianceStatusRequest {
            employer_id: central.clone(),
        })
        .await
        .expect("the central employer's statuses")
        .into_inner()
        .statuses;
    let status = statuses
        .iter()
        .find(|s| s.programme_group == jkn)
        .expect("a JKN status");
    assert_eq!(status.workers_reported, Some(CENTRAL_WORKERS));
    assert_eq!(status.workers_registered, Some(CENTRAL_REGISTERED));
    assert_eq!(status.gap, 500);
    assert!(
        status
            .categories
            .contains(&(proto::ComplianceCategory::PdsTk as i32))
    );

    // Listed first by gap for its regency, as inspectors of the province see it.
    let inspectors = demo.as_agency("disnakertrans-jateng");
    let listed = ComplianceServiceClient::new(inspectors.clone())
        .list_non_compliant(proto::ListNonCompliantRequest {
            programme_group: jkn,
            region_prefix: region("33.25"),
            order: proto::list_non_compliant_request::Order::Gap.into(),
            page_size: 5,
            ..Default::default()
        })
        .await
        .expect("Batang's non-compliant employers")
        .into_inner()
        .employers;
    assert_eq!(listed.first().map(|e| &e.employer_id), Some(central));
    assert!(listed.windows(2).all(|pair| {
        let gap = |e: &proto::NonCompliantEmployer| e.status.as_ref().map_or(0, |s| s.gap);
        gap(&pair[0]) >= gap(&pair[1])
    }));
    // And first in the province's list by priority: the largest gap, half a year of arrears.
    let prioritised = ComplianceServiceClient::new(inspectors.clone())
        .list_non_compliant(proto::ListNonCompliantRequest {
            programme_group: jkn,
            region_prefix: region("33"),
            order: proto::list_non_compliant_request::Order::Priority.into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("Jawa Tengah's prioritised list")
        .into_inner()
        .employers;
    assert_eq!(prioritised.first().map(|e| &e.employer_id), Some(central));

    // Coverage near the published figures: JKN in Kota Pekalongan about 86 %, in Batang about
    // 74 %; BPJS Ketenagakerjaan far lower; 40 % of Banten's employers not compliant.
    let mut coverage = ComplianceServiceClient::new(demo.as_agency("disnaker-kota-pekalongan"));
    let figures = |group: proto::ProgrammeGroup, code: &str| proto::GetCoverageRequest {
        region_prefix: region(code),
        period: Some(OCTOBER),
        programme_group: group.into(),
    };
    for (code, expected) in [("33.75", 86.0), ("33.25", 74.0)] {
        let total = coverage
            .get_coverage(figures(proto::ProgrammeGroup::Jkn, code))
            .await
            .expect("coverage")
            .into_inner()
            .total
            .expect("the region's figures");
        assert!(
            (total.coverage_percent - expected).abs() < 1.5,
            "{code}: {}",
            total.coverage_percent
        );
    }
    let labour = coverage
        .get_coverage(figures(proto::ProgrammeGroup::Ketenagakerjaan, "33.75"))
        .await
        .expect("labour coverage")
        .into_inner()
        .total
        .expect("the region's figures");
    assert!(
        labour.coverage_percent < 40.0,
        "{}",
        labour.coverage_percent
    );
    let banten = coverage
        .get_coverage(figures(proto::ProgrammeGroup::Jkn, "36"))
        .await
        .expect("Banten's coverage")
        .into_inner()
        .total
        .expect("Banten's figures");
    let banten_employers: usize = REGIONS
        .iter()
        .filter(|r| r.code.starts_with("36"))
        .map(|r| {
            demo.world
                .employers
                .iter()
                .filter(|e| e.region.code == r.code)
                .count()
        })
        .sum();
    assert_eq!(banten.employers_counted, banten_employers as u64);
    let expected_short: u64 = REGIONS
        .iter()
        .filter(|r| r.code.starts_with("36"))
        .map(|r| {
            let members = demo
                .world
                .employers
                .iter()
                .filter(|e| e.region.code == r.code);
            (members.count() as f64 * r.jkn_non_compliant).round() as u64
        })
        .sum();
    assert_eq!(banten.non_compliant_employers, expected_short);

    // The licensing office's counter: services are withheld from the central employer.
    let central_npwp = demo.world.employers[demo.world.central].npwp.clone();
    let check = SanctionServiceClient::new(demo.as_agency("dpmptsp-batang"))
        .check_employer_sanctions(proto::CheckEmployerSanctionsRequest {
            npwp: central_npwp,
            nib: String::new(),
        })
        .await
        .expect("the TMP2T check")
        .into_inner();
    assert!(check.withheld);
    assert_eq!(
        check.services,
        [
            proto::WithheldService::BusinessLicence as i32,
            proto::WithheldService::Tender as i32
        ]
    );

    // The prosecutors: half the ended referrals succeeded; the central case is in mediation.
    let today = time::OffsetDateTime::now_utc().date();
    let stats = ReferralServiceClient::new(inspectors)
        .get_referral_stats(proto::GetReferralStatsRequest {
            region_prefix: region("33"),
            opened_from: "2026-01-01".into(),
            opened_to: today.next_day().expect("tomorrow").to_string(),
        })
        .await
        .expect("referral statistics")
        .into_inner()
        .total
        .expect("the province's statistics");
    assert_eq!(stats.opened, demo.world.referrals.len() as u64);
    assert_eq!(stats.success_rate_percent, 50.0);
    assert!(stats.resolved_complied > 0 && stats.resolved_paid > 0);
    assert!(stats.amount_recovered > 0);
    let mut as_kejari = tonic::Request::new(proto::ListReferralsRequest::default());
    as_kejari.metadata_mut().insert(
        "x-purpose",
        "penanganan perkara SKK".parse().expect("ASCII"),
    );
    let cases = ReferralServiceClient::new(demo.as_agency("kejari-batang"))
        .list_referrals(as_kejari)
        .await
        .expect("the Kejari's cases")
        .into_inner()
        .referrals;
    let central_referral = cases
        .iter()
        .find(|r| &r.employer_id == central)
        .expect("the central case among Kejari Batang's");
    assert_eq!(
        central_referral.status,
        proto::ReferralStatus::Meeting as i32
    );
    assert!(cases.iter().all(|r| r.kejari_agency_id == "kejari-batang"));

    // Everything above is in an audit log that verifies, entry by entry, from outside.
    let mut audit = proto::audit_service_client::AuditServiceClient::new(
        demo.as_agency(sinergi::demo::world::ADMIN),
    );
    let verified = sinergi::client::verify::verify_server(
        &mut audit,
        &demo.dir.path().join("checkpoint.txt"),
        None,
        true,
    )
    .await
    .expect("the audit log verifies");
    assert!(verified.entries_checked as usize > demo.loaded.employers);
}

on_both_backends!(the_story_holds);

/// Runs `sinergi demo` with `args` in `dir` and returns its output once it exits.
async fn demo_command(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_sinergi"))
        .arg("demo")
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .expect("sinergi runs")
}

#[tokio::test]
async fn a_directory_the_demo_did_not_make_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("a directory");
    let data = dir.path().join("sinergi-demo");
    std::fs::create_dir(&data).expect("a data directory");
    std::fs::write(data.join("sinergi.db"), b"a deployment's own database").expect("a file");
    let output = demo_command(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"],
    )
    .await;
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("did not make"), "{said}");
    let left: Vec<_> = std::fs::read_dir(&data)
        .expect("still there")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    assert_eq!(left, ["sinergi.db"]);
    assert_eq!(
        std::fs::read(data.join("sinergi.db")).expect("the file"),
        b"a deployment's own database"
    );
}

#[tokio::test]
async fn a_port_in_use_is_named_and_nothing_is_written() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let dir = tempfile::tempdir().expect("a directory");
    let output = demo_command(
        dir.path(),
        &["--listen", &addr, "--http-listen", "127.0.0.1:0"],
    )
    .await;
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains(&addr), "{said}");
    assert!(!dir.path().join("sinergi-demo").exists());
}

/// Starts `sinergi demo` in `dir` and waits for the line that says it serves; returns the
/// process and everything it printed before.
async fn start_demo(dir: &std::path::Path, args: &[&str]) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sinergi"))
        .arg("demo")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("sinergi demo starts");
    let mut lines = BufReader::new(child.stdout.take().expect("its output")).lines();
    let mut printed = String::new();
    while let Some(line) = lines.next_line().await.expect("its output") {
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Serving until Ctrl-C") {
            return (child, printed);
        }
    }
    panic!("sinergi demo stopped before serving:\n{printed}");
}

#[tokio::test]
async fn a_second_run_resumes_the_world_and_reset_loads_it_anew() {
    let dir = tempfile::tempdir().expect("a directory");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address").to_string()
    };
    let args = [
        "--listen",
        port.as_str(),
        "--http-listen",
        "127.0.0.1:0",
        "--employers",
        "100",
    ];
    let (mut first, printed) = start_demo(dir.path(), &args).await;
    assert!(printed.contains("loaded in"), "{printed}");
    assert!(printed.contains("sinergi.v1.ComplianceService/ListNonCompliant"));
    let central = |printed: &str| {
        printed
            .lines()
            .find_map(|line| line.split_once("employer id "))
            .map(|(_, rest)| rest.trim_end_matches(':').to_owned())
    };
    let loaded_central = central(&printed).expect("the central employer");
    first.kill().await.expect("stopped");
    first.wait().await.expect("gone");

    let (mut second, printed) = start_demo(dir.path(), &args).await;
    assert!(printed.contains("(resumed)"), "{printed}");
    assert_eq!(central(&printed), Some(loaded_central.clone()));
    second.kill().await.expect("stopped");
    second.wait().await.expect("gone");

    let reset: Vec<&str> = args.iter().copied().chain(["--reset"]).collect();
    let (mut third, printed) = start_demo(dir.path(), &reset).await;
    assert!(printed.contains("loaded in"), "{printed}");
    assert_ne!(central(&printed), Some(loaded_central));
    third.kill().await.expect("stopped");
}

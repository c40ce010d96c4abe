//! Inspections, sanctions and prosecutor referrals over real gRPC, on SQLite and PostgreSQL: the
//! whole story of the source articles, and every refusal the lifecycles promise.

mod common;

use std::time::{Duration, Instant};

use common::{TestAgency, TestApp, create, employer, unique_number};
use prost::Message;
use sinergi::proto::{
    self, AgencyKind, ComplianceCategory as Cat, InspectionStep, ProgrammeGroup, ReferralStatus,
    ReferralStep, SanctionStatus, SanctionStep, WithheldService,
    audit_service_client::AuditServiceClient, compliance_service_client::ComplianceServiceClient,
    feed_service_client::FeedServiceClient, inspection_service_client::InspectionServiceClient,
    referral_service_client::ReferralServiceClient, report_submission,
    sanction_service_client::SanctionServiceClient, watch_response,
};
use time::{Duration as Days, OffsetDateTime};
use tonic::Code;
use tonic_types::StatusExt;

const PATIENCE: Duration = Duration::from_secs(10);

/// A date `offset` days from today (WIB), as the contract writes dates.
fn day(offset: i64) -> String {
    let today = OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+7))
        .date();
    (today + Days::days(offset)).to_string()
}

/// Everyone the story needs, all in Kota Pekalongan (33.75) or everywhere.
struct Parties {
    disnaker: TestAgency,
    bpjs: TestAgency,
    licensing: TestAgency,
    kejari: TestAgency,
    inspector: TestAgency,
}

async fn parties(app: &TestApp) -> Parties {
    Parties {
        disnaker: app
            .agency(
                AgencyKind::Disnaker,
                &[("reports.write", &[]), ("compliance.read", &[])],
            )
            .await,
        bpjs: app
            .agency(
                AgencyKind::BpjsKesehatan,
                &[
                    ("reports.write", &[]),
                    ("compliance.read", &[]),
                    ("sanctions.write", &[]),
                    ("sanctions.read", &[]),
                    ("referrals.create", &[]),
                    ("referrals.read", &[]),
                    ("feed.read", &[]),
                ],
            )
            .await,
        licensing: app
            .agency(
                AgencyKind::LicensingOffice,
                &[("sanctions.write", &["33.75"]), ("sanctions.check", &[])],
            )
            .await,
        kejari: kejari(app).await,
        inspector: app
            .agency(
                AgencyKind::DisnakertransProvinsi,
                &[
                    ("inspections.write", &["33"]),
                    ("inspections.read", &["33"]),
                    ("referrals.read", &["33"]),
                    ("compliance.read", &[]),
                ],
            )
            .await,
    }
}

async fn kejari(app: &TestApp) -> TestAgency {
    app.agency(
        AgencyKind::Kejaksaan,
        &[
            ("referrals.progress", &[]),
            ("referrals.read", &[]),
            ("feed.read", &[]),
        ],
    )
    .await
}

async fn new_employer(app: &TestApp) -> proto::Employer {
    let mut draft = employer(&format!("PT Batik Contoh {}", unique_number()));
    draft.size_class = proto::SizeClass::Large.into();
    create(app, draft).await
}

/// Reports 1,500 workers (Disnaker) and `registered` JKN registrations (BPJS Kesehatan).
async fn report_gap(app: &TestApp, parties: &Parties, employer_id: &str, registered: u32) {
    let with_employer = |figures| {
        let id = employer_id.to_owned();
        (id, figures)
    };
    for (agency, (id, figures)) in [
        (
            &parties.disnaker,
            with_employer(report_submission::Figures::Workforce(
                proto::WorkforceFigures {
                    total_workers: 1500,
                    total_wage_bill: Some(1500 * 4_000_000),
                    wage_bands: vec![],
                },
            )),
        ),
        (&parties.bpjs, with_employer(registration(registered))),
    ] {
        ComplianceServiceClient::new(app.authed(&agency.token))
            .submit_report(proto::SubmitReportRequest {
                report: Some(proto::ReportSubmission {
                    employer: Some(report_submission::Employer::EmployerId(id)),
                    period: Some(proto::Period {
                        year: 2026,
                        month: 10,
                    }),
                    figures: Some(figures),
                }),
                request_id: String::new(),
            })
            .await
            .expect("report stored");
    }
}

fn registration(registered: u32) -> report_submission::Figures {
    report_submission::Figures::Registration(proto::RegistrationFigures {
        programme_group: ProgrammeGroup::Jkn.into(),
        registered_workers: registered,
        enrolled_programmes: vec![proto::Programme::Jkn.into()],
        reported_wage_total: u64::from(registered) * 4_000_000,
        arrears_amount: if registered < 1500 { 150_000_000 } else { 0 },
        arrears_months: if registered < 1500 { 3 } else { 0 },
    })
}

fn sanctions(app: &TestApp, agency: &TestAgency) -> SanctionServiceClient<common::Authed> {
    SanctionServiceClient::new(app.authed(&agency.token))
}

fn referrals(app: &TestApp, agency: &TestAgency) -> ReferralServiceClient<common::Authed> {
    ReferralServiceClient::new(app.authed(&agency.token))
}

fn inspections(app: &TestApp, agency: &TestAgency) -> InspectionServiceClient<common::Authed> {
    InspectionServiceClient::new(app.authed(&agency.token))
}

fn with_purpose<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-purpose", "penegakan kepatuhan".parse().expect("ASCII"));
    request
}

async fn sanction_step(
    app: &TestApp,
    agency: &TestAgency,
    request: proto::TakeSanctionStepRequest,
) -> Result<proto::SanctionTrack, tonic::Status> {
    sanctions(app, agency)
        .take_sanction_step(request)
        .await
        .map(tonic::Response::into_inner)
}

fn step(
    track: &proto::SanctionTrack,
    step: SanctionStep,
    date: String,
) -> proto::TakeSanctionStepRequest {
    proto::TakeSanctionStepRequest {
        track_id: track.id.clone(),
        step: step.into(),
        etag: track.etag.clone(),
        effective_date: date,
        document_ref: format!("B/{}/2026", unique_number()),
        ..Default::default()
    }
}

fn warning_1(employer_id: &str, date: String) -> proto::TakeSanctionStepRequest {
    proto::TakeSanctionStepRequest {
        employer_id: employer_id.into(),
        step: SanctionStep::Warning1.into(),
        effective_date: date,
        document_ref: format!("B/{}/2026", unique_number()),
        ..Default::default()
    }
}

fn new_referral(employer_id: &str, kejari: &TestAgency) -> proto::CreateReferralRequest {
    proto::CreateReferralRequest {
        employer_id: employer_id.into(),
        kejari_agency_id: kejari.id.clone(),
        skk_number: format!("SKK-{}/BPJS/2026", unique_number()),
        skk_date: day(-2),
        amount_claimed: 150_000_000,
        note: "Tunggakan dan PDS tenaga kerja".into(),
        ..Default::default()
    }
}

async fn advance(
    app: &TestApp,
    agency: &TestAgency,
    referral: &proto::Referral,
    step: ReferralStep,
    adjust: impl FnOnce(&mut proto::AdvanceReferralRequest),
) -> Result<proto::Referral, tonic::Status> {
    let mut request = proto::AdvanceReferralRequest {
        referral_id: referral.id.clone(),
        step: step.into(),
        etag: referral.etag.clone(),
        ..Default::default()
    };
    adjust(&mut request);
    referrals(app, agency)
        .advance_referral(request)
        .await
        .map(|r| r.into_inner().referral.expect("referral in view"))
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

fn allowed_next(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .and_then(|info| info.metadata.get("allowed_next_steps").cloned())
        .unwrap_or_default()
}

async fn check(
    app: &TestApp,
    agency: &TestAgency,
    npwp: &str,
) -> proto::CheckEmployerSanctionsResponse {
    sanctions(app, agency)
        .check_employer_sanctions(proto::CheckEmployerSanctionsRequest {
            npwp: npwp.into(),
            nib: String::new(),
        })
        .await
        .expect("check answered")
        .into_inner()
}

fn categories(status: &proto::ComplianceStatus) -> Vec<Cat> {
    status
        .categories
        .iter()
        .map(|c| Cat::try_from(*c).expect("category"))
        .collect()
}

async fn jkn_status(
    app: &TestApp,
    agency: &TestAgency,
    employer_id: &str,
) -> proto::ComplianceStatus {
    ComplianceServiceClient::new(app.authed(&agency.token))
        .get_compliance_status(proto::GetComplianceStatusRequest {
            employer_id: employer_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .statuses
        .into_iter()
        .find(|s| s.programme_group == i32::from(ProgrammeGroup::Jkn))
        .expect("a JKN status")
}

/// The story of the source articles, from the gap to compliance, with the audit log verified.
async fn the_whole_story_from_gap_to_compliance(app: TestApp) {
    let parties = parties(&app).await;
    let employer = new_employer(&app).await;
    report_gap(&app, &parties, &employer.id, 1000).await;

    // The status shows PDS_TK with a gap of 500.
    let jkn = &jkn_status(&app, &parties.bpjs, &employer.id).await;
    assert!(categories(jkn).contains(&Cat::PdsTk));
    assert_eq!(jkn.gap, 500);

    // The provincial inspectors open an inspection on that finding.
    let inspection = inspections(&app, &parties.inspector)
        .open_inspection(proto::OpenInspectionRequest {
            employer_id: employer.id.clone(),
            joint_agency_id: parties.bpjs.id.clone(),
            triggered_by_group: ProgrammeGroup::Jkn.into(),
            note: "Data match: 500 workers not registered".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inspection.triggering_finding.as_ref().unwrap().gap, 500);

    // Warnings, the fine and TMP2T follow, each period run.
    let mut track = sanction_step(&app, &parties.bpjs, warning_1(&employer.id, day(-40)))
        .await
        .unwrap();
    for (next, date) in [
        (SanctionStep::Warning2, day(-20)),
        (SanctionStep::Fine, day(-5)),
        (SanctionStep::RequestTmp2t, day(-4)),
    ] {
        let mut request = step(&track, next, date);
        request.fine_amount = 450_000;
        request.withheld_services = vec![
            WithheldService::BusinessLicence.into(),
            WithheldService::Tender.into(),
        ];
        track = sanction_step(&app, &parties.bpjs, request).await.unwrap();
    }
    assert_eq!(track.status, i32::from(SanctionStatus::Tmp2tRequested));
    let justified = track.history[1].justified_by.as_ref().unwrap();
    assert_eq!(
        justified.gap, 500,
        "each step keeps the status that justified it"
    );
    track = sanction_step(
        &app,
        &parties.licensing,
        step(&track, SanctionStep::ActivateTmp2t, day(-3)),
    )
    .await
    .unwrap();
    assert_eq!(track.status, i32::from(SanctionStatus::Tmp2tActive));

    // A licensing counter checks the employer: withheld.
    let answer = check(&app, &parties.licensing, &employer.npwp).await;
    assert!(answer.withheld);
    assert_eq!(
        answer.services,
        [
            i32::from(WithheldService::BusinessLicence),
            i32::from(WithheldService::Tender)
        ]
    );

    // BPJS hands the case to the Kejari.
    let view = referrals(&app, &parties.bpjs)
        .create_referral(new_referral(&employer.id, &parties.kejari))
        .await
        .unwrap()
        .into_inner();
    let mut referral = view.referral.unwrap();
    assert_eq!(referral.status, i32::from(ReferralStatus::SkkIssued));
    let evidence = referral.evidence.as_ref().unwrap();
    assert_eq!(evidence.status.as_ref().unwrap().gap, 500);
    assert_eq!(
        evidence.reports.len(),
        2,
        "the workforce and registration reports"
    );

    // The prosecutor lists its cases and prepares the summons from one read.
    let listed = referrals(&app, &parties.kejari)
        .list_referrals(with_purpose(proto::ListReferralsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .referrals;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, referral.id);
    let prepared = referrals(&app, &parties.kejari)
        .get_referral(with_purpose(proto::GetReferralRequest {
            referral_id: referral.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(prepared.employer.unwrap().npwp, employer.npwp);
    assert_eq!(prepared.current_statuses.len(), 2);
    assert_eq!(
        prepared.referral.unwrap().evidence.unwrap().reports.len(),
        2
    );

    // ... and advances it to "complied".
    referral = advance(
        &app,
        &parties.kejari,
        &referral,
        ReferralStep::ReceiveSkk,
        |_| {},
    )
    .await
    .unwrap();
    referral = advance(
        &app,
        &parties.kejari,
        &referral,
        ReferralStep::SendDemand,
        |r| {
            r.due_date = day(14);
            r.document_ref = "B-123/M.3.29/Gp.2/2026".into();
        },
    )
    .await
    .unwrap();
    assert_eq!(referral.due_date, day(14));
    assert!(!referral.overdue);
    referral = advance(
        &app,
        &parties.kejari,
        &referral,
        ReferralStep::HoldMeeting,
        |r| {
            r.note = "Employer agrees to register all workers".into();
        },
    )
    .await
    .unwrap();
    referral = advance(
        &app,
        &parties.kejari,
        &referral,
        ReferralStep::ResolveComplied,
        |r| {
            r.amount_recovered = 150_000_000;
        },
    )
    .await
    .unwrap();
    assert_eq!(referral.status, i32::from(ReferralStatus::ResolvedComplied));
    assert!(referral.close_time.is_some());
    let steps: Vec<&str> = referral.history.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(
        steps,
        [
            "ISSUE_SKK",
            "RECEIVE_SKK",
            "SEND_DEMAND",
            "HOLD_MEETING",
            "RESOLVE_COMPLIED"
        ]
    );

    // BPJS reports all 1,500 registered: the status turns COMPLIANT.
    report_gap(&app, &parties, &employer.id, 1500).await;
    let jkn = &jkn_status(&app, &parties.bpjs, &employer.id).await;
    assert_eq!(categories(jkn), [Cat::Compliant]);

    // TMP2T is lifted.
    track = sanction_step(
        &app,
        &parties.bpjs,
        step(&track, SanctionStep::RequestRevocation, day(0)),
    )
    .await
    .unwrap();
    assert_eq!(track.status, i32::from(SanctionStatus::RevocationRequested));
    assert!(
        check(&app, &parties.licensing, &employer.npwp)
            .await
            .withheld,
        "withheld until lifted"
    );
    track = sanction_step(
        &app,
        &parties.licensing,
        step(&track, SanctionStep::LiftTmp2t, day(0)),
    )
    .await
    .unwrap();
    assert_eq!(track.status, i32::from(SanctionStatus::Lifted));
    assert_eq!(
        check(&app, &parties.licensing, &employer.npwp).await,
        proto::CheckEmployerSanctionsResponse::default()
    );

    // The stats count one success.
    let stats = referrals(&app, &parties.inspector)
        .get_referral_stats(proto::GetReferralStatsRequest {
            region_prefix: Some(proto::RegionCode {
                code: "33.75".into(),
            }),
            opened_from: day(-1),
            opened_to: day(0),
        })
        .await
        .unwrap()
        .into_inner();
    let total = stats.total.unwrap();
    assert_eq!(
        (
            total.opened,
            total.resolved_complied,
            total.failed,
            total.open
        ),
        (1, 1, 0, 0)
    );
    assert_eq!(total.success_rate_percent, 100.0);
    assert_eq!(total.amount_recovered, 150_000_000);
    assert_eq!(stats.regions.len(), 1);
    assert_eq!(stats.regions[0].region.as_ref().unwrap().code, "33.75");

    // The audit log verifies, with every step in it.
    let auditor = app.agency(AgencyKind::Admin, &[("audit.read", &[])]).await;
    let mut client = AuditServiceClient::new(app.authed(&auditor.token));
    let wanted = [
        ("OpenInspection", 1),
        ("TakeSanctionStep", 7),
        ("CheckEmployerSanctions", 3),
        ("CreateReferral", 1),
        ("ListReferrals", 1),
        ("GetReferral", 1),
        ("AdvanceReferral", 4),
        ("GetReferralStats", 1),
    ];
    let started = Instant::now();
    let entries = loop {
        let size = client
            .get_checkpoint(proto::GetCheckpointRequest {})
            .await
            .unwrap()
            .into_inner()
            .tree_size;
        let mut entries = Vec::new();
        while (entries.len() as u64) < size {
            let page = client
                .get_entries(proto::GetEntriesRequest {
                    start: entries.len() as u64,
                    end: size,
                })
                .await
                .unwrap()
                .into_inner();
            entries.extend(page.entries);
        }
        let decoded: Vec<proto::AuditEntry> = entries
            .iter()
            .map(|bytes| proto::AuditEntry::decode(bytes.as_slice()).unwrap())
            .collect();
        let complete = wanted.iter().all(|(method, count)| {
            decoded
                .iter()
                .filter(|e| e.method.ends_with(method) && e.status_code == 0)
                .count()
                >= *count
        });
        if complete {
            break decoded;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the steps never all reached the log"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let referral_steps = entries
        .iter()
        .filter(|e| e.method.ends_with("AdvanceReferral") && e.resource_ids.contains(&referral.id))
        .count();
    assert_eq!(referral_steps, 4, "each step names the referral");
    assert!(
        entries
            .iter()
            .filter(|e| e.method.ends_with("GetReferral"))
            .all(|e| e.purpose == "penegakan kepatuhan"),
        "referral reads keep their purpose"
    );
    let saved = tempfile::tempdir().unwrap();
    let verified = sinergi::client::verify::verify_server(
        &mut client,
        &saved.path().join("checkpoint.txt"),
        None,
        true,
    )
    .await
    .expect("the log verifies");
    assert_eq!(verified.entries_checked, verified.checkpoint.size);
    assert!(verified.checkpoint.size as usize >= entries.len());
}

/// Every refusal the referral lifecycle promises.
async fn referrals_refuse_the_wrong_party_skipped_steps_and_stale_etags(app: TestApp) {
    let parties = parties(&app).await;
    let employer = new_employer(&app).await;

    // No non-compliance on record yet.
    let refused = referrals(&app, &parties.bpjs)
        .create_referral(new_referral(&employer.id, &parties.kejari))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    report_gap(&app, &parties, &employer.id, 1000).await;
    let request = new_referral(&employer.id, &parties.kejari);
    let mut referral = referrals(&app, &parties.bpjs)
        .create_referral(request.clone())
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();

    // The SKK number is used once.
    let reused = referrals(&app, &parties.bpjs)
        .create_referral(request.clone())
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");

    // Only BPJS agencies open referrals, and only to a Kejari.
    let by_kejari = referrals(&app, &parties.kejari)
        .create_referral(new_referral(&employer.id, &parties.kejari))
        .await
        .unwrap_err();
    assert_eq!(by_kejari.code(), Code::PermissionDenied);
    let to_bpjs = referrals(&app, &parties.bpjs)
        .create_referral(new_referral(&employer.id, &parties.bpjs))
        .await
        .unwrap_err();
    assert_eq!(to_bpjs.code(), Code::InvalidArgument);

    // A step by another Kejari, or by the BPJS branch, is not theirs.
    let other_kejari = kejari(&app).await;
    let wrong = advance(
        &app,
        &other_kejari,
        &referral,
        ReferralStep::ReceiveSkk,
        |_| {},
    )
    .await
    .unwrap_err();
    assert_eq!(wrong.code(), Code::PermissionDenied, "{wrong:?}");
    let by_bpjs = advance(
        &app,
        &parties.bpjs,
        &referral,
        ReferralStep::ReceiveSkk,
        |_| {},
    )
    .await
    .unwrap_err();
    assert_eq!(by_bpjs.code(), Code::PermissionDenied, "{by_bpjs:?}");

    // Steps cannot be skipped; the refusal names what is allowed.
    let skipped = advance(
        &app,
        &parties.kejari,
        &referral,
        ReferralStep::RecordUndertaking,
        |r| {
            r.instalments = vec![proto::Instalment {
                due_date: day(30),
                amount: 50_000_000,
            }];
        },
    )
    .await
    .unwrap_err();
    assert_eq!(skipped.code(), Code::FailedPrecondition, "{skipped:?}");
    assert_eq!(reason(&skipped), "INVALID_TRANSITION");
    assert_eq!(allowed_next(&skipped), "RECEIVE_SKK");

    // A demand needs its due date.
    let received = advance(
        &app,
        &parties.kejari,
        &referral,
        ReferralStep::ReceiveSkk,
        |_| {},
    )
    .await
    .unwrap();
    let no_due = advance(
        &app,
        &parties.kejari,
        &received,
        ReferralStep::SendDemand,
        |_| {},
    )
    .await
    .unwrap_err();
    assert_eq!(no_due.code(), Code::InvalidArgument);

    // A stale etag changes nothing.
    let stale = advance(
        &app,
        &parties.kejari,
        &referral,
        ReferralStep::SendDemand,
        |r| {
            r.due_date = day(14);
        },
    )
    .await
    .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    referral = received;

    // An undertaking that is not kept fails the case; the SKK goes back; nothing follows.
    referral = advance(
        &app,
        &parties.kejari,
        &referral,
        ReferralStep::SendDemand,
        |r| {
            r.due_date = day(14);
        },
    )
    .await
    .unwrap();
    referral = advance(
        &app,
        &parties.kejari,
        &referral,
        ReferralStep::HoldMeeting,
        |_| {},
    )
    .await
    .unwrap();
    referral = advance(
        &app,
        &parties.kejari,
        &referral,
        ReferralStep::RecordUndertaking,
        |r| {
            r.instalments = vec![
                proto::Instalment {
                    due_date: day(30),
                    amount: 50_000_000,
                },
                proto::Instalment {
                    due_date: day(60),
                    amount: 100_000_000,
                },
            ];
        },
    )
    .await
    .unwrap();
    assert_eq!(referral.due_date, day(30));
    assert_eq!(referral.instalments.len(), 2);
    referral = advance(&app, &parties.kejari, &referral, ReferralStep::Fail, |_| {})
        .await
        .unwrap();
    referral = advance(
        &app,
        &parties.kejari,
        &referral,
        ReferralStep::ReturnSkk,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(referral.status, i32::from(ReferralStatus::SkkReturned));
    let after_end = advance(
        &app,
        &parties.kejari,
        &referral,
        ReferralStep::ResolvePaid,
        |r| {
            r.amount_recovered = 1;
        },
    )
    .await
    .unwrap_err();
    assert_eq!(after_end.code(), Code::FailedPrecondition);
    assert_eq!(allowed_next(&after_end), "");

    // Litigation needs a new SKK: a new referral continuing the returned one.
    let mut litigation = new_referral(&employer.id, &parties.kejari);
    litigation.previous_referral_id = referral.id.clone();
    let continued = referrals(&app, &parties.bpjs)
        .create_referral(litigation)
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(continued.previous_referral_id, referral.id);

    // Reads need a purpose, and show each reader only its referrals.
    let no_purpose = referrals(&app, &parties.kejari)
        .list_referrals(proto::ListReferralsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(no_purpose.code(), Code::InvalidArgument);
    let fields: Vec<String> = no_purpose
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["x-purpose"]);
    let theirs = referrals(&app, &other_kejari)
        .list_referrals(with_purpose(proto::ListReferralsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .referrals;
    assert!(theirs.is_empty(), "another Kejari sees none of these");
    let not_theirs = referrals(&app, &other_kejari)
        .get_referral(with_purpose(proto::GetReferralRequest {
            referral_id: referral.id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(not_theirs.code(), Code::PermissionDenied);
    let failed = referrals(&app, &parties.inspector)
        .list_referrals(with_purpose(proto::ListReferralsRequest {
            status: ReferralStatus::SkkReturned.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .referrals;
    assert_eq!(failed.len(), 1, "inspectors see referrals in their region");
    assert!(
        failed[0].evidence.is_none(),
        "listings leave the evidence out"
    );
}

/// The order of PP 86/2013, regions of licensing offices, and a yes/no check.
async fn sanctions_keep_their_order_and_regions(app: TestApp) {
    let parties = parties(&app).await;
    let employer = new_employer(&app).await;

    // No track without non-compliance.
    let compliant = sanction_step(&app, &parties.bpjs, warning_1(&employer.id, day(-30)))
        .await
        .unwrap_err();
    assert_eq!(compliant.code(), Code::FailedPrecondition);

    report_gap(&app, &parties, &employer.id, 1000).await;
    let track = sanction_step(&app, &parties.bpjs, warning_1(&employer.id, day(-3)))
        .await
        .unwrap();
    assert_eq!(track.status, i32::from(SanctionStatus::Warning1));
    assert!(!track.warning_period_end.is_empty());

    // One open track per group.
    let second = sanction_step(&app, &parties.bpjs, warning_1(&employer.id, day(-2)))
        .await
        .unwrap_err();
    assert_eq!(second.code(), Code::FailedPrecondition);

    // Warning 2 before warning 1 has run.
    let early = sanction_step(
        &app,
        &parties.bpjs,
        step(&track, SanctionStep::Warning2, day(0)),
    )
    .await
    .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    assert_eq!(reason(&early), "PRECONDITION_NOT_MET");

    // Skipping to TMP2T names the allowed steps.
    let mut skip = step(&track, SanctionStep::RequestTmp2t, day(0));
    skip.withheld_services = vec![WithheldService::BuildingPermit.into()];
    let skipped = sanction_step(&app, &parties.bpjs, skip).await.unwrap_err();
    assert_eq!(allowed_next(&skipped), "WARNING_2,REQUEST_REVOCATION");

    // A stale etag.
    let mut stale = step(&track, SanctionStep::RequestRevocation, day(0));
    stale.etag = "r7".into();
    let stale = sanction_step(&app, &parties.bpjs, stale).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);

    // A TMP2T step by a licensing office of another region.
    let elsewhere = app
        .agency(
            AgencyKind::LicensingOffice,
            &[("sanctions.write", &["36.01"])],
        )
        .await;
    let other_region = sanction_step(
        &app,
        &elsewhere,
        step(&track, SanctionStep::ActivateTmp2t, day(0)),
    )
    .await
    .unwrap_err();
    assert_eq!(
        other_region.code(),
        Code::PermissionDenied,
        "{other_region:?}"
    );
    // The office of the region may not take BPJS's steps either.
    let not_theirs = sanction_step(
        &app,
        &parties.licensing,
        step(&track, SanctionStep::Warning2, day(0)),
    )
    .await
    .unwrap_err();
    assert_eq!(not_theirs.code(), Code::PermissionDenied);

    // The check says no more than yes/no and the services; the office cannot read the track.
    let answer = sanctions(&app, &parties.licensing)
        .check_employer_sanctions(proto::CheckEmployerSanctionsRequest {
            npwp: String::new(),
            nib: employer.nib.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        answer.get_ref().encoded_len(),
        0,
        "not withheld: an empty answer"
    );
    let read = sanctions(&app, &parties.licensing)
        .get_sanction_track(proto::GetSanctionTrackRequest {
            track_id: track.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(read.code(), Code::PermissionDenied);
    let both = sanctions(&app, &parties.licensing)
        .check_employer_sanctions(proto::CheckEmployerSanctionsRequest {
            npwp: employer.npwp.clone(),
            nib: employer.nib.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(both.code(), Code::InvalidArgument);

    let listed = sanctions(&app, &parties.bpjs)
        .list_sanction_tracks(proto::ListSanctionTracksRequest {
            employer_id: employer.id.clone(),
            open_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tracks;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, track.id);
}

/// Nota I, the response, nota II and the outcome, by the conducting office only.
async fn inspections_follow_their_lifecycle(app: TestApp) {
    let parties = parties(&app).await;
    let employer = new_employer(&app).await;

    // A district office's kind may not hold inspections.write, so it calls without it.
    let by_district = app.agency(AgencyKind::Disnaker, &[]).await;
    let refused = inspections(&app, &by_district)
        .open_inspection(proto::OpenInspectionRequest {
            employer_id: employer.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let no_finding = inspections(&app, &parties.inspector)
        .open_inspection(proto::OpenInspectionRequest {
            employer_id: employer.id.clone(),
            triggered_by_group: ProgrammeGroup::Jkn.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(no_finding.code(), Code::FailedPrecondition);

    let mut inspection = inspections(&app, &parties.inspector)
        .open_inspection(proto::OpenInspectionRequest {
            employer_id: employer.id.clone(),
            note: "Complaint by the union".into(),
            effective_date: day(-21),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let take =
        |inspection: &proto::Inspection, step: InspectionStep| proto::AdvanceInspectionRequest {
            inspection_id: inspection.id.clone(),
            step: step.into(),
            etag: inspection.etag.clone(),
            ..Default::default()
        };

    let mut nota = take(&inspection, InspectionStep::IssueNotaI);
    nota.effective_date = day(-20);
    nota.response_due = day(-6);
    let missing_number = inspections(&app, &parties.inspector)
        .advance_inspection(nota.clone())
        .await
        .unwrap_err();
    assert_eq!(missing_number.code(), Code::InvalidArgument);
    nota.document_ref = "560/123/2026".into();
    inspection = inspections(&app, &parties.inspector)
        .advance_inspection(nota)
        .await
        .unwrap()
        .into_inner();
    assert!(inspection.overdue, "nota I went unanswered past its date");

    let overdue = inspections(&app, &parties.inspector)
        .list_inspections(proto::ListInspectionsRequest {
            overdue_only: true,
            employer_id: employer.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .inspections;
    assert_eq!(overdue.len(), 1);

    // Another office cannot move it; a sanction recommendation needs nota II.
    let other_office = app
        .agency(
            AgencyKind::DisnakertransProvinsi,
            &[("inspections.write", &[])],
        )
        .await;
    let mut close = take(&inspection, InspectionStep::Close);
    close.outcome = proto::InspectionOutcome::RecommendedForSanction.into();
    let wrong = inspections(&app, &other_office)
        .advance_inspection(close.clone())
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::PermissionDenied);
    let early = inspections(&app, &parties.inspector)
        .advance_inspection(close)
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);

    let mut nota = take(&inspection, InspectionStep::IssueNotaIi);
    nota.effective_date = day(-5);
    nota.response_due = day(9);
    nota.document_ref = "560/124/2026".into();
    inspection = inspections(&app, &parties.inspector)
        .advance_inspection(nota)
        .await
        .unwrap()
        .into_inner();
    inspection = inspections(&app, &parties.inspector)
        .advance_inspection(take(&inspection, InspectionStep::RecordResponse))
        .await
        .unwrap()
        .into_inner();
    assert!(inspection.response_due.is_empty());
    let mut close = take(&inspection, InspectionStep::Close);
    close.outcome = proto::InspectionOutcome::RecommendedForSanction.into();
    inspection = inspections(&app, &parties.inspector)
        .advance_inspection(close)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        inspection.outcome,
        i32::from(proto::InspectionOutcome::RecommendedForSanction)
    );
    assert_eq!(inspection.history.len(), 5);
    let after = inspections(&app, &parties.inspector)
        .advance_inspection(take(&inspection, InspectionStep::RecordResponse))
        .await
        .unwrap_err();
    assert_eq!(after.code(), Code::FailedPrecondition);
}

/// Referral changes reach the Kejari they are addressed to, and not another.
async fn case_changes_reach_only_those_allowed_in_the_feed(app: TestApp) {
    let parties = parties(&app).await;
    let other_kejari = kejari(&app).await;
    let employer = new_employer(&app).await;
    report_gap(&app, &parties, &employer.id, 1000).await;

    let subscribe = |agency: &TestAgency| {
        let mut client = FeedServiceClient::new(app.authed(&agency.token));
        async move {
            client
                .watch(proto::WatchRequest {
                    after_cursor: Some(0),
                    types: vec![proto::FeedEventType::ReferralChanged.into()],
                    region_prefix: None,
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let mut addressed = subscribe(&parties.kejari).await;
    let mut other = subscribe(&other_kejari).await;

    let referral = referrals(&app, &parties.bpjs)
        .create_referral(new_referral(&employer.id, &parties.kejari))
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    advance(
        &app,
        &parties.kejari,
        &referral,
        ReferralStep::ReceiveSkk,
        |_| {},
    )
    .await
    .unwrap();

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let message = tokio::time::timeout(PATIENCE, addressed.message())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        if let Some(watch_response::Message::Event(event)) = message.message {
            let Some(proto::feed_event::Payload::Referral(r)) = event.payload else {
                panic!("a referral event carries the referral");
            };
            assert!(r.evidence.is_none());
            seen.push(ReferralStatus::try_from(r.status).unwrap());
        }
    }
    assert_eq!(
        seen,
        [ReferralStatus::SkkIssued, ReferralStatus::SkkReceived]
    );

    // The other Kejari's stream carries heartbeats only, past both events.
    let last = ReferralStatus::SkkReceived;
    assert_eq!(seen.last(), Some(&last));
    let started = Instant::now();
    loop {
        let message = tokio::time::timeout(PATIENCE, other.message())
            .await
            .expect("a heartbeat in time")
            .unwrap()
            .unwrap();
        match message.message {
            Some(watch_response::Message::Event(event)) => {
                panic!("another Kejari received {event:?}")
            }
            Some(watch_response::Message::Heartbeat(beat)) if beat.cursor > 0 => break,
            _ => assert!(started.elapsed() < PATIENCE),
        }
    }
}

on_both_backends!(
    the_whole_story_from_gap_to_compliance,
    referrals_refuse_the_wrong_party_skipped_steps_and_stale_etags,
    sanctions_keep_their_order_and_regions,
    inspections_follow_their_lifecycle,
);

/// With heartbeats every 100 ms, so the stream of a reader who may see nothing still advances.
mod feed {
    use super::common::{Backend, spawn_app_with};

    async fn run(backend: Backend) {
        super::case_changes_reach_only_those_allowed_in_the_feed(
            spawn_app_with(backend, |config| config.feed.heartbeat_interval_ms = 100).await,
        )
        .await;
    }

    #[tokio::test]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}

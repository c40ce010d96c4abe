//! Compliance reports, statuses, the non-compliance list and coverage over real gRPC, on SQLite
//! and PostgreSQL.

mod common;

use std::time::Duration;

use common::{Backend, TestAgency, TestApp, create, employer, unique_number};
use sinergi::proto::{
    self, AgencyKind, ComplianceCategory as Cat, ProgrammeGroup, ReportKind,
    audit_service_client::AuditServiceClient,
    compliance_service_client::ComplianceServiceClient,
    feed_service_client::FeedServiceClient,
    report_submission::{Employer, Figures},
};
use tonic::Code;
use tonic_types::StatusExt;

type Client = ComplianceServiceClient<common::Authed>;

/// The reporting agencies of one test: all-region grants unless said otherwise.
struct Agencies {
    disnaker: TestAgency,
    kesehatan: TestAgency,
    ketenagakerjaan: TestAgency,
    inspector: TestAgency,
}

async fn agencies(app: &TestApp) -> Agencies {
    let writer: &[(&str, &[&str])] = &[("reports.write", &[]), ("compliance.read", &[])];
    Agencies {
        disnaker: app.agency(AgencyKind::Disnaker, writer).await,
        kesehatan: app.agency(AgencyKind::BpjsKesehatan, writer).await,
        ketenagakerjaan: app.agency(AgencyKind::BpjsKetenagakerjaan, writer).await,
        inspector: app
            .agency(
                AgencyKind::DisnakertransProvinsi,
                &[("compliance.read", &[]), ("coverage.read", &[])],
            )
            .await,
    }
}

fn client(app: &TestApp, agency: &TestAgency) -> Client {
    ComplianceServiceClient::new(app.authed(&agency.token))
}

fn period() -> proto::Period {
    proto::Period {
        year: 2026,
        month: 10,
    }
}

fn workforce(employer_id: &str, total: u32) -> proto::ReportSubmission {
    proto::ReportSubmission {
        employer: Some(Employer::EmployerId(employer_id.into())),
        period: Some(period()),
        figures: Some(Figures::Workforce(proto::WorkforceFigures {
            total_workers: total,
            total_wage_bill: Some(u64::from(total) * 4_000_000),
            wage_bands: vec![],
        })),
    }
}

fn jkn(employer_id: &str, registered: u32) -> proto::ReportSubmission {
    proto::ReportSubmission {
        employer: Some(Employer::EmployerId(employer_id.into())),
        period: Some(period()),
        figures: Some(Figures::Registration(proto::RegistrationFigures {
            programme_group: ProgrammeGroup::Jkn.into(),
            registered_workers: registered,
            enrolled_programmes: vec![proto::Programme::Jkn.into()],
            reported_wage_total: u64::from(registered) * 4_000_000,
            arrears_amount: 0,
            arrears_months: 0,
        })),
    }
}

async fn submit(
    app: &TestApp,
    agency: &TestAgency,
    report: proto::ReportSubmission,
) -> Result<proto::SubmitReportResponse, tonic::Status> {
    client(app, agency)
        .submit_report(proto::SubmitReportRequest {
            report: Some(report),
            request_id: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn status_of(
    statuses: &[proto::ComplianceStatus],
    group: ProgrammeGroup,
) -> proto::ComplianceStatus {
    statuses
        .iter()
        .find(|s| s.programme_group == i32::from(group))
        .cloned()
        .expect("a status for the group")
}

fn categories(status: &proto::ComplianceStatus) -> Vec<Cat> {
    status
        .categories
        .iter()
        .map(|c| Cat::try_from(*c).expect("category"))
        .collect()
}

fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

async fn new_employer(app: &TestApp, region: &str, size: proto::SizeClass) -> String {
    let mut draft = employer(&format!("PT Contoh {}", unique_number()));
    draft.region = Some(proto::RegionCode {
        code: region.into(),
    });
    draft.size_class = size.into();
    create(app, draft).await.id
}

async fn a_partial_registration_shows_pds_tk_and_a_correction_makes_it_compliant(app: TestApp) {
    let agencies = agencies(&app).await;
    let id = new_employer(&app, "33.75", proto::SizeClass::Large).await;

    let first = submit(&app, &agencies.disnaker, workforce(&id, 1500))
        .await
        .unwrap();
    assert_eq!(
        categories(&status_of(&first.statuses, ProgrammeGroup::Jkn)),
        [Cat::Unknown],
        "no registration report yet"
    );
    let registration = submit(&app, &agencies.kesehatan, jkn(&id, 1000))
        .await
        .unwrap();
    let jkn_status = status_of(&registration.statuses, ProgrammeGroup::Jkn);
    assert_eq!(categories(&jkn_status), [Cat::PdsTk]);
    assert_eq!(jkn_status.gap, 500);
    assert_eq!(jkn_status.workers_reported, Some(1500));
    assert_eq!(jkn_status.workers_registered, Some(1000));
    let sources: Vec<(&str, i32)> = jkn_status
        .derived_from
        .iter()
        .map(|r| (r.source_agency_id.as_str(), r.kind))
        .collect();
    assert_eq!(
        sources,
        [
            (agencies.disnaker.id.as_str(), ReportKind::Workforce.into()),
            (
                agencies.kesehatan.id.as_str(),
                ReportKind::Registration.into()
            ),
        ]
    );
    // BPJS Ketenagakerjaan has not reported: its group stays unknown.
    assert_eq!(
        categories(&status_of(
            &registration.statuses,
            ProgrammeGroup::Ketenagakerjaan
        )),
        [Cat::Unknown]
    );

    // A correction of the same month is version 2 and supersedes the first.
    let correction = submit(&app, &agencies.kesehatan, jkn(&id, 1500))
        .await
        .unwrap();
    let corrected = correction.report.unwrap();
    assert_eq!(corrected.version, 2);
    assert_eq!(
        corrected.supersedes_report_id,
        registration.report.unwrap().id
    );
    assert_eq!(
        categories(&status_of(&correction.statuses, ProgrammeGroup::Jkn)),
        [Cat::Compliant]
    );

    // BPJS Ketenagakerjaan: everyone registered, but a large employer without JHT and JP.
    let tk = proto::ReportSubmission {
        figures: Some(Figures::Registration(proto::RegistrationFigures {
            programme_group: ProgrammeGroup::Ketenagakerjaan.into(),
            registered_workers: 1500,
            enrolled_programmes: vec![proto::Programme::Jkk.into(), proto::Programme::Jkm.into()],
            reported_wage_total: 1500 * 4_000_000,
            arrears_amount: 0,
            arrears_months: 0,
        })),
        ..jkn(&id, 0)
    };
    let tk_response = submit(&app, &agencies.ketenagakerjaan, tk).await.unwrap();
    let tk_status = status_of(&tk_response.statuses, ProgrammeGroup::Ketenagakerjaan);
    assert_eq!(categories(&tk_status), [Cat::PdsProgram]);
    assert_eq!(
        tk_status.missing_programmes,
        [
            i32::from(proto::Programme::Jht),
            i32::from(proto::Programme::Jp)
        ]
    );

    let reader = client(&app, &agencies.inspector);
    let status = reader
        .clone()
        .get_compliance_status(proto::GetComplianceStatusRequest {
            employer_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(categories(&status.statuses[0]), [Cat::Compliant]);
    assert_eq!(status.statuses[0].derived_from[1].version, 2);

    let current = reader
        .clone()
        .list_reports(proto::ListReportsRequest {
            employer_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reports;
    assert_eq!(
        current.len(),
        3,
        "superseded versions are hidden by default"
    );
    let history = reader
        .clone()
        .list_reports(proto::ListReportsRequest {
            employer_id: id.clone(),
            include_superseded: true,
            kind: ReportKind::Registration.into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.reports[0].version, 2);
    let older = reader
        .clone()
        .list_reports(proto::ListReportsRequest {
            employer_id: id,
            include_superseded: true,
            kind: ReportKind::Registration.into(),
            page_size: 1,
            page_token: history.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(older.reports[0].version, 1);
    assert!(older.reports[0].superseded);
    assert!(
        !older.next_page_token.is_empty(),
        "the BPJS Ketenagakerjaan series follows"
    );
}

async fn each_report_is_written_only_by_the_agency_that_owns_it(app: TestApp) {
    let agencies = agencies(&app).await;
    let id = new_employer(&app, "33.75", proto::SizeClass::Medium).await;

    let by_disnaker = submit(&app, &agencies.disnaker, jkn(&id, 10))
        .await
        .unwrap_err();
    assert_eq!(by_disnaker.code(), Code::PermissionDenied);
    let by_bpjs = submit(&app, &agencies.kesehatan, workforce(&id, 10))
        .await
        .unwrap_err();
    assert_eq!(by_bpjs.code(), Code::PermissionDenied);

    let mut other_group = jkn(&id, 10);
    if let Some(Figures::Registration(r)) = &mut other_group.figures {
        r.programme_group = ProgrammeGroup::Ketenagakerjaan.into();
        r.enrolled_programmes = vec![proto::Programme::Jht.into()];
    }
    let wrong_bpjs = submit(&app, &agencies.kesehatan, other_group)
        .await
        .unwrap_err();
    assert_eq!(wrong_bpjs.code(), Code::PermissionDenied);

    // BPJS Kesehatan reporting JHT, a programme it does not run.
    let mut jht = jkn(&id, 10);
    if let Some(Figures::Registration(r)) = &mut jht.figures {
        r.enrolled_programmes = vec![proto::Programme::Jht.into()];
    }
    let status = submit(&app, &agencies.kesehatan, jht).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["report.registration.enrolled_programmes[0]"]
    );

    // The inspector may read but not report.
    let status = submit(&app, &agencies.inspector, workforce(&id, 10))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

async fn bad_reports_are_refused_naming_the_field(app: TestApp) {
    let agencies = agencies(&app).await;
    let id = new_employer(&app, "33.75", proto::SizeClass::Medium).await;

    let cases: Vec<(proto::ReportSubmission, &str)> = vec![
        (workforce(&id, 10_000_001), "report.workforce.total_workers"),
        (
            proto::ReportSubmission {
                period: Some(proto::Period {
                    year: 2099,
                    month: 1,
                }),
                ..workforce(&id, 10)
            },
            "report.period",
        ),
        (
            proto::ReportSubmission {
                period: Some(proto::Period {
                    year: 2026,
                    month: 13,
                }),
                ..workforce(&id, 10)
            },
            "report.period",
        ),
        (
            proto::ReportSubmission {
                period: None,
                ..workforce(&id, 10)
            },
            "report.period",
        ),
        (
            proto::ReportSubmission {
                employer: Some(Employer::EmployerId("not-a-uuid".into())),
                ..workforce(&id, 10)
            },
            "report.employer_id",
        ),
    ];
    for (report, field) in cases {
        let status = submit(&app, &agencies.disnaker, report).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(violated_fields(&status), [field], "{status:?}");
    }
    let mut negative_layoff = workforce(&id, 10);
    negative_layoff.figures = Some(Figures::Layoff(proto::LayoffFigures {
        layoff_date: "2026-02-30".into(),
        workers: 0,
        document_reference: String::new(),
    }));
    let status = submit(&app, &agencies.disnaker, negative_layoff)
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "report.layoff.layoff_date",
            "report.layoff.workers",
            "report.layoff.document_reference"
        ]
    );

    let unknown = uuid::Uuid::now_v7().to_string();
    let status = submit(&app, &agencies.disnaker, workforce(&unknown, 10))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // A Disnaker whose grant covers Kab. Batang only, reporting on a Kota Pekalongan employer.
    let batang = app
        .agency(AgencyKind::Disnaker, &[("reports.write", &["33.25"])])
        .await;
    let status = submit(&app, &batang, workforce(&id, 10)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // More registered than reported is accepted and flagged.
    submit(&app, &agencies.disnaker, workforce(&id, 100))
        .await
        .unwrap();
    let response = submit(&app, &agencies.kesehatan, jkn(&id, 120))
        .await
        .unwrap();
    let status = status_of(&response.statuses, ProgrammeGroup::Jkn);
    assert_eq!(categories(&status), [Cat::Compliant]);
    assert_eq!(
        status.flags,
        [i32::from(proto::StatusFlag::RegisteredExceedsReported)]
    );

    // Nothing but the two valid reports was stored.
    let stored = client(&app, &agencies.inspector)
        .list_reports(proto::ListReportsRequest {
            employer_id: id,
            include_superseded: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reports;
    assert_eq!(stored.len(), 2);
}

async fn a_replayed_request_id_stores_nothing_again(app: TestApp) {
    let agencies = agencies(&app).await;
    let id = new_employer(&app, "33.75", proto::SizeClass::Medium).await;
    let request = proto::SubmitReportRequest {
        report: Some(workforce(&id, 50)),
        request_id: "wlkp-2026-10-001".into(),
    };
    let mut disnaker = client(&app, &agencies.disnaker);
    let first = disnaker
        .submit_report(request.clone())
        .await
        .unwrap()
        .into_inner();
    let again = disnaker
        .submit_report(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.report, again.report);
    assert_eq!(again.report.unwrap().version, 1);

    let status = disnaker
        .submit_report(proto::SubmitReportRequest {
            report: Some(workforce(&id, 51)),
            ..request
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["request_id"]);
}

fn bulk_item(employer_id: &str, registered: u32) -> proto::BulkSubmitReportsRequest {
    proto::BulkSubmitReportsRequest {
        item: Some(jkn(employer_id, registered)),
        ..Default::default()
    }
}

/// Sends `items` as one batch, ended by a message that only says so.
async fn bulk(
    app: &TestApp,
    agency: &TestAgency,
    mut items: Vec<proto::BulkSubmitReportsRequest>,
) -> Result<proto::BulkSubmitReportsResponse, tonic::Status> {
    items.push(proto::BulkSubmitReportsRequest {
        end_of_batch: true,
        ..Default::default()
    });
    client(app, agency)
        .bulk_submit_reports(tokio_stream::iter(items))
        .await
        .map(tonic::Response::into_inner)
}

/// Up to 1,000 reports of an employer that `agency` may read, superseded ones too if asked.
async fn reports_of(
    app: &TestApp,
    agency: &TestAgency,
    employer_id: &str,
    include_superseded: bool,
) -> Vec<proto::Report> {
    client(app, agency)
        .list_reports(proto::ListReportsRequest {
            employer_id: employer_id.into(),
            include_superseded,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reports
}

async fn report_count(app: &TestApp, agency: &TestAgency, employer_id: &str) -> usize {
    reports_of(app, agency, employer_id, true).await.len()
}

async fn a_bulk_batch_is_all_or_nothing(app: TestApp) {
    let agencies = agencies(&app).await;
    let mut employers = Vec::new();
    for _ in 0..20 {
        employers.push(new_employer(&app, "33.75", proto::SizeClass::Small).await);
    }

    // 10,000 items, one of them absurd: nothing is stored and the bad item is named.
    let mut items: Vec<_> = (0..10_000)
        .map(|i| bulk_item(&employers[i % employers.len()], 10))
        .collect();
    items[0].request_id = "bulk-1".into();
    items[7777] = bulk_item(&employers[3], 20_000_000);
    let status = bulk(&app, &agencies.kesehatan, items).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["items[7777].registration.registered_workers"]
    );
    for id in &employers {
        assert_eq!(report_count(&app, &agencies.inspector, id).await, 0);
    }

    // An item naming an unknown employer: also refused as a whole, naming the item.
    let mut items: Vec<_> = employers.iter().map(|id| bulk_item(id, 5)).collect();
    items[12] = bulk_item(&uuid::Uuid::now_v7().to_string(), 5);
    let status = bulk(&app, &agencies.kesehatan, items).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["items[12].employer_id"]);

    // 2,500 valid items (three database chunks) for 20 employers and one month: each
    // employer's series reaches version 125, all but the last superseded.
    let mut items: Vec<_> = (0..2500)
        .map(|i| bulk_item(&employers[i % employers.len()], 7))
        .collect();
    items[0].request_id = "bulk-2".into();
    let response = bulk(&app, &agencies.kesehatan, items.clone())
        .await
        .unwrap();
    assert_eq!(response.accepted_count, 2500);
    assert_eq!(response.superseded_count, 2500 - 20);
    assert_eq!(
        report_count(&app, &agencies.inspector, &employers[0]).await,
        125
    );

    // The retried batch is a no-op answered with the first result.
    let again = bulk(&app, &agencies.kesehatan, items).await.unwrap();
    assert_eq!(again, response);
    assert_eq!(
        report_count(&app, &agencies.inspector, &employers[0]).await,
        125
    );
    let reports = client(&app, &agencies.inspector)
        .list_reports(proto::ListReportsRequest {
            employer_id: employers[0].clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reports;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].version, 125);

    // An empty batch is refused, and so is a stream that ends without saying the batch is
    // complete.
    let status = bulk(&app, &agencies.kesehatan, vec![]).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let unfinished: Vec<_> = employers.iter().map(|id| bulk_item(id, 9)).collect();
    let status = client(&app, &agencies.kesehatan)
        .bulk_submit_reports(tokio_stream::iter(unfinished))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["end_of_batch"]);
    assert_eq!(
        report_count(&app, &agencies.inspector, &employers[0]).await,
        125
    );
}

fn layoff(employer_id: &str, document: &str, workers: u32) -> proto::BulkSubmitReportsRequest {
    proto::BulkSubmitReportsRequest {
        item: Some(proto::ReportSubmission {
            employer: Some(Employer::EmployerId(employer_id.into())),
            period: None,
            figures: Some(Figures::Layoff(proto::LayoffFigures {
                layoff_date: "2026-10-15".into(),
                workers,
                document_reference: document.into(),
            })),
        }),
        ..Default::default()
    }
}

/// The current reports of an employer that `agency` may read, as (kind, version, workers).
async fn current_reports(
    app: &TestApp,
    agency: &TestAgency,
    employer_id: &str,
) -> Vec<(ReportKind, u32, u32)> {
    let mut reports: Vec<_> = reports_of(app, agency, employer_id, false)
        .await
        .into_iter()
        .map(|report| {
            let workers = match &report.figures {
                Some(proto::report::Figures::Workforce(f)) => f.total_workers,
                Some(proto::report::Figures::Registration(f)) => f.registered_workers,
                Some(proto::report::Figures::Layoff(f)) => f.workers,
                None => panic!("a report without figures"),
            };
            (report.kind(), report.version, workers)
        })
        .collect();
    reports.sort();
    reports
}

/// A batch of more than one chunk corrects exactly the series it writes, whether its chunks
/// name few series (a month's registrations) or many (layoffs, one series per document): the
/// employer's other current reports stay current.
async fn a_large_batch_corrects_only_the_series_it_writes(app: TestApp) {
    let agencies = agencies(&app).await;
    let corrected = new_employer(&app, "33.75", proto::SizeClass::Small).await;
    let other = new_employer(&app, "33.75", proto::SizeClass::Small).await;
    submit(&app, &agencies.disnaker, workforce(&corrected, 300))
        .await
        .unwrap();
    submit(&app, &agencies.kesehatan, jkn(&corrected, 100))
        .await
        .unwrap();
    bulk(
        &app,
        &agencies.disnaker,
        vec![layoff(&corrected, "PHK/33.75/0007", 5)],
    )
    .await
    .unwrap();

    // Two chunks: the first corrects the stored registration, the rest are `other`'s.
    let mut items = vec![bulk_item(&corrected, 250)];
    items.extend((0..1000).map(|_| bulk_item(&other, 10)));
    let response = bulk(&app, &agencies.kesehatan, items).await.unwrap();
    assert_eq!(response.superseded_count, 1 + 999);
    assert_eq!(
        current_reports(&app, &agencies.disnaker, &corrected).await,
        [
            (ReportKind::Workforce, 1, 300),
            (ReportKind::Registration, 2, 250),
            (ReportKind::Layoff, 1, 5),
        ]
    );

    // 1,001 documents, the stored one again among the first chunk's 1,000: more series than
    // are looked up one by one.
    let mut items = vec![layoff(&corrected, "PHK/33.75/0007", 6)];
    items.extend((0..1000).map(|i| layoff(&other, &format!("PHK/33.75/1{i:03}"), 1)));
    let response = bulk(&app, &agencies.disnaker, items).await.unwrap();
    assert_eq!(response.superseded_count, 1);
    assert_eq!(
        current_reports(&app, &agencies.disnaker, &corrected).await,
        [
            (ReportKind::Workforce, 1, 300),
            (ReportKind::Registration, 2, 250),
            (ReportKind::Layoff, 2, 6),
        ]
    );
    let statuses = client(&app, &agencies.inspector)
        .get_compliance_status(proto::GetComplianceStatusRequest {
            employer_id: corrected.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .statuses;
    assert_eq!(status_of(&statuses, ProgrammeGroup::Jkn).gap, 50);
}

async fn a_stream_cut_midway_stores_nothing(app: TestApp) {
    let agencies = agencies(&app).await;
    let id = new_employer(&app, "33.75", proto::SizeClass::Small).await;
    let (items, receiver) = tokio::sync::mpsc::channel(16);
    let mut sender_client = client(&app, &agencies.kesehatan);
    let call = tokio::spawn(async move {
        sender_client
            .bulk_submit_reports(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
    });
    // More items than one database chunk, so a writer that committed chunk by chunk would
    // have stored some.
    for _ in 0..2500 {
        items.send(bulk_item(&id, 3)).await.unwrap();
    }
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());

    // The server records the cancelled call once its handler has given up: wait for that
    // entry, then look.
    let auditor = app.agency(AgencyKind::Admin, &[("audit.read", &[])]).await;
    let mut audit = AuditServiceClient::new(app.authed(&auditor.token));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = audit
            .list_events(proto::ListEventsRequest {
                method: "/sinergi.v1.ComplianceService/BulkSubmitReports".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .events;
        if !events.is_empty() {
            assert_ne!(
                events[0].entry.as_ref().unwrap().status_code,
                0,
                "{events:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cut call was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(report_count(&app, &agencies.inspector, &id).await, 0);
}

async fn non_compliant_employers_are_listed_largest_gap_first(app: TestApp) {
    let agencies = agencies(&app).await;
    let mut expected = Vec::new();
    for (region, total, registered) in [
        ("33.75", 1500, 1000),
        ("33.75", 200, 150),
        ("33.25", 900, 100),
        ("33.25", 80, 80),
        ("36.71", 3000, 0),
    ] {
        let id = new_employer(&app, region, proto::SizeClass::Large).await;
        submit(&app, &agencies.disnaker, workforce(&id, total))
            .await
            .unwrap();
        submit(&app, &agencies.kesehatan, jkn(&id, registered))
            .await
            .unwrap();
        expected.push((id, region, total - registered));
    }
    let list = |request: proto::ListNonCompliantRequest, agency: &TestAgency| {
        let mut client = client(&app, agency);
        async move {
            client
                .list_non_compliant(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let by_gap = proto::ListNonCompliantRequest {
        programme_group: ProgrammeGroup::Jkn.into(),
        order: proto::list_non_compliant_request::Order::Gap.into(),
        ..Default::default()
    };
    let all = list(by_gap.clone(), &agencies.inspector).await.unwrap();
    let gaps: Vec<u32> = all
        .employers
        .iter()
        .map(|e| e.status.as_ref().unwrap().gap)
        .collect();
    assert_eq!(
        gaps,
        [3000, 800, 500, 50],
        "compliant employers are left out"
    );
    assert_eq!(all.employers[0].employer_id, expected[4].0);
    assert_eq!(
        categories(all.employers[0].status.as_ref().unwrap()),
        [Cat::Pwbd]
    );
    assert!(!all.employers[0].name.is_empty());

    // Pages of one follow the same order.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(
            proto::ListNonCompliantRequest {
                page_size: 1,
                page_token: token,
                ..by_gap.clone()
            },
            &agencies.inspector,
        )
        .await
        .unwrap();
        paged.extend(page.employers.into_iter().map(|e| e.employer_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let ids: Vec<String> = all
        .employers
        .iter()
        .map(|e| e.employer_id.clone())
        .collect();
    assert_eq!(paged, ids);

    // Filters: a province, a minimum gap, a category.
    let central_java = list(
        proto::ListNonCompliantRequest {
            region_prefix: Some(proto::RegionCode { code: "33".into() }),
            min_gap: 100,
            ..by_gap.clone()
        },
        &agencies.inspector,
    )
    .await
    .unwrap();
    let gaps: Vec<u32> = central_java
        .employers
        .iter()
        .map(|e| e.status.as_ref().unwrap().gap)
        .collect();
    assert_eq!(gaps, [800, 500]);
    let pwbd = list(
        proto::ListNonCompliantRequest {
            categories: vec![Cat::Pwbd.into()],
            ..by_gap.clone()
        },
        &agencies.inspector,
    )
    .await
    .unwrap();
    assert_eq!(pwbd.employers.len(), 1);

    // An inspector of Kab. Batang sees Batang only, and nothing of Banten.
    let batang = app
        .agency(
            AgencyKind::DisnakertransProvinsi,
            &[("compliance.read", &["33.25"])],
        )
        .await;
    let own = list(by_gap.clone(), &batang).await.unwrap();
    assert_eq!(own.employers.len(), 1);
    assert_eq!(own.employers[0].employer_id, expected[2].0);
    let banten = list(
        proto::ListNonCompliantRequest {
            region_prefix: Some(proto::RegionCode { code: "36".into() }),
            ..by_gap.clone()
        },
        &batang,
    )
    .await
    .unwrap_err();
    assert_eq!(banten.code(), Code::PermissionDenied);

    // The group is required; COMPLIANT is not a filter; a token of another query is refused.
    let status = list(
        proto::ListNonCompliantRequest::default(),
        &agencies.inspector,
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["programme_group"]);
    let status = list(
        proto::ListNonCompliantRequest {
            categories: vec![Cat::Compliant.into()],
            ..by_gap.clone()
        },
        &agencies.inspector,
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["categories[0]"]);
    let first_page = list(
        proto::ListNonCompliantRequest {
            page_size: 1,
            ..by_gap.clone()
        },
        &agencies.inspector,
    )
    .await
    .unwrap();
    let status = list(
        proto::ListNonCompliantRequest {
            page_token: first_page.next_page_token,
            min_gap: 7,
            ..by_gap
        },
        &agencies.inspector,
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
}

async fn coverage_adds_up_per_region(app: TestApp) {
    let agencies = agencies(&app).await;
    for (region, total, registered) in [
        ("33.75", 1000, 900),
        ("33.75", 500, 500),
        ("33.25", 400, 100),
        ("36.71", 100, 100),
    ] {
        let id = new_employer(&app, region, proto::SizeClass::Medium).await;
        submit(&app, &agencies.disnaker, workforce(&id, total))
            .await
            .unwrap();
        submit(&app, &agencies.kesehatan, jkn(&id, registered))
            .await
            .unwrap();
    }
    // An employer with a workforce report but no registration report counts as non-compliant.
    let unregistered = new_employer(&app, "33.25", proto::SizeClass::Micro).await;
    submit(&app, &agencies.disnaker, workforce(&unregistered, 100))
        .await
        .unwrap();

    let mut forum_client = client(&app, &agencies.inspector);
    let coverage = |region: Option<&str>| proto::GetCoverageRequest {
        region_prefix: region.map(|code| proto::RegionCode { code: code.into() }),
        period: Some(period()),
        programme_group: ProgrammeGroup::Jkn.into(),
    };
    let province = forum_client
        .get_coverage(coverage(Some("33")))
        .await
        .unwrap()
        .into_inner();
    let total = province.total.unwrap();
    assert_eq!(total.workers_reported, 2000);
    assert_eq!(total.workers_registered, 1500);
    assert_eq!(total.coverage_percent, 75.0);
    assert_eq!(total.employers_counted, 4);
    assert_eq!(total.non_compliant_employers, 3);
    assert_eq!(total.region_name, "Jawa Tengah");
    let breakdown: Vec<(String, u64, u64)> = province
        .breakdown
        .iter()
        .map(|b| {
            (
                b.region.as_ref().unwrap().code.clone(),
                b.workers_reported,
                b.workers_registered,
            )
        })
        .collect();
    assert_eq!(
        breakdown,
        [("33.25".into(), 500, 100), ("33.75".into(), 1500, 1400)]
    );

    let national = forum_client
        .get_coverage(coverage(None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(national.total.unwrap().workers_reported, 2100);
    assert_eq!(national.breakdown.len(), 2, "Jawa Tengah and Banten");
    let city = forum_client
        .get_coverage(coverage(Some("33.75")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(city.total.unwrap().workers_registered, 1400);
    assert!(city.breakdown.is_empty());

    let status = forum_client
        .get_coverage(proto::GetCoverageRequest {
            period: None,
            ..coverage(None)
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["period"]);
}

/// Three employers with a workforce report each (100, 200 and 300 workers), then one batch of
/// 1,500 JKN registrations (two database chunks) whose last item for each says 40 are
/// registered, through an app whose configuration runs no status worker.
async fn queued_batch(app: &TestApp) -> (Agencies, Vec<String>) {
    let agencies = agencies(app).await;
    let mut employers = Vec::new();
    for total in [100, 200, 300] {
        let id = new_employer(app, "33.75", proto::SizeClass::Small).await;
        submit(app, &agencies.disnaker, workforce(&id, total))
            .await
            .unwrap();
        employers.push(id);
    }
    let items: Vec<_> = (0..1500)
        .map(|i| bulk_item(&employers[i % 3], 10 + 30 * (i / 1497) as u32))
        .collect();
    bulk(app, &agencies.kesehatan, items).await.unwrap();
    (agencies, employers)
}

/// A stream of every change, for an agency that may read them all.
async fn follow(app: &TestApp) -> tonic::Streaming<proto::WatchResponse> {
    let follower = app
        .agency(
            AgencyKind::BpjsKesehatan,
            &[("feed.read", &[]), ("compliance.read", &[])],
        )
        .await;
    FeedServiceClient::new(app.authed(&follower.token))
        .watch(proto::WatchRequest::default())
        .await
        .unwrap()
        .into_inner()
}

/// Reads `feed` until `count` employers' JKN statuses have changed to PDS_TK; returns them.
async fn recomputed(
    feed: &mut tonic::Streaming<proto::WatchResponse>,
    count: usize,
) -> std::collections::HashSet<String> {
    let mut employers = std::collections::HashSet::new();
    while employers.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(10), feed.message())
            .await
            .expect("statuses recomputed in time")
            .unwrap()
            .expect("an open stream");
        if let Some(proto::watch_response::Message::Event(event)) = message.message
            && let Some(proto::feed_event::Payload::Status(status)) = event.payload
            && status.programme_group == i32::from(ProgrammeGroup::Jkn)
            && categories(&status) == [Cat::PdsTk]
        {
            employers.insert(event.employer_id);
        }
    }
    employers
}

/// JKN's non-compliant employers, largest gap first, with their gaps.
async fn ranked(app: &TestApp, agencies: &Agencies) -> Vec<(String, u32)> {
    client(app, &agencies.inspector)
        .list_non_compliant(proto::ListNonCompliantRequest {
            programme_group: ProgrammeGroup::Jkn.into(),
            order: proto::list_non_compliant_request::Order::Gap.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .employers
        .into_iter()
        .map(|e| (e.employer_id, e.status.unwrap().gap))
        .collect()
}

/// A batch of more than one chunk leaves its employers' statuses to the status worker. Until
/// one has run, reading a status gives what the reports say and the ranking keeps the previous
/// status; then a replica's worker recomputes them and the ranking follows.
async fn a_large_batch_is_ranked_once_its_statuses_are_recomputed(backend: Backend) {
    let app = common::spawn_app_with(backend, |config| {
        config.compliance.status_interval_ms = 0;
    })
    .await;
    let (agencies, employers) = queued_batch(&app).await;

    let statuses = client(&app, &agencies.inspector)
        .get_compliance_status(proto::GetComplianceStatusRequest {
            employer_id: employers[2].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .statuses;
    let jkn = status_of(&statuses, ProgrammeGroup::Jkn);
    assert_eq!(categories(&jkn), [Cat::PdsTk]);
    assert_eq!(jkn.gap, 260);
    assert_eq!(
        ranked(&app, &agencies).await,
        [],
        "ranked before recomputed"
    );

    let mut feed = follow(&app).await;
    let _worker = common::spawn_replica_with(&app, |config| {
        config.compliance.status_interval_ms = 50;
    })
    .await;
    assert_eq!(recomputed(&mut feed, 3).await.len(), 3);
    assert_eq!(
        ranked(&app, &agencies).await,
        [
            (employers[2].clone(), 260),
            (employers[1].clone(), 160),
            (employers[0].clone(), 60)
        ]
    );
}

/// On PostgreSQL the status worker passes over an employer another transaction holds, instead
/// of waiting for it: the others are recomputed meanwhile, that one once the transaction ends.
#[tokio::test]
async fn the_status_worker_passes_over_an_employer_a_write_holds() {
    let app = common::spawn_app_with(Backend::Postgres, |config| {
        config.compliance.status_interval_ms = 0;
    })
    .await;
    let (agencies, employers) = queued_batch(&app).await;
    let mut writer = app.postgres_transaction().await;
    sqlx::query("SELECT 1 FROM employers WHERE id = $1::uuid FOR UPDATE")
        .bind(&employers[1])
        .execute(&mut writer)
        .await
        .unwrap();

    let mut feed = follow(&app).await;
    let _worker = common::spawn_replica_with(&app, |config| {
        config.compliance.status_interval_ms = 50;
    })
    .await;
    assert_eq!(
        recomputed(&mut feed, 2).await,
        [employers[0].clone(), employers[2].clone()].into()
    );
    assert_eq!(
        ranked(&app, &agencies).await,
        [(employers[2].clone(), 260), (employers[0].clone(), 60)]
    );

    sqlx::query("COMMIT").execute(&mut writer).await.unwrap();
    assert_eq!(
        recomputed(&mut feed, 1).await,
        [employers[1].clone()].into()
    );
    assert_eq!(ranked(&app, &agencies).await.len(), 3);
}

#[tokio::test]
async fn a_large_batch_is_ranked_once_its_statuses_are_recomputed_on_sqlite() {
    a_large_batch_is_ranked_once_its_statuses_are_recomputed(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_large_batch_is_ranked_once_its_statuses_are_recomputed_on_postgres() {
    a_large_batch_is_ranked_once_its_statuses_are_recomputed(Backend::Postgres).await;
}

/// Runs `statements` by hand in a transaction of their own, each given the employer's id as
/// `$1`, and rolls it back: the first statement's error, if any.
async fn run_by_hand(
    app: &TestApp,
    employer_id: &str,
    statements: &[&str],
) -> Result<(), sqlx::Error> {
    let mut connection = app.postgres_transaction().await;
    let mut outcome = Ok(());
    for statement in statements {
        outcome = sqlx::query(statement)
            .bind(employer_id)
            .execute(&mut connection)
            .await
            .map(drop);
        if outcome.is_err() {
            break;
        }
    }
    sqlx::query("ROLLBACK")
        .execute(&mut connection)
        .await
        .unwrap();
    outcome
}

fn foreign_key_violation(outcome: Result<(), sqlx::Error>) -> String {
    match outcome {
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("23503") => {
            error.message().to_owned()
        }
        other => panic!("expected a foreign key violation, got {other:?}"),
    }
}

/// On PostgreSQL reports have no foreign key to employers: the service's writer vouches for the
/// employers it has locked, and any other writer, such as a hand edit, has its statement's
/// reports checked in one query. The database still refuses what the key refused: a report of
/// an unknown employer, a report moved to one, and an employer removed or renumbered from under
/// its reports.
#[tokio::test]
async fn the_database_keeps_every_report_with_its_employer() {
    let app = common::spawn_app(Backend::Postgres).await;
    let agencies = agencies(&app).await;
    let employer_id = new_employer(&app, "33.75", proto::SizeClass::Small).await;
    submit(&app, &agencies.disnaker, workforce(&employer_id, 40))
        .await
        .unwrap();

    let copy = |employer: &str, version: &str| {
        format!(
            "INSERT INTO reports (id, employer_id, kind, programme_group, period, series, \
             version, supersedes, superseded, source_agency, submitted_at, figures, workers, \
             arrears_amount, region_code, province_code) \
             SELECT gen_random_uuid(), {employer}, kind, programme_group, period, series, \
             {version}, supersedes, superseded, source_agency, submitted_at, figures, workers, \
             arrears_amount, region_code, province_code FROM reports WHERE employer_id = $1::uuid"
        )
    };
    let next_version = copy("employer_id", "version + 1");
    run_by_hand(&app, &employer_id, &[&next_version])
        .await
        .expect("a report of a registered employer is stored");
    let unknown_employer = copy("gen_random_uuid()", "version");
    foreign_key_violation(run_by_hand(&app, &employer_id, &[&unknown_employer]).await);
    foreign_key_violation(
        run_by_hand(
            &app,
            &employer_id,
            &["UPDATE reports SET employer_id = gen_random_uuid() WHERE employer_id = $1::uuid"],
        )
        .await,
    );

    // The employer's other rows go first, so that only its reports can hold it.
    let others = [
        "DELETE FROM compliance_status WHERE employer_id = $1::uuid",
        "DELETE FROM employer_npp WHERE employer_id = $1::uuid",
    ];
    for removal in [
        "DELETE FROM employers WHERE id = $1::uuid",
        "UPDATE employers SET id = gen_random_uuid() WHERE id = $1::uuid",
    ] {
        let held = foreign_key_violation(
            run_by_hand(&app, &employer_id, &[others[0], others[1], removal]).await,
        );
        assert!(held.contains("still has reports"), "{held}");
        run_by_hand(
            &app,
            &employer_id,
            &[
                others[0],
                others[1],
                "DELETE FROM reports WHERE employer_id = $1::uuid",
                removal,
            ],
        )
        .await
        .expect("an employer without reports can go");
    }
}

on_both_backends!(
    a_partial_registration_shows_pds_tk_and_a_correction_makes_it_compliant,
    each_report_is_written_only_by_the_agency_that_owns_it,
    bad_reports_are_refused_naming_the_field,
    a_replayed_request_id_stores_nothing_again,
    a_bulk_batch_is_all_or_nothing,
    a_large_batch_corrects_only_the_series_it_writes,
    a_stream_cut_midway_stores_nothing,
    non_compliant_employers_are_listed_largest_gap_first,
    coverage_adds_up_per_region,
);

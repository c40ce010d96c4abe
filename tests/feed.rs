//! The change feed over real gRPC, on SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use common::{Backend, TestAgency, TestApp, create, employer, spawn_app_with, unique_number};
use sinergi::proto::{
    self, AgencyKind, FeedEventType, compliance_service_client::ComplianceServiceClient,
    feed_service_client::FeedServiceClient, report_submission, watch_response::Message,
};
use tonic::{Code, Streaming};
use tonic_types::StatusExt;

/// Longest wait for something the server is expected to send soon.
const PATIENCE: Duration = Duration::from_secs(10);

async fn watch(
    app: &TestApp,
    agency: &TestAgency,
    request: proto::WatchRequest,
) -> Result<Streaming<proto::WatchResponse>, tonic::Status> {
    FeedServiceClient::new(app.authed(&agency.token))
        .watch(request)
        .await
        .map(tonic::Response::into_inner)
}

/// The next event, skipping heartbeats.
async fn next_event(stream: &mut Streaming<proto::WatchResponse>) -> proto::FeedEvent {
    loop {
        let message = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("an event in time")
            .expect("a healthy stream")
            .expect("an open stream");
        if let Some(Message::Event(event)) = message.message {
            return event;
        }
    }
}

/// A BPJS Kesehatan office that may follow every change in every region.
async fn watcher(app: &TestApp) -> TestAgency {
    app.agency(
        AgencyKind::BpjsKesehatan,
        &[
            ("feed.read", &[]),
            ("employers.read", &[]),
            ("compliance.read", &[]),
        ],
    )
    .await
}

async fn reporter(app: &TestApp, kind: AgencyKind) -> TestAgency {
    app.agency(kind, &[("reports.write", &[]), ("compliance.read", &[])])
        .await
}

fn workforce(employer_id: &str, total: u32) -> proto::SubmitReportRequest {
    proto::SubmitReportRequest {
        report: Some(proto::ReportSubmission {
            employer: Some(report_submission::Employer::EmployerId(employer_id.into())),
            period: Some(proto::Period {
                year: 2026,
                month: 10,
            }),
            figures: Some(report_submission::Figures::Workforce(
                proto::WorkforceFigures {
                    total_workers: total,
                    total_wage_bill: Some(u64::from(total) * 3_000_000),
                    wage_bands: vec![],
                },
            )),
        }),
        request_id: String::new(),
    }
}

async fn submit(app: &TestApp, agency: &TestAgency, request: proto::SubmitReportRequest) {
    ComplianceServiceClient::new(app.authed(&agency.token))
        .submit_report(request)
        .await
        .expect("report stored");
}

/// Streams one batch of workforce reports for `employer_id`, one per total in `totals`.
async fn submit_workforce_batch(
    app: &TestApp,
    agency: &TestAgency,
    employer_id: &str,
    totals: std::ops::Range<u32>,
) {
    let mut batch: Vec<proto::BulkSubmitReportsRequest> = totals
        .map(|total| proto::BulkSubmitReportsRequest {
            item: workforce(employer_id, total).report,
            ..Default::default()
        })
        .collect();
    batch.push(proto::BulkSubmitReportsRequest {
        end_of_batch: true,
        ..Default::default()
    });
    ComplianceServiceClient::new(app.authed(&agency.token))
        .bulk_submit_reports(tokio_stream::iter(batch))
        .await
        .expect("batch stored");
}

async fn employer_in(app: &TestApp, region: &str) -> String {
    let mut draft = employer(&format!("CV Feed {}", unique_number()));
    draft.region = Some(proto::RegionCode {
        code: region.into(),
    });
    create(app, draft).await.id
}

fn event_type(event: &proto::FeedEvent) -> FeedEventType {
    FeedEventType::try_from(event.r#type).expect("event type")
}

async fn changes_arrive_in_order_and_resume_without_gaps_or_repeats(app: TestApp) {
    let watcher = watcher(&app).await;
    let disnaker = reporter(&app, AgencyKind::Disnaker).await;
    let mut live = watch(&app, &watcher, proto::WatchRequest::default())
        .await
        .unwrap();

    let id = employer_in(&app, "33.75").await;
    submit(&app, &disnaker, workforce(&id, 40)).await;
    submit(&app, &disnaker, workforce(&id, 45)).await;

    let mut seen = Vec::new();
    // Each workforce report changes the statuses of both programme groups.
    while seen.len() < 8 {
        seen.push(next_event(&mut live).await);
    }
    let types: Vec<FeedEventType> = seen.iter().map(event_type).collect();
    assert_eq!(
        types,
        [
            FeedEventType::EmployerUpserted,
            FeedEventType::ReportSubmitted,
            FeedEventType::StatusChanged,
            FeedEventType::StatusChanged,
            FeedEventType::ReportSuperseded,
            FeedEventType::ReportSubmitted,
            FeedEventType::StatusChanged,
            FeedEventType::StatusChanged,
        ]
    );
    assert!(seen.windows(2).all(|pair| pair[0].cursor < pair[1].cursor));
    assert!(seen.iter().all(|event| event.employer_id == id));
    assert_eq!(seen[1].source_agency_id, disnaker.id);
    match &seen[6].payload {
        Some(proto::feed_event::Payload::Status(status)) => {
            assert_eq!(status.workers_reported, Some(45));
        }
        other => panic!("not a status: {other:?}"),
    }

    // Resuming after the third event gives exactly the rest, then whatever comes next.
    let mut resumed = watch(
        &app,
        &watcher,
        proto::WatchRequest {
            after_cursor: Some(seen[2].cursor),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for expected in &seen[3..] {
        assert_eq!(next_event(&mut resumed).await, *expected);
    }
    let other = employer_in(&app, "33.75").await;
    let next = next_event(&mut resumed).await;
    assert_eq!(next.employer_id, other);
    assert_eq!(next.cursor, next_event(&mut live).await.cursor);

    // Filters by type and region.
    let mut reports_only = watch(
        &app,
        &watcher,
        proto::WatchRequest {
            after_cursor: Some(0),
            types: vec![FeedEventType::ReportSuperseded.into()],
            region_prefix: Some(proto::RegionCode { code: "33".into() }),
        },
    )
    .await
    .unwrap();
    assert_eq!(next_event(&mut reports_only).await, seen[4]);

    // A cursor past the end and an unknown type are refused.
    let status = watch(
        &app,
        &watcher,
        proto::WatchRequest {
            after_cursor: Some(1_000_000),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = watch(
        &app,
        &watcher,
        proto::WatchRequest {
            types: vec![99],
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

async fn subscribers_receive_only_what_they_may_read(app: TestApp) {
    let disnaker = reporter(&app, AgencyKind::Disnaker).await;
    // Compliance data of Kab. Batang only, and no registry scope.
    let batang = app
        .agency(
            AgencyKind::BpjsKetenagakerjaan,
            &[("feed.read", &[]), ("compliance.read", &["33.25"])],
        )
        .await;
    // A prosecutor may read compliance data but not layoff reports.
    let kejari = app
        .agency(
            AgencyKind::Kejaksaan,
            &[("feed.read", &[]), ("compliance.read", &[])],
        )
        .await;
    let start = Some(0);
    let mut batang_feed = watch(
        &app,
        &batang,
        proto::WatchRequest {
            after_cursor: start,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut kejari_feed = watch(
        &app,
        &kejari,
        proto::WatchRequest {
            after_cursor: start,
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let pekalongan = employer_in(&app, "33.75").await;
    submit(&app, &disnaker, workforce(&pekalongan, 10)).await;
    let in_batang = employer_in(&app, "33.25").await;
    let layoff = proto::SubmitReportRequest {
        report: Some(proto::ReportSubmission {
            employer: Some(report_submission::Employer::EmployerId(in_batang.clone())),
            period: None,
            figures: Some(report_submission::Figures::Layoff(proto::LayoffFigures {
                layoff_date: "2026-10-01".into(),
                workers: 3,
                document_reference: "PHK/33.25/001".into(),
            })),
        }),
        request_id: String::new(),
    };
    submit(&app, &disnaker, layoff).await;
    submit(&app, &disnaker, workforce(&in_batang, 20)).await;

    // Batang sees the Batang compliance events only (no employer events, nothing of
    // Pekalongan); the layoff report is for BPJS, so it is among them.
    let first = next_event(&mut batang_feed).await;
    assert_eq!(event_type(&first), FeedEventType::ReportSubmitted);
    assert_eq!(first.employer_id, in_batang);
    let mut batang_events = vec![first];
    while batang_events.len() < 6 {
        batang_events.push(next_event(&mut batang_feed).await);
    }
    assert!(batang_events.iter().all(|e| e.employer_id == in_batang));
    assert!(
        batang_events
            .iter()
            .all(|e| event_type(e) != FeedEventType::EmployerUpserted)
    );

    // The prosecutor sees both employers' compliance events but not the layoff report.
    let mut kejari_events = Vec::new();
    while kejari_events.len() < 7 {
        kejari_events.push(next_event(&mut kejari_feed).await);
    }
    assert!(kejari_events.iter().all(|e| !matches!(
        &e.payload,
        Some(proto::feed_event::Payload::Report(r)) if r.kind == i32::from(proto::ReportKind::Layoff)
    )));
    assert!(kejari_events.iter().any(|e| e.employer_id == pekalongan));

    // Without feed.read there is no stream at all.
    let status = watch(&app, &disnaker, proto::WatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

/// A batch's events are published when it commits, in the order of its items; a batch of
/// several chunks queues each chunk's events as one bundle, and the statuses it changed follow
/// once the status worker has recomputed them. Its 14,000 events take the sequencer more than
/// one round (10,000 events at most, give or take a bundle), which must not reorder them.
async fn a_batch_publishes_its_events_in_item_order(app: TestApp) {
    const ITEMS: u32 = 7_000;
    let watcher = watcher(&app).await;
    let disnaker = reporter(&app, AgencyKind::Disnaker).await;
    let id = employer_in(&app, "33.75").await;
    let mut live = watch(&app, &watcher, proto::WatchRequest::default())
        .await
        .unwrap();
    assert_eq!(
        event_type(&next_event(&mut live).await),
        FeedEventType::EmployerUpserted
    );

    submit_workforce_batch(&app, &disnaker, &id, 100..100 + ITEMS).await;

    let report = |event: &proto::FeedEvent| match &event.payload {
        Some(proto::feed_event::Payload::Report(report)) => report.clone(),
        other => panic!("not a report: {other:?}"),
    };
    let workers = |event: &proto::FeedEvent| match report(event).figures {
        Some(proto::report::Figures::Workforce(figures)) => figures.total_workers,
        other => panic!("not a workforce report: {other:?}"),
    };
    let mut previous: Option<proto::FeedEvent> = None;
    let mut submitted = Vec::new();
    let mut superseded = Vec::new();
    while submitted.len() < ITEMS as usize {
        let event = next_event(&mut live).await;
        if let Some(previous) = &previous {
            assert_eq!(event.cursor, previous.cursor + 1);
        }
        match event_type(&event) {
            FeedEventType::ReportSubmitted => {
                // The report as it was submitted, though the next item corrected it.
                let submitted_report = report(&event);
                assert!(!submitted_report.superseded);
                assert_eq!(submitted_report.version as usize, submitted.len() + 1);
                submitted.push(workers(&event));
            }
            FeedEventType::ReportSuperseded => {
                // Each correction follows the report it corrects.
                assert!(report(&event).superseded);
                assert_eq!(submitted.last(), Some(&workers(&event)));
                superseded.push(workers(&event));
            }
            other => panic!("unexpected {other:?}"),
        }
        previous = Some(event);
    }
    assert_eq!(submitted, (100..100 + ITEMS).collect::<Vec<_>>());
    assert_eq!(superseded, (100..99 + ITEMS).collect::<Vec<_>>());
    // The recomputed statuses follow the batch.
    for _ in 0..2 {
        assert_eq!(
            event_type(&next_event(&mut live).await),
            FeedEventType::StatusChanged
        );
    }
}

on_both_backends!(
    changes_arrive_in_order_and_resume_without_gaps_or_repeats,
    subscribers_receive_only_what_they_may_read,
    a_batch_publishes_its_events_in_item_order,
);

/// A feed tuned so that slowness and idleness show within a test's time.
async fn impatient_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |config| {
        config.feed.subscriber_queue = 8;
        config.feed.slow_subscriber_timeout_ms = 300;
        config.feed.heartbeat_interval_ms = 100;
    })
    .await
}

async fn slow_and_idle_subscribers(backend: Backend) {
    let app = impatient_app(backend).await;
    let watcher = watcher(&app).await;

    // Idle: heartbeats come, carrying the head.
    let mut idle = watch(&app, &watcher, proto::WatchRequest::default())
        .await
        .unwrap();
    let message = tokio::time::timeout(PATIENCE, idle.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(message.message, Some(Message::Heartbeat(_))));

    // Slow: a subscriber that does not read while thousands of events commit is cut off once
    // its queue stays full, after the events already queued, and told where to resume.
    // (On a connection of its own, with the smallest HTTP/2 windows: an unread stream holds
    // back its whole connection, and large windows would only delay the stall.)
    let connection = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .initial_stream_window_size(Some(65_535))
        .initial_connection_window_size(Some(65_535))
        .connect()
        .await
        .unwrap();
    let mut stalled = FeedServiceClient::new(tonic::service::interceptor::InterceptedService::new(
        connection,
        sinergi::client::BearerToken::new(&watcher.token).unwrap(),
    ))
    .watch(proto::WatchRequest {
        after_cursor: Some(0),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    let id = employer_in(&app, "33.75").await;
    let disnaker = reporter(&app, AgencyKind::Disnaker).await;
    submit_workforce_batch(&app, &disnaker, &id, 100..3100).await;
    // Once a reading subscriber has caught up with the whole batch, the stalled one is
    // certainly stalled; it then stays so for longer than the server's patience.
    let mut follower = watch(
        &app,
        &watcher,
        proto::WatchRequest {
            after_cursor: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    loop {
        let message = tokio::time::timeout(PATIENCE, follower.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(Message::Heartbeat(heartbeat)) = message.message
            && heartbeat.cursor > 6000
        {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(3 * 300)).await;
    let mut last_cursor = 0;
    let ending = loop {
        match tokio::time::timeout(PATIENCE, stalled.message()).await {
            Ok(Ok(Some(message))) => {
                if let Some(Message::Event(event)) = message.message {
                    assert!(event.cursor > last_cursor);
                    last_cursor = event.cursor;
                }
            }
            Ok(Err(status)) => break status,
            other => panic!("the stalled stream was not ended: {other:?} after {last_cursor}"),
        }
    };
    assert_eq!(ending.code(), Code::ResourceExhausted, "{ending:?}");
    let info = ending.get_details_error_info().expect("error info");
    assert_eq!(info.reason, "SUBSCRIBER_TOO_SLOW");
    let resume_after: u64 = info.metadata["resume_after"].parse().unwrap();
    assert_eq!(
        resume_after, last_cursor,
        "resume right after the last event received"
    );
    assert!(last_cursor < 6000, "the stream was cut before the end");

    let mut resumed = watch(
        &app,
        &watcher,
        proto::WatchRequest {
            after_cursor: Some(resume_after),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(next_event(&mut resumed).await.cursor, resume_after + 1);
}

#[tokio::test]
async fn slow_and_idle_subscribers_on_sqlite() {
    slow_and_idle_subscribers(Backend::Sqlite).await;
}

#[tokio::test]
async fn slow_and_idle_subscribers_on_postgres() {
    slow_and_idle_subscribers(Backend::Postgres).await;
}

/// Events written through one replica reach subscribers of another, and a withdrawn grant
/// ends a running stream.
#[tokio::test]
async fn replicas_share_one_feed_and_grants_are_rechecked() {
    let app = impatient_app(Backend::Postgres).await;
    let replica = common::spawn_replica_with(&app, |config| {
        config.feed.heartbeat_interval_ms = 100;
    })
    .await;
    let watcher = app
        .agency(
            AgencyKind::BpjsKesehatan,
            &[("feed.read", &[]), ("employers.read", &[])],
        )
        .await;
    let mut on_replica = watch(&replica, &watcher, proto::WatchRequest::default())
        .await
        .unwrap();
    let id = employer_in(&app, "33.75").await;
    let event = next_event(&mut on_replica).await;
    assert_eq!(event.employer_id, id);

    withdraw_feed_grant(&app, &watcher).await;
    let ending = loop {
        match tokio::time::timeout(PATIENCE, on_replica.message()).await {
            Ok(Ok(Some(_))) => {}
            Ok(Err(status)) => break status,
            other => panic!("the stream outlived its grant: {other:?}"),
        }
    };
    assert_eq!(ending.code(), Code::PermissionDenied);
}

/// An event queued by a transaction that began before others but commits after them (as a
/// long report batch does) is still delivered, though the sequencer has moved on past theirs.
#[tokio::test]
async fn an_event_of_an_older_transaction_that_commits_late_is_delivered() {
    let app = common::spawn_app(Backend::Postgres).await;
    let watcher = watcher(&app).await;
    let mut stream = watch(&app, &watcher, proto::WatchRequest::default())
        .await
        .unwrap();
    let first = employer_in(&app, "33.75").await;
    let first_event = next_event(&mut stream).await;
    assert_eq!(first_event.employer_id, first);

    let mut older = app.postgres_transaction().await;
    // Takes the transaction's id now, before the writes below take theirs.
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut older)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO feed_pending (event_type, time_us, employer_id, region_code, read_scope, \
         audience, source_agency, payload) SELECT event_type, time_us, employer_id, region_code, \
         read_scope, audience, source_agency, payload FROM feed_events WHERE seq = $1",
    )
    .bind(first_event.cursor as i64)
    .execute(&mut older)
    .await
    .unwrap();

    // Newer transactions commit, and their events are numbered and delivered meanwhile.
    let second = employer_in(&app, "33.75").await;
    assert_eq!(next_event(&mut stream).await.employer_id, second);
    let third = employer_in(&app, "33.75").await;
    assert_eq!(next_event(&mut stream).await.employer_id, third);

    sqlx::query("COMMIT").execute(&mut older).await.unwrap();
    let late = next_event(&mut stream).await;
    assert_eq!(late.employer_id, first);
    assert!(late.cursor > first_event.cursor + 2);
}

/// An idle stream, with heartbeats 15 s apart as by default, ends within 2 s of its `feed.read`
/// grant being withdrawn: on the replica that withdrew it and on another one.
#[tokio::test]
async fn an_idle_stream_ends_within_two_seconds_of_its_grant_being_withdrawn() {
    let app = common::spawn_app(Backend::Postgres).await;
    let replica = common::spawn_replica(&app).await;
    assert_eq!(app.config().feed.heartbeat_interval_ms, 15_000);
    for server in [&app, &replica] {
        let watcher = watcher(&app).await;
        let mut stream = watch(server, &watcher, proto::WatchRequest::default())
            .await
            .unwrap();
        withdraw_feed_grant(&app, &watcher).await;
        let ending = tokio::time::timeout(Duration::from_secs(2), stream.message())
            .await
            .expect("the stream ends within 2 s of the withdrawal");
        assert_eq!(ending.unwrap_err().code(), Code::PermissionDenied);
    }
}

/// Withdraws the `feed.read` grant of `agency`.
async fn withdraw_feed_grant(app: &TestApp, agency: &TestAgency) {
    let grants = app
        .admin_client()
        .list_grants(proto::ListGrantsRequest {
            agency_id: agency.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .grants;
    let feed_grant = grants.iter().find(|g| g.scope == "feed.read").unwrap();
    app.admin_client()
        .revoke_grant(proto::RevokeGrantRequest {
            id: feed_grant.id.clone(),
        })
        .await
        .unwrap();
}

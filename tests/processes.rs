//! Sinergi as deployed: separate `sinergi serve` processes, stopped by signals, scaled out as
//! replicas over one PostgreSQL database.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{
    Authed, TestDatabase, authed, create_agency, get_employer, process::Deployment,
    process::ServerProcess,
};
use sinergi::proto;
use tokio::sync::{mpsc, watch};
use tonic::{Code, transport::Channel};

fn employers(
    channel: &Channel,
    token: &str,
) -> proto::employer_service_client::EmployerServiceClient<Authed> {
    proto::employer_service_client::EmployerServiceClient::new(authed(channel, token))
}

fn upsert(employer: proto::Employer) -> proto::UpsertEmployerRequest {
    proto::UpsertEmployerRequest {
        employer: Some(employer),
        ..Default::default()
    }
}

fn registration(employer_id: &str, registered: u32) -> proto::BulkSubmitReportsRequest {
    use proto::report_submission::{Employer, Figures};
    proto::BulkSubmitReportsRequest {
        item: Some(proto::ReportSubmission {
            employer: Some(Employer::EmployerId(employer_id.into())),
            period: Some(proto::Period {
                year: 2026,
                month: 10,
            }),
            figures: Some(Figures::Registration(proto::RegistrationFigures {
                programme_group: proto::ProgrammeGroup::Jkn.into(),
                registered_workers: registered,
                enrolled_programmes: vec![proto::Programme::Jkn.into()],
                reported_wage_total: u64::from(registered) * 4_000_000,
                arrears_amount: 0,
                arrears_months: 0,
            })),
        }),
        ..Default::default()
    }
}

/// Verifies the whole audit log through `server` against the checkpoint saved in `saved`
/// (if any), and returns the tree size.
async fn verify_audit(server: &ServerProcess, auditor: &str, saved: &std::path::Path) -> u64 {
    let mut client =
        proto::audit_service_client::AuditServiceClient::new(authed(&server.channel, auditor));
    let verified = sinergi::client::verify::verify_server(&mut client, saved, None, true)
        .await
        .expect("the audit log verifies");
    assert_eq!(verified.entries_checked, verified.checkpoint.size);
    verified.checkpoint.size
}

#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The call was not served and is safe to retry elsewhere.
    Clean,
    Other(Code),
}

/// A call refused by a server that is stopping is either UNAVAILABLE (no connection, or a
/// stream the server refused) or ended by the server's graceful GOAWAY before it was
/// processed, which tonic reports as INTERNAL with the GOAWAY (NO_ERROR) as its source; gRPC
/// treats both as safe to retry.
fn refusal(status: &tonic::Status) -> Refusal {
    if status.code() == Code::Unavailable {
        return Refusal::Clean;
    }
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(h2) = error.downcast_ref::<h2::Error>()
            && h2.is_go_away()
            && h2.is_remote()
            && h2.reason() == Some(h2::Reason::NO_ERROR)
        {
            return Refusal::Clean;
        }
        source = error.source();
    }
    Refusal::Other(status.code())
}

/// SIGTERM while calls are running: a streaming call in flight finishes and commits, calls
/// after the signal are refused UNAVAILABLE (never cut off with another error), the process
/// exits cleanly, and after a restart everything acknowledged is there and the log verifies.
#[tokio::test]
async fn sigterm_under_load_lets_calls_in_flight_finish() {
    let mut deployment = Deployment::prepare(None).await;
    let mut server = deployment
        .start(&[
            ("SINERGI_SHUTDOWN_GRACE_SECS", "20"),
            ("SINERGI_HEALTH__PROBE_LISTEN", "127.0.0.1:0"),
        ])
        .await;
    let admin = deployment.admin.token.clone();
    let registry = create_agency(
        &server.channel,
        &admin,
        proto::AgencyKind::Disnaker,
        &[("employers.read", &[]), ("employers.write", &[])],
    )
    .await;
    let bpjs = create_agency(
        &server.channel,
        &admin,
        proto::AgencyKind::BpjsKesehatan,
        &[("reports.write", &[]), ("compliance.read", &[])],
    )
    .await;
    let employer = employers(&server.channel, &registry.token)
        .upsert_employer(upsert(common::employer("PT Tutup Rapi")))
        .await
        .expect("employer")
        .into_inner()
        .employer
        .expect("employer");

    // A monthly batch is being streamed when the signal comes.
    let (items, receiver) = mpsc::channel(16);
    let mut compliance = proto::compliance_service_client::ComplianceServiceClient::new(authed(
        &server.channel,
        &bpjs.token,
    ));
    let batch = tokio::spawn(async move {
        compliance
            .bulk_submit_reports(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
    });
    for registered in 0..100 {
        items
            .send(registration(&employer.id, registered))
            .await
            .expect("stream open");
    }

    // Background load, each caller on a connection of its own.
    let (stop, stopped) = watch::channel(false);
    let answers: Arc<Mutex<Vec<Result<(), Refusal>>>> = Arc::default();
    let mut load = Vec::new();
    for _ in 0..8 {
        let channel = common::connect(server.addr, None).await.expect("connect");
        let mut client = employers(&channel, &registry.token);
        let (id, stopped, answers) = (employer.id.clone(), stopped.clone(), Arc::clone(&answers));
        load.push(tokio::spawn(async move {
            while !*stopped.borrow() {
                let answer = client.get_employer(get_employer(&id)).await;
                let failed = answer.is_err();
                answers
                    .lock()
                    .expect("answers")
                    .push(answer.map(drop).map_err(|status| refusal(&status)));
                if failed {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while answers.lock().expect("answers").len() < 200 {
        assert!(Instant::now() < deadline, "load gets going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    server.terminate();
    // While the batch keeps the server in its grace period, probes hear NOT_SERVING, so the
    // orchestrator stops routing new calls here.
    let probe = common::connect(server.probe_addr.expect("probe port"), None)
        .await
        .expect("probe port");
    let mut health = tonic_health::pb::health_client::HealthClient::new(probe);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .expect("the probe port answers during the grace period")
            .into_inner()
            .status();
        if status == tonic_health::pb::health_check_response::ServingStatus::NotServing {
            break;
        }
        assert!(Instant::now() < deadline, "NOT_SERVING after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for registered in 100..200 {
        items
            .send(registration(&employer.id, registered))
            .await
            .expect("stream still open");
    }
    items
        .send(proto::BulkSubmitReportsRequest {
            end_of_batch: true,
            ..Default::default()
        })
        .await
        .expect("stream still open");
    drop(items);
    let stored = batch
        .await
        .expect("task")
        .expect("the batch in flight at SIGTERM finishes")
        .into_inner();
    assert_eq!(stored.accepted_count, 200);

    let status = server.exit_within(Duration::from_secs(30)).await;
    assert!(status.success(), "clean exit: {status:?}");
    stop.send_replace(true);
    for caller in load {
        caller.await.expect("caller");
    }
    let answers = std::mem::take(&mut *answers.lock().expect("answers"));
    let refused = answers.iter().filter(|answer| answer.is_err()).count();
    assert!(refused > 0, "calls after the shutdown were refused");
    for answer in answers.iter() {
        if let Err(refusal) = answer {
            assert_eq!(*refusal, Refusal::Clean, "refused cleanly, not cut off");
        }
    }

    let server = deployment.start(&[]).await;
    let auditor = create_agency(
        &server.channel,
        &deployment.admin.token,
        proto::AgencyKind::Admin,
        &[("audit.read", &[])],
    )
    .await;
    let reports = proto::compliance_service_client::ComplianceServiceClient::new(authed(
        &server.channel,
        &bpjs.token,
    ))
    .list_reports(proto::ListReportsRequest {
        employer_id: employer.id.clone(),
        include_superseded: true,
        page_size: 1000,
        ..Default::default()
    })
    .await
    .expect("reports after restart")
    .into_inner()
    .reports;
    assert_eq!(reports.len(), 200, "the whole batch was committed");
    let saved = tempfile::tempdir().expect("directory");
    verify_audit(&server, &auditor.token, &saved.path().join("cp.txt")).await;
}

/// A feed stream of employer changes from now on.
async fn watch_employers(channel: &Channel, token: &str) -> tonic::Streaming<proto::WatchResponse> {
    proto::feed_service_client::FeedServiceClient::new(authed(channel, token))
        .watch(proto::WatchRequest {
            types: vec![proto::FeedEventType::EmployerUpserted.into()],
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner()
}

/// Collects employer events until `expected` distinct employers were seen, with each one's
/// commit-to-delivery delay.
async fn collect_employers(
    mut stream: tonic::Streaming<proto::WatchResponse>,
    expected: usize,
) -> (std::collections::HashSet<String>, Vec<Duration>) {
    let mut seen = std::collections::HashSet::new();
    let mut delays = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < expected {
        let message = tokio::time::timeout_at(deadline, stream.message())
            .await
            .unwrap_or_else(|_| panic!("only {} of {expected} changes arrived", seen.len()))
            .expect("stream healthy")
            .expect("stream open");
        if let Some(proto::watch_response::Message::Event(event)) = message.message {
            if let Some(committed) = event.commit_time {
                let committed = time::OffsetDateTime::from_unix_timestamp(committed.seconds)
                    .expect("time")
                    + time::Duration::nanoseconds(i64::from(committed.nanos));
                let delay = time::OffsetDateTime::now_utc() - committed;
                delays.push(Duration::try_from(delay).unwrap_or_default());
            }
            seen.insert(event.employer_id);
        }
    }
    (seen, delays)
}

/// Two processes on one PostgreSQL database, driven at once: writes through one are read
/// through the other, subscribers on either see every change, a revocation on one bites on
/// the other within 2 s, and the audit log both wrote stays contiguous and verifiable.
#[tokio::test]
async fn two_replicas_on_one_database() {
    let database = TestDatabase::create().await;
    let mut deployment = Deployment::prepare(Some(database.url())).await;
    let settings = [
        ("SINERGI_AUTH__REFRESH_INTERVAL_MS", "200"),
        ("SINERGI_FEED__POLL_INTERVAL_MS", "100"),
    ];
    let first = deployment.start(&settings).await;
    let second = deployment.start(&settings).await;
    let admin = deployment.admin.token.clone();
    let registry = create_agency(
        &first.channel,
        &admin,
        proto::AgencyKind::Disnaker,
        &[("employers.read", &[]), ("employers.write", &[])],
    )
    .await;
    let watcher = create_agency(
        &second.channel,
        &admin,
        proto::AgencyKind::Admin,
        &[
            ("feed.read", &[]),
            ("employers.read", &[]),
            ("audit.read", &[]),
        ],
    )
    .await;

    const WRITES: usize = 400;
    let mut watchers = Vec::new();
    for server in [&first, &second] {
        let stream = watch_employers(&server.channel, &watcher.token).await;
        watchers.push(tokio::spawn(collect_employers(stream, WRITES)));
    }
    let started = Instant::now();
    let replicas = [first.channel.clone(), second.channel.clone()];
    let writers: Vec<_> = (0..16)
        .map(|writer| {
            let channel = replicas[writer % 2].clone();
            let token = registry.token.clone();
            tokio::spawn(async move {
                let mut client = employers(&channel, &token);
                let mut ids = Vec::new();
                for round in 0..WRITES / 16 {
                    let created = client
                        .upsert_employer(upsert(common::employer(&format!(
                            "PT Replika {writer}-{round}"
                        ))))
                        .await
                        .expect("write")
                        .into_inner()
                        .employer
                        .expect("employer");
                    ids.push((writer % 2, created.id));
                }
                ids
            })
        })
        .collect();
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.expect("writer"));
    }
    let write_time = started.elapsed();
    assert_eq!(written.len(), WRITES);

    // Each write is read through the replica that did not take it.
    let mut readers = [
        employers(&first.channel, &registry.token),
        employers(&second.channel, &registry.token),
    ];
    for (through, id) in &written {
        readers[1 - through]
            .get_employer(get_employer(id))
            .await
            .unwrap_or_else(|status| panic!("{id} not readable on the other replica: {status:?}"));
    }

    let mut delays = Vec::new();
    for watcher_task in watchers {
        let (seen, mut delivered) = watcher_task.await.expect("watcher");
        for (_, id) in &written {
            assert!(seen.contains(id), "a subscriber missed {id}");
        }
        delays.append(&mut delivered);
    }
    delays.sort();
    let p99 = delays[delays.len() * 99 / 100];

    // A revocation through the first replica stops the token on the second within 2 s.
    let reader = create_agency(
        &second.channel,
        &admin,
        proto::AgencyKind::BpjsKesehatan,
        &[("employers.read", &[])],
    )
    .await;
    let mut reader_client = employers(&second.channel, &reader.token);
    reader_client
        .get_employer(get_employer(&written[0].1))
        .await
        .expect("granted read");
    let mut admin_client = proto::agency_admin_service_client::AgencyAdminServiceClient::new(
        authed(&first.channel, &admin),
    );
    let grant = admin_client
        .list_grants(proto::ListGrantsRequest {
            agency_id: reader.id.clone(),
            ..Default::default()
        })
        .await
        .expect("grants")
        .into_inner()
        .grants
        .remove(0);
    admin_client
        .revoke_grant(proto::RevokeGrantRequest { id: grant.id })
        .await
        .expect("revoke");
    let revoked = Instant::now();
    let bite = loop {
        match reader_client
            .get_employer(get_employer(&written[0].1))
            .await
        {
            Err(status) if status.code() == Code::PermissionDenied => break revoked.elapsed(),
            Ok(_) if revoked.elapsed() < Duration::from_secs(2) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("the revocation did not bite within 2 s: {other:?}"),
        }
    };

    // Both replicas serve one contiguous log; the second's checkpoint is consistent with the
    // first's.
    let saved = tempfile::tempdir().expect("directory");
    let checkpoint = saved.path().join("cp.txt");
    let size_first = verify_audit(&first, &watcher.token, &checkpoint).await;
    let size_second = verify_audit(&second, &watcher.token, &checkpoint).await;
    assert!(size_second >= size_first);
    assert!(
        size_first as usize > 2 * WRITES,
        "reads and writes of both are logged"
    );

    eprintln!(
        "two replicas: {WRITES} writes in {write_time:?} ({:.0}/s) through both; feed \
         commit-to-delivery p99 {p99:?} on both; revocation bit on the other replica after \
         {bite:?}; audit log of {size_second} entries verified through both; peak memory \
         {} KiB and {} KiB",
        WRITES as f64 / write_time.as_secs_f64(),
        first.peak_memory_kib(),
        second.peak_memory_kib(),
    );
}

/// A stand-in OTLP collector that keeps the (service name, span name, method) of every span
/// it receives.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, String, String)>>>,
}

fn string_attribute(
    attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
        .map(|value| match value {
            Value::StringValue(text) => text.clone(),
            other => format!("{other:?}"),
        })
        .unwrap_or_default()
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Collector
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        let mut spans = self.spans.lock().expect("spans");
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .map(|resource| string_attribute(&resource.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    let method = string_attribute(&span.attributes, "method");
                    spans.push((service.clone(), span.name, method));
                }
            }
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

/// With an OTLP endpoint configured, every call's span reaches the collector, at the latest
/// when the process stops.
#[tokio::test]
async fn call_spans_are_exported_over_otlp() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind collector");
    let collector_addr = listener.local_addr().expect("address");
    let service = opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer::new(
        collector.clone(),
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let mut deployment = Deployment::prepare(None).await;
    let endpoint = format!("http://{collector_addr}");
    let mut server = deployment
        .start(&[
            ("SINERGI_LOG__OTLP_ENDPOINT", endpoint.as_str()),
            ("SINERGI_LOG__SERVICE_NAME", "sinergi-otlp-test"),
        ])
        .await;
    proto::auth_service_client::AuthServiceClient::new(server.channel.clone())
        .get_jwks(proto::GetJwksRequest {})
        .await
        .expect("a call to trace");
    server.terminate();
    assert!(server.exit_within(Duration::from_secs(30)).await.success());

    let spans = collector.spans.lock().expect("spans");
    for method in [
        "/sinergi.v1.AuthService/IssueToken",
        "/sinergi.v1.AuthService/GetJwks",
    ] {
        assert!(
            spans
                .iter()
                .any(|(service, name, traced)| service == "sinergi-otlp-test"
                    && name == "rpc"
                    && traced == method),
            "no span for {method} among {spans:?}"
        );
    }
}

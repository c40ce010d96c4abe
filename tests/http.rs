//! The HTTP/JSON door, called as a REST client calls it: the same rules, tokens and audit as
//! over gRPC; bad requests answered 4xx with a `google.rpc.Status` naming the field and
//! recorded as invalid; ETags as HTTP ETags; the feed as Server-Sent Events that resume from
//! `Last-Event-ID`; a bulk submission as an all-or-nothing NDJSON upload; and the OpenAPI
//! document served and committed alike.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sinergi::proto::AgencyKind;

use common::{Backend, TestAgency, TestApp, npwp15, spawn_app_with, unique_number};

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The field the first BadRequest violation names.
    fn violated_field(&self) -> String {
        let status = self.json();
        status["details"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|detail| detail["@type"] == "type.googleapis.com/google.rpc.BadRequest")
            .and_then(|bad| bad["fieldViolations"][0]["field"].as_str())
            .unwrap_or_default()
            .to_owned()
    }
}

struct Call<'a> {
    method: http::Method,
    path: String,
    token: Option<&'a str>,
    headers: Vec<(&'static str, String)>,
    body: Option<(&'static str, Vec<u8>)>,
}

impl<'a> Call<'a> {
    fn get(path: impl Into<String>) -> Self {
        Self {
            method: http::Method::GET,
            path: path.into(),
            token: None,
            headers: Vec::new(),
            body: None,
        }
    }

    fn post(path: impl Into<String>, body: &Value) -> Self {
        Self {
            method: http::Method::POST,
            body: Some(("application/json", body.to_string().into_bytes())),
            ..Self::get(path)
        }
    }

    fn by(self, agency: &'a TestAgency) -> Self {
        Self {
            token: Some(&agency.token),
            ..self
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn raw_body(self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: Some((content_type, body.into())),
            ..self
        }
    }

    fn request(&self) -> http::Request<Full<Bytes>> {
        let mut request = http::Request::builder()
            .method(self.method.clone())
            .uri(&self.path)
            .header("host", "sinergi.test");
        if let Some(token) = self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let body = match &self.body {
            Some((content_type, body)) => {
                request = request.header("content-type", *content_type);
                Bytes::from(body.clone())
            }
            None => Bytes::new(),
        };
        request.body(Full::new(body)).expect("a request")
    }

    async fn send(self, app: &TestApp) -> Answer {
        let response = open(app)
            .await
            .send_request(self.request())
            .await
            .expect("an answer");
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.expect("the body").to_bytes(),
        }
    }

    /// Sends the request and returns the answer with its body still streaming.
    async fn stream(self, app: &TestApp) -> http::Response<hyper::body::Incoming> {
        open(app)
            .await
            .send_request(self.request())
            .await
            .expect("an answer")
    }
}

async fn open(app: &TestApp) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let addr = app.http_addr.expect("the HTTP door is on");
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

fn employer_json(name: &str) -> Value {
    let n = unique_number();
    json!({
        "npwp": npwp15(n),
        "nib": format!("{:013}", 1_000_000_000_000 + n),
        "bpjsTkNpp": [format!("{:08}", 10_000_000 + n)],
        "bpjsKesCode": format!("KES-{n}"),
        "name": name,
        "address": "Jl. Hayam Wuruk 1, Pekalongan",
        "region": {"code": "33.75"},
        "kbli": "13134",
        "sizeClass": "SIZE_CLASS_MEDIUM",
        "workforceDeclared": 120,
    })
}

async fn upsert(app: &TestApp, name: &str) -> Value {
    let answer = Call::post(
        "/v1/employers:upsert",
        &json!({"employer": employer_json(name)}),
    )
    .by(&app.registry)
    .send(app)
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());
    answer.json()["employer"].clone()
}

/// The audit events of `method` with `decision`, once at least `count` are in the log.
async fn audited(app: &TestApp, method: &str, decision: &str, count: usize) -> Vec<Value> {
    let auditor = app.agency(AgencyKind::Admin, &[("audit.read", &[])]).await;
    let started = Instant::now();
    loop {
        let answer = Call::get(format!(
            "/v1/audit/events?method={method}&decision={decision}&pageSize=100"
        ))
        .by(&auditor)
        .send(app)
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());
        let events = answer.json()["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if events.len() >= count {
            return events;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{count} {decision} events of {method} never reached the log: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn an_employer_round_trips_with_the_rules_tokens_and_etags_of_grpc(app: TestApp) {
    let created = upsert(&app, "PT Batik Pesisir").await;
    let id = created["id"].as_str().expect("an id").to_owned();
    assert_eq!(created["region"]["code"], "33.75");
    assert_eq!(created["sizeClass"], "SIZE_CLASS_MEDIUM", "enums by name");

    let read = Call::get(format!("/v1/employers/{id}"))
        .by(&app.registry)
        .send(&app)
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json()["employer"]["name"], "PT Batik Pesisir");
    let etag = read.headers["etag"].to_str().expect("an ETag").to_owned();
    assert_eq!(
        etag,
        format!("\"{}\"", created["etag"].as_str().expect("etag"))
    );

    // The same employer over gRPC: one registry behind both doors.
    let over_grpc = app
        .employers()
        .get_employer(common::get_employer(&id))
        .await
        .expect("read over gRPC")
        .into_inner()
        .employer
        .expect("employer");
    assert_eq!(over_grpc.name, "PT Batik Pesisir");

    let unchanged = Call::get(format!("/v1/employers/{id}"))
        .by(&app.registry)
        .header("if-none-match", etag.clone())
        .send(&app)
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);

    let lookup = Call::get(format!("/v1/employers:lookup?npwp={}", over_grpc.npwp))
        .by(&app.registry)
        .send(&app)
        .await;
    assert_eq!(lookup.json()["employer"]["id"], id.as_str());

    let mut renamed = created.clone();
    renamed["name"] = json!("PT Batik Pesisir Baru");
    let write = Call::post("/v1/employers:upsert", &json!({"employer": renamed}))
        .by(&app.registry)
        .header("if-match", etag.clone())
        .send(&app)
        .await;
    assert_eq!(write.status, StatusCode::OK, "{}", write.json());
    let stale = Call::post("/v1/employers:upsert", &json!({"employer": renamed}))
        .by(&app.registry)
        .header("if-match", etag)
        .send(&app)
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.json()["code"], tonic::Code::Aborted as i32);

    let anonymous = Call::get(format!("/v1/employers/{id}")).send(&app).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers["www-authenticate"], "Bearer");
    assert_eq!(
        anonymous.json()["code"],
        tonic::Code::Unauthenticated as i32
    );

    let reader = app
        .agency(AgencyKind::BpjsKesehatan, &[("employers.read", &["31"])])
        .await;
    let elsewhere = Call::get(format!("/v1/employers/{id}"))
        .by(&reader)
        .send(&app)
        .await;
    assert_eq!(
        elsewhere.status,
        StatusCode::FORBIDDEN,
        "{}",
        elsewhere.json()
    );

    // Recorded like gRPC calls: the writes allowed, the anonymous read denied.
    let writes = audited(
        &app,
        "/sinergi.v1.EmployerService/UpsertEmployer",
        "DECISION_ALLOWED",
        3,
    )
    .await;
    assert!(
        writes
            .iter()
            .all(|event| event["entry"]["agencyId"] == app.registry.id.as_str())
    );
    audited(
        &app,
        "/sinergi.v1.EmployerService/GetEmployer",
        "DECISION_DENIED",
        2,
    )
    .await;
}

async fn bad_requests_are_4xx_statuses_naming_the_field_and_are_recorded_invalid(app: TestApp) {
    let upsert_path = "/v1/employers:upsert";
    let cases: Vec<(Call, StatusCode, &str)> = vec![
        (
            Call::post(upsert_path, &json!({})).raw_body("application/json", "{\"employer\":"),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        (
            Call::post(upsert_path, &json!({"employer": {"colour": "red"}})),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        (
            Call::post(upsert_path, &json!({"employer": {"name": 7}})),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        (
            Call::post(upsert_path, &json!({})).raw_body("text/plain", "employer=PT"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type",
        ),
        (
            Call::post(upsert_path, &json!({}))
                .raw_body("application/json", vec![b' '; 4 * 1024 * 1024 + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body",
        ),
        (
            Call::post(
                "/v1/referrals",
                &json!({"amountClaimed": 9_007_199_254_740_993_u64}),
            ),
            StatusCode::BAD_REQUEST,
            "amountClaimed",
        ),
        (
            Call::get("/v1/employers/not-a-uuid"),
            StatusCode::BAD_REQUEST,
            "id",
        ),
        (
            Call::get("/v1/employers?page_size=many"),
            StatusCode::BAD_REQUEST,
            "page_size",
        ),
        (
            Call::get("/v1/employers?colour=red"),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
    ];
    let mut upserts_refused = 0;
    for (call, status, field) in cases {
        let path = call.path.clone();
        if path == upsert_path {
            upserts_refused += 1;
        }
        let answer = call.by(&app.registry).send(&app).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.json());
        assert_eq!(answer.json()["code"], tonic::Code::InvalidArgument as i32);
        assert_eq!(answer.violated_field(), field, "{path}: {}", answer.json());
    }
    let get_with_body = Call::get("/v1/employers")
        .raw_body("application/json", "{}")
        .by(&app.registry)
        .send(&app)
        .await;
    assert_eq!(get_with_body.status, StatusCode::BAD_REQUEST);
    assert_eq!(get_with_body.violated_field(), "body");

    let unbound = Call::get("/v1/colours").send(&app).await;
    assert_eq!(unbound.status, StatusCode::NOT_FOUND);
    assert_eq!(unbound.json()["code"], tonic::Code::NotFound as i32);
    let wrong_verb = Call::post("/v1/employers/x", &json!({})).send(&app).await;
    assert_eq!(wrong_verb.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_verb.headers["allow"], "GET");

    // Every refusal went through the call's stack into the audit log, as invalid.
    audited(
        &app,
        "/sinergi.v1.EmployerService/UpsertEmployer",
        "DECISION_INVALID",
        upserts_refused,
    )
    .await;
    // And the server keeps serving.
    upsert(&app, "PT Masih Melayani").await;
}

#[tokio::test]
async fn a_slow_body_is_timed_out() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.limits.request_timeout_ms = 500
    })
    .await;
    let addr = app.http_addr.expect("the HTTP door is on");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "POST /v1/employers:upsert HTTP/1.1\r\nhost: sinergi.test\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"emp",
        app.registry.token
    );
    stream.write_all(head.as_bytes()).await.expect("the start");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("an answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    upsert(&app, "PT Setelah Lambat").await;
}

/// An agency over its rate is told when to come back: RetryInfo in the status, the same
/// delay rounded up to whole seconds in `Retry-After`, over HTTP as over gRPC.
#[tokio::test]
async fn a_caller_over_its_rate_is_told_when_to_retry() {
    use tonic_types::StatusExt;

    let app = spawn_app_with(Backend::Sqlite, |config| {
        // A call a second after a burst of twenty: enough for the set-up's own calls, and the
        // calls below come within milliseconds of each other.
        config.limits.agency_calls_per_second = 1;
        config.limits.agency_burst = 20;
    })
    .await;
    let reader = app
        .agency(AgencyKind::Disnaker, &[("employers.read", &[])])
        .await;
    let path = format!("/v1/employers/{}", uuid::Uuid::new_v4());
    let mut served = 0;
    let limited = loop {
        let answer = Call::get(&path).by(&reader).send(&app).await;
        if answer.status != StatusCode::NOT_FOUND {
            break answer;
        }
        served += 1;
        assert!(
            served <= 21,
            "the burst is twenty, and a token a second comes back"
        );
    };
    assert!(served >= 19, "{served} of the burst of twenty served");
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1"),
        "a token a second comes within a second"
    );
    let status = limited.json();
    let details = status["details"].as_array().expect("details");
    let retry = details
        .iter()
        .find(|detail| detail["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .expect("RetryInfo");
    let delay: f64 = retry["retryDelay"]
        .as_str()
        .and_then(|text| text.strip_suffix('s'))
        .and_then(|seconds| seconds.parse().ok())
        .expect("a duration");
    assert!(delay > 0.0 && delay <= 1.0, "{delay}");
    assert!(
        details
            .iter()
            .any(|detail| detail["reason"] == "AGENCY_RATE_EXCEEDED")
    );

    let over_grpc = app
        .employers_as(&reader.token)
        .get_employer(common::get_employer(&uuid::Uuid::new_v4().to_string()))
        .await
        .expect_err("still over the rate");
    assert_eq!(over_grpc.code(), tonic::Code::ResourceExhausted);
    let delay = over_grpc
        .get_details_retry_info()
        .and_then(|retry| retry.retry_delay)
        .expect("RetryInfo over gRPC");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(1),
        "{delay:?}"
    );
}

async fn the_feed_streams_as_server_sent_events_and_resumes_from_last_event_id(app: TestApp) {
    let watcher = app
        .agency(
            AgencyKind::BpjsKesehatan,
            &[("feed.read", &[]), ("employers.read", &[])],
        )
        .await;
    let first = upsert(&app, "PT Satu").await;
    let second = upsert(&app, "PT Dua").await;

    let events = read_events(&app, &watcher, None, 2).await;
    let ours: Vec<&(String, String, Value)> = events
        .iter()
        .filter(|(kind, _, _)| kind == "event")
        .collect();
    assert_eq!(ours.len(), 2, "{events:?}");
    assert_eq!(ours[0].2["event"]["employer"]["id"], first["id"]);
    assert_eq!(ours[1].2["event"]["employer"]["id"], second["id"]);
    assert_eq!(
        ours[0].1,
        ours[0].2["event"]["cursor"].as_str().expect("a cursor")
    );

    // Resumed right after the first: the second comes again, the first does not.
    let resumed = read_events(&app, &watcher, Some(&ours[0].1), 1).await;
    let again: Vec<_> = resumed
        .iter()
        .filter(|(kind, _, _)| kind == "event")
        .collect();
    assert_eq!(again[0].2["event"]["employer"]["id"], second["id"]);
}

/// Reads SSE events from the feed until `wanted` change events arrived: (name, id, data).
async fn read_events(
    app: &TestApp,
    watcher: &TestAgency,
    last_event_id: Option<&str>,
    wanted: usize,
) -> Vec<(String, String, Value)> {
    let mut call = Call::get("/v1/feed:watch?types=FEED_EVENT_TYPE_EMPLOYER_UPSERTED")
        .by(watcher)
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        call = call.header("last-event-id", id);
    }
    let response = call.stream(app).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut text = String::new();
    let mut events = Vec::new();
    while events
        .iter()
        .filter(|(kind, _, _): &&(String, String, Value)| kind == "event")
        .count()
        < wanted
    {
        read_more(&mut body, &mut text).await;
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .unwrap_or_default()
                    .to_owned()
            };
            let data = serde_json::from_str(&field("data: ")).expect("JSON data");
            events.push((field("event: "), field("id: "), data));
        }
    }
    events
}

/// A feed with nothing new is still answered at once: the status and headers go out before
/// the first event or heartbeat, so that an HTTP client's header timeout does not end the call
/// (a quiet feed once kept its headers back until the first heartbeat, 15 s by default).
#[tokio::test]
async fn a_quiet_feed_is_answered_before_its_first_event_or_heartbeat() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.feed.heartbeat_interval_ms = 3_600_000;
    })
    .await;
    let watcher = app
        .agency(
            AgencyKind::BpjsKesehatan,
            &[("feed.read", &[]), ("employers.read", &[])],
        )
        .await;
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        Call::get("/v1/feed:watch?types=FEED_EVENT_TYPE_EMPLOYER_UPSERTED")
            .by(&watcher)
            .stream(&app),
    )
    .await
    .expect("the headers before the first heartbeat");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");

    // The stream then carries the first change as its first line.
    let employer = upsert(&app, "PT Sesudah Sepi").await;
    let mut body = response.into_body();
    let mut text = String::new();
    while !text.contains('\n') {
        read_more(&mut body, &mut text).await;
    }
    let line: Value =
        serde_json::from_str(text.lines().next().unwrap_or_default()).expect("a JSON line");
    assert_eq!(line["event"]["employer"]["id"], employer["id"], "{line}");
}

/// Appends the stream's next frame to `text`, failing if none comes within 10 s.
async fn read_more(body: &mut hyper::body::Incoming, text: &mut String) {
    let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("the next message in time")
        .expect("the stream goes on")
        .expect("a frame");
    if let Ok(data) = frame.into_data() {
        text.push_str(&String::from_utf8_lossy(&data));
    }
}

fn report_line(employer_id: &str, registered: u32) -> String {
    json!({
        "employerId": employer_id,
        "period": {"year": 2026, "month": 10},
        "registration": {
            "programmeGroup": "PROGRAMME_GROUP_JKN",
            "registeredWorkers": registered,
            "enrolledProgrammes": ["PROGRAMME_JKN"],
            "reportedWageTotal": (u64::from(registered) * 4_000_000).to_string(),
        },
    })
    .to_string()
}

async fn a_bulk_ndjson_upload_is_all_or_nothing(app: TestApp) {
    let bpjs = app
        .agency(
            AgencyKind::BpjsKesehatan,
            &[("reports.write", &[]), ("compliance.read", &[])],
        )
        .await;
    let employer = upsert(&app, "PT Unggah").await;
    let id = employer["id"].as_str().expect("an id");
    let upload = |request_id: &str, lines: Vec<String>| Call {
        method: http::Method::POST,
        ..Call::get(format!("/v1/reports:bulkSubmit?request_id={request_id}"))
            .raw_body("application/x-ndjson", lines.join("\n") + "\n")
            .by(&bpjs)
    };
    let refused = upload(
        "batch-0001",
        vec![report_line(id, 80), "{\"employerId\": 7}".into()],
    )
    .send(&app)
    .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.json()
    );
    assert_eq!(refused.violated_field(), "items[1]");
    let listed = Call::get(format!("/v1/employers/{id}/reports"))
        .by(&bpjs)
        .send(&app)
        .await;
    assert_eq!(listed.json()["reports"], json!([]), "nothing stored");

    let accepted = upload("batch-0002", vec![report_line(id, 80)])
        .send(&app)
        .await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.json());
    assert_eq!(accepted.json()["acceptedCount"], "1");
    let retried = upload("batch-0002", vec![report_line(id, 80)])
        .send(&app)
        .await;
    assert_eq!(
        retried.json(),
        accepted.json(),
        "the request id answers the first result"
    );
    let listed = Call::get(format!("/v1/employers/{id}/reports"))
        .by(&bpjs)
        .send(&app)
        .await;
    assert_eq!(listed.json()["reports"].as_array().map(Vec::len), Some(1));
}

async fn the_openapi_document_is_served_and_committed(app: TestApp) {
    let served = Call::get("/openapi.json").send(&app).await;
    assert_eq!(served.status, StatusCode::OK);
    let committed = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
        .expect("docs/openapi.json");
    assert!(
        served.body == committed,
        "docs/openapi.json is out of date: `cargo run -- openapi > docs/openapi.json`"
    );
    let document = served.json();
    assert_eq!(document["openapi"], "3.1.0");
    let get = &document["paths"]["/v1/employers/{id}"]["get"];
    assert_eq!(get["operationId"], "EmployerService_GetEmployer");
    assert!(
        get["description"]
            .as_str()
            .is_some_and(|text| text.contains("NPWP"))
    );
    assert_eq!(
        document["paths"]["/v1/token"]["post"]["security"],
        json!([]),
        "the token endpoint needs no token"
    );
}

on_both_backends!(
    an_employer_round_trips_with_the_rules_tokens_and_etags_of_grpc,
    bad_requests_are_4xx_statuses_naming_the_field_and_are_recorded_invalid,
    the_feed_streams_as_server_sent_events_and_resumes_from_last_event_id,
    a_bulk_ndjson_upload_is_all_or_nothing,
    the_openapi_document_is_served_and_committed,
);

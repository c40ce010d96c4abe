//! Errors as a client on grpc's default limits receives them: Python `grpcio`, which refuses a
//! status whose trailers pass its metadata limit (8 KiB soft, 16 KiB hard) with
//! RESOURCE_EXHAUSTED, so a caller would never learn what it got wrong. The worst case of each
//! kind of error must arrive whole, with its details.

mod common;

use std::process::Stdio;

use base64::{Engine, engine::general_purpose::STANDARD};
use common::{Backend, TestApp, python::python, spawn_app};
use prost::Message;
use sinergi::proto::{self, AgencyKind};
use tokio::io::AsyncWriteExt;

const PACKAGES: [&str; 1] = ["grpcio==1.85.3"];

struct Outcome {
    code: String,
    message: String,
    details: tonic_types::pb::Status,
}

/// Calls `method` through grpcio with `messages` (a stream when `streaming`).
async fn call(
    app: &TestApp,
    python: &std::path::Path,
    method: &str,
    token: &str,
    streaming: bool,
    messages: &[Vec<u8>],
) -> Outcome {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/grpc_call.py");
    let input = serde_json::json!({
        "target": app.addr.to_string(),
        "method": method,
        "streaming": streaming,
        "token": token,
        "messages": messages.iter().map(|m| m.iter().map(|b| format!("{b:02x}")).collect::<String>()).collect::<Vec<_>>(),
    });
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.to_string().as_bytes())
        .await
        .expect("write the call");
    drop(stdin);
    let output = child.wait_with_output().await.expect("grpcio call");
    assert!(output.status.success(), "{output:?}");
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let details = STANDARD
        .decode(printed["status_details"].as_str().unwrap_or_default())
        .expect("base64");
    Outcome {
        code: printed["code"].as_str().unwrap_or_default().to_owned(),
        message: printed["message"].as_str().unwrap_or_default().to_owned(),
        details: tonic_types::pb::Status::decode(details.as_slice()).expect("google.rpc.Status"),
    }
}

fn detail<T: Message + Default>(outcome: &Outcome, type_url: &str) -> Option<T> {
    outcome
        .details
        .details
        .iter()
        .find(|any| any.type_url.ends_with(type_url))
        .map(|any| T::decode(any.value.as_slice()).expect("detail"))
}

/// INVALID_ARGUMENT with some violations listed and all of them counted.
fn assert_counted(outcome: &Outcome, total: usize) {
    assert_eq!(outcome.code, "INVALID_ARGUMENT", "{}", outcome.message);
    assert!(
        outcome
            .message
            .starts_with(&format!("{total} fields invalid; first: ")),
        "{}",
        outcome.message
    );
    let bad_request: tonic_types::pb::BadRequest =
        detail(outcome, "google.rpc.BadRequest").expect("BadRequest");
    assert!(!bad_request.field_violations.is_empty());
    let info: tonic_types::pb::ErrorInfo =
        detail(outcome, "google.rpc.ErrorInfo").expect("ErrorInfo");
    assert_eq!(info.metadata["violation_count"], total.to_string());
    assert_eq!(
        info.metadata["violations_listed"],
        bad_request.field_violations.len().to_string()
    );
}

/// Bad items of a bulk batch, each breaking several rules.
fn bad_batch(items: usize, text: &str) -> Vec<Vec<u8>> {
    (0..items)
        .map(|index| {
            proto::BulkSubmitReportsRequest {
                item: Some(proto::ReportSubmission {
                    employer: Some(proto::report_submission::Employer::EmployerNpwp(
                        text.to_owned(),
                    )),
                    period: Some(proto::Period { year: 1, month: 13 }),
                    figures: None,
                }),
                request_id: String::new(),
                end_of_batch: index + 1 == items,
            }
            .encode_to_vec()
        })
        .collect()
}

#[tokio::test]
async fn the_worst_errors_reach_a_client_on_default_limits() {
    let app = spawn_app(Backend::Sqlite).await;
    let python = python("grpcio-venv", &PACKAGES);
    let reporter = app
        .agency(AgencyKind::Disnaker, &[("reports.write", &[])])
        .await;
    let bulk = "/sinergi.v1.ComplianceService/BulkSubmitReports";

    // A batch of 150 bad items (about 17 KiB of status when every violation was listed), then
    // 5,000 with long text in every item.
    for (items, text) in [(150, "01.234"), (5_000, &"9".repeat(1_000) as &str)] {
        let outcome = call(
            &app,
            &python,
            bulk,
            &reporter.token,
            true,
            &bad_batch(items, text),
        )
        .await;
        let info: tonic_types::pb::ErrorInfo =
            detail(&outcome, "google.rpc.ErrorInfo").expect("ErrorInfo");
        let total: usize = info.metadata["violation_count"].parse().expect("a count");
        assert!(total >= items * 2, "{total} violations for {items} items");
        assert_counted(&outcome, total);
    }

    // A grant naming a 100 KB scope and 1,000 invalid regions of 1 KB each: every violation
    // repeats the caller's text.
    let grant = proto::GrantScopeRequest {
        agency_id: reporter.id.clone(),
        scope: "x".repeat(100_000),
        regions: (0..1_000)
            .map(|_| proto::RegionCode {
                code: "é".repeat(500),
            })
            .collect(),
        ..Default::default()
    };
    let outcome = call(
        &app,
        &python,
        "/sinergi.v1.AgencyAdminService/GrantScope",
        &app.admin.token,
        false,
        &[grant.encode_to_vec()],
    )
    .await;
    assert_counted(&outcome, 1_001);

    // An employer with every field wrong and long.
    let long = "%".repeat(30_000);
    let employer = proto::UpsertEmployerRequest {
        employer: Some(proto::Employer {
            npwp: long.clone(),
            nib: long.clone(),
            name: long.clone(),
            region: Some(proto::RegionCode { code: long.clone() }),
            kbli: long.clone(),
            bpjs_tk_npp: vec![long.clone(); 50],
            ..Default::default()
        }),
        request_id: long.clone(),
        ..Default::default()
    };
    let outcome = call(
        &app,
        &python,
        "/sinergi.v1.EmployerService/UpsertEmployer",
        &app.registry.token,
        false,
        &[employer.encode_to_vec()],
    )
    .await;
    assert_eq!(outcome.code, "INVALID_ARGUMENT", "{}", outcome.message);
    assert!(detail::<tonic_types::pb::BadRequest>(&outcome, "google.rpc.BadRequest").is_some());

    // The longest refusal with a list in it: the administrator kind's row of scopes.
    let admin_kind = app.agency(AgencyKind::Admin, &[]).await;
    let outcome = call(
        &app,
        &python,
        "/sinergi.v1.AgencyAdminService/GrantScope",
        &app.admin.token,
        false,
        &[proto::GrantScopeRequest {
            agency_id: admin_kind.id.clone(),
            scope: "reports.write".into(),
            ..Default::default()
        }
        .encode_to_vec()],
    )
    .await;
    assert_eq!(outcome.code, "FAILED_PRECONDITION", "{}", outcome.message);
    let info: tonic_types::pb::ErrorInfo =
        detail(&outcome, "google.rpc.ErrorInfo").expect("ErrorInfo");
    assert_eq!(info.reason, "SCOPE_NOT_ALLOWED_FOR_KIND");
}

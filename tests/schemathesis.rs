//! The running server fuzzed from its own OpenAPI document with schemathesis (PyPI, in a
//! virtual environment under `target/`): generated requests, valid and invalid, to every
//! operation, as the agency that may call it. No answer is a 5xx, every answer conforms to the
//! document (status, content type, headers, schema), and every request the document forbids is
//! refused with a 4xx `google.rpc.Status`.

mod common;

use std::path::Path;

use common::{Backend, TestApp, python::python, spawn_app_with};
use sinergi::proto::AgencyKind;

const PACKAGES: [&str; 1] = ["schemathesis==4.32.5"];

fn document() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
}

/// Runs schemathesis over the operations whose path matches `paths`, sending `token`; panics
/// with its report when a check fails.
async fn fuzz(app: &TestApp, token: &str, paths: &str) {
    let schemathesis = python("schemathesis-venv", &PACKAGES).with_file_name("schemathesis");
    let base = format!("http://{}", app.http_addr.expect("the HTTP door is on"));
    let report = tempfile::tempdir().expect("a report directory");
    let output = tokio::process::Command::new(schemathesis)
        .arg("run")
        .arg(document())
        .args(["--url", &base])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--include-path-regex", paths])
        .args(["--checks", "all"])
        // A request the schema allows may still break a rule no JSON schema states (an NPWP's
        // check digit, a lifecycle step, an agency disabling itself): such a request is
        // answered 400 with the field named, which the document's error response covers.
        .args(["--exclude-checks", "positive_data_acceptance"])
        // The coverage phase stops with an error inside schemathesis 4.32.5 on this document
        // before it sends a request; the other phases generate from the same schemas.
        .args(["--phases", "examples,fuzzing,stateful"])
        .args(["--max-examples", "30"])
        .args(["--seed", "20261207"])
        .args(["--workers", "2"])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none"])
        .arg("--no-color")
        .arg("--report-dir")
        .arg(report.path())
        .env(
            "SCHEMATHESIS_HOOKS",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/schemathesis_hooks.py"
            ),
        )
        .current_dir(report.path())
        .output()
        .await
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&output.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis found failures");
}

#[tokio::test]
async fn the_server_holds_to_its_openapi_document_under_generated_requests_on_sqlite() {
    holds_to_its_document(Backend::Sqlite).await;
}

/// PostgreSQL refuses what SQLite stores (a NUL in text, for one): generated strings must be
/// refused as bad input there too, never fail as internal errors.
#[tokio::test]
async fn the_server_holds_to_its_openapi_document_under_generated_requests_on_postgres() {
    holds_to_its_document(Backend::Postgres).await;
}

async fn holds_to_its_document(backend: Backend) {
    // The limits are lifted so that generated requests reach the rules rather than the rate
    // limit; the feed's Watch, a stream without end, is left to the HTTP tests.
    let app = spawn_app_with(backend, |config| {
        config.limits.agency_calls_per_second = 100_000;
        config.limits.agency_burst = 100_000;
    })
    .await;
    // Each operation is fuzzed as an agency of a kind that may call it, so the generated
    // requests reach the rules behind the scopes rather than stopping at PERMISSION_DENIED.
    let callers: [(AgencyKind, &[&str], &str); 4] = [
        (
            AgencyKind::BpjsKetenagakerjaan,
            &[
                "employers.read",
                "employers.write",
                "reports.write",
                "compliance.read",
                "inspections.read",
                "sanctions.read",
                "sanctions.write",
                "referrals.read",
                "referrals.create",
                "coverage.read",
            ],
            "^/v1/(employers|reports|nonCompliant|coverage|referrals$|sanctionTracks)",
        ),
        (
            AgencyKind::DisnakertransProvinsi,
            &["employers.read", "inspections.read", "inspections.write"],
            "^/v1/inspections",
        ),
        (
            AgencyKind::Kejaksaan,
            &["referrals.read", "referrals.progress"],
            "^/v1/referrals",
        ),
        (
            AgencyKind::LicensingOffice,
            &["sanctions.check", "sanctions.read"],
            "^/v1/employerSanctions",
        ),
    ];
    for (kind, scopes, paths) in callers {
        let grants: Vec<(&str, &[&str])> = scopes.iter().map(|scope| (*scope, &[][..])).collect();
        let caller = app.agency(kind, &grants).await;
        fuzz(&app, &caller.token, paths).await;
    }
    // Last, since it revokes grants and disables agencies as it goes.
    fuzz(
        &app,
        &app.admin.token,
        "^/v1/(agencies|grants|audit|token|jwks)",
    )
    .await;
}

//! The server as operators and tools see it: health, reflection, the command line, shutdown.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Backend, TestApp, spawn_app};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::{v1, v1alpha};

async fn health_status(channel: Channel, service: &str) -> ServingStatus {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health check")
        .into_inner();
    ServingStatus::try_from(response.status).expect("known status")
}

/// The services listed by one version of the reflection protocol; the two versions have the
/// same messages in different packages.
macro_rules! listed_services {
    ($version:ident, $channel:expr) => {{
        use $version::{
            server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let request = $version::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = ServerReflectionClient::new($channel)
            .server_reflection_info(tokio_stream::once(request))
            .await
            .expect("reflection")
            .into_inner();
        match responses
            .message()
            .await
            .expect("answer")
            .and_then(|r| r.message_response)
        {
            Some(MessageResponse::ListServicesResponse(list)) => list
                .service
                .into_iter()
                .map(|s| s.name)
                .collect::<Vec<String>>(),
            other => panic!("unexpected reflection answer {other:?}"),
        }
    }};
}

async fn health_reports_serving(app: TestApp) {
    assert_eq!(
        health_status(app.channel.clone(), "").await,
        ServingStatus::Serving
    );
    assert_eq!(
        health_status(app.channel.clone(), "sinergi.v1.EmployerService").await,
        ServingStatus::Serving
    );
}

async fn reflection_lists_the_services_in_both_versions(app: TestApp) {
    for services in [
        listed_services!(v1, app.channel.clone()),
        listed_services!(v1alpha, app.channel.clone()),
    ] {
        for expected in [
            "sinergi.v1.EmployerService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(
                services.iter().any(|s| s == expected),
                "{expected} missing from {services:?}"
            );
        }
    }
}

on_both_backends!(
    health_reports_serving,
    reflection_lists_the_services_in_both_versions
);

#[tokio::test]
async fn a_stopped_server_finishes_and_refuses_new_calls() {
    let mut app = spawn_app(Backend::Sqlite).await;
    app.stop().await;
    let refused = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect_err("a stopped server answered");
    assert_eq!(refused.code(), tonic::Code::Unavailable);
}

/// Runs the real binary: `migrate` prepares the database, `serve` answers health checks on the
/// port it reports, and SIGTERM stops it cleanly.
#[tokio::test]
async fn the_command_line_migrates_serves_and_stops_on_sigterm() {
    let data_dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_sinergi");

    // The client commands' variables may be set in the same shell; they are not settings.
    let migrate = Command::new(binary)
        .args(["migrate", "--data-dir"])
        .arg(data_dir.path())
        .env("SINERGI_LOG__FORMAT", "json")
        .env("SINERGI_AGENCY", "sinergi-admin")
        .env("SINERGI_KEY_FILE", "admin.pem")
        .env("SINERGI_SERVER", "http://127.0.0.1:50051")
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    assert!(data_dir.path().join("sinergi.db").exists());

    let mut server = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir.path())
        .env("SINERGI_LOG__FORMAT", "json")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server exited before it was ready")
            .unwrap();
        let entry: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if entry["fields"]["message"] == "sinergi ready" {
            break entry["fields"]["addr"].as_str().unwrap().to_owned();
        }
    };
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(health_status(channel, "").await, ServingStatus::Serving);

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Waiting off the runtime keeps the client's connection task running, so it can answer the
    // server's graceful HTTP/2 shutdown.
    let status = tokio::task::spawn_blocking(move || server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "serve exited with {status}");
}

/// `keygen` writes a private key and prints its public JWK; `admin bootstrap` creates the first
/// administrator with it once, and refuses a second time.
#[test]
fn keygen_and_bootstrap_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_sinergi");
    let key = dir.path().join("admin.pem");
    let keygen = Command::new(binary)
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{keygen:?}");
    let jwk: serde_json::Value = serde_json::from_slice(&keygen.stdout).unwrap();
    assert_eq!(jwk["kty"], "OKP");
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("PRIVATE KEY")
    );
    let again = Command::new(binary)
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success(), "keygen must not overwrite a key");

    let bootstrap = || {
        Command::new(binary)
            .args(["admin", "bootstrap", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--key")
            .arg(&key)
            .output()
            .unwrap()
    };
    let first = bootstrap();
    assert!(first.status.success(), "{first:?}");
    let created: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(created["kid"], jwk["kid"]);
    let second = bootstrap();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("administrator agency already exists")
    );
}

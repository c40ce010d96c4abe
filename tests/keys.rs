//! Keys from the tools agencies already have: keys made by the `openssl` command line are
//! registered and used with Sinergi's command line, and keys made by `sinergi keygen` are read
//! by `openssl pkey` and by Python's `cryptography`, and sign client assertions with PyJWT that
//! Sinergi accepts.

mod common;

use std::path::Path;

use common::{
    Backend, TestApp,
    python::{python, run, run_awaited},
    spawn_app,
};
use sinergi::{auth::keys::public_key_from_text, proto};

const PACKAGES: [&str; 2] = ["cryptography==50.0.2", "PyJWT==2.15.1"];

fn openssl(dir: &Path, args: &[&str]) -> String {
    run(std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args))
}

fn sinergi(app: &TestApp, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sinergi"));
    command
        .args(args)
        .env("SINERGI_SERVER", format!("http://{}", app.addr))
        .env_remove("SINERGI_AGENCY")
        .env_remove("SINERGI_KEY_FILE");
    command
}

/// An agency with no key yet, granted `employers.read`.
async fn keyless_agency(app: &TestApp, id: &str) {
    let mut admin = app.admin_client();
    admin
        .create_agency(proto::CreateAgencyRequest {
            agency: Some(proto::Agency {
                id: id.to_owned(),
                kind: proto::AgencyKind::BpjsKesehatan.into(),
                display_name: format!("Kantor {id}"),
                ..Default::default()
            }),
        })
        .await
        .expect("agency");
    admin
        .grant_scope(proto::GrantScopeRequest {
            agency_id: id.to_owned(),
            scope: "employers.read".into(),
            ..Default::default()
        })
        .await
        .expect("grant");
}

/// The token works: the agency reads the registry with it.
async fn reads_with(app: &TestApp, token: &str) {
    app.employers_as(token.trim())
        .list_employers(proto::ListEmployersRequest::default())
        .await
        .expect("a call with the token");
}

#[tokio::test]
async fn keys_made_by_openssl_register_and_sign_tokens() {
    let app = spawn_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("dir");
    let python = python("keys-venv", &PACKAGES);
    // What an agency's own tooling writes: Ed25519 and P-256 as PKCS#8, and P-256 as SEC1
    // after an EC PARAMETERS block, the default of `openssl ecparam -genkey`.
    let made: [(&str, &[&str]); 3] = [
        (
            "ed25519",
            &["genpkey", "-algorithm", "ed25519", "-out", "ed25519.pem"],
        ),
        (
            "p256-pkcs8",
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "p256-pkcs8.pem",
            ],
        ),
        (
            "p256-sec1",
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-out",
                "p256-sec1.pem",
            ],
        ),
    ];
    for (name, generate) in made {
        openssl(dir.path(), generate);
        let private = format!("{name}.pem");
        let text = std::fs::read_to_string(dir.path().join(&private)).expect("key file");
        if name == "p256-sec1" {
            assert!(text.contains("BEGIN EC PARAMETERS") && text.contains("BEGIN EC PRIVATE KEY"));
        }
        let agency = format!("kantor-{name}");
        keyless_agency(&app, &agency).await;

        // The public key as a PEM (SubjectPublicKeyInfo) for one, as a JWK from PyJWT for the
        // others: both forms an agency's tools produce.
        let public = if name == "p256-sec1" {
            let jwk = run(std::process::Command::new(&python).args([
                "-c",
                "import sys, jwt; from cryptography.hazmat.primitives import serialization as s; \
                 key = s.load_pem_private_key(open(sys.argv[1], 'rb').read(), None); \
                 print(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))",
            ]).arg(dir.path().join(&private)));
            let path = dir.path().join(format!("{name}.jwk"));
            std::fs::write(&path, jwk).expect("write JWK");
            path
        } else {
            let public = format!("{name}.pub.pem");
            openssl(
                dir.path(),
                &["pkey", "-in", &private, "-pubout", "-out", &public],
            );
            dir.path().join(public)
        };
        let registered = run_awaited(
            sinergi(
                &app,
                &[
                    "admin",
                    "register-key",
                    "--agency-id",
                    &agency,
                    "--token",
                    &app.admin.token,
                ],
            )
            .arg("--public-key")
            .arg(&public),
        )
        .await;
        let token = run_awaited(
            sinergi(&app, &["token", "--agency", &agency])
                .arg("--key")
                .arg(dir.path().join(&private)),
        )
        .await;
        reads_with(&app, &token).await;

        // The key id the server gave is the thumbprint of the key the agency holds.
        let kid = serde_json::from_str::<serde_json::Value>(&registered).expect("JSON")["kid"]
            .as_str()
            .expect("kid")
            .to_owned();
        assert_eq!(
            public_key_from_text(&text).expect("readable").thumbprint(),
            kid,
            "{name}"
        );
    }
}

#[tokio::test]
async fn keys_made_by_sinergi_are_read_by_openssl_and_python() {
    let app = spawn_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("dir");
    let python = python("keys-venv", &PACKAGES);
    for (algorithm, jwt_algorithm) in [("ed25519", "EdDSA"), ("p256", "ES256")] {
        let file = format!("{algorithm}.pem");
        let published = run_awaited(
            sinergi(&app, &["keygen", "--algorithm", algorithm, "--out"])
                .arg(dir.path().join(&file)),
        )
        .await;
        let jwk: serde_json::Value = serde_json::from_str(&published).expect("JWK");
        let kid = jwk["kid"].as_str().expect("kid").to_owned();

        // OpenSSL reads it, and finds the public key Sinergi published.
        openssl(dir.path(), &["pkey", "-in", &file, "-noout"]);
        let public = openssl(dir.path(), &["pkey", "-in", &file, "-pubout"]);
        assert_eq!(
            public_key_from_text(&public).expect("SPKI").thumbprint(),
            kid
        );

        // Python reads it and signs a client assertion with PyJWT, which Sinergi accepts.
        let agency = format!("kantor-python-{algorithm}");
        keyless_agency(&app, &agency).await;
        app.admin_client()
            .register_key(proto::RegisterKeyRequest {
                agency_id: agency.clone(),
                public_jwk: published.clone(),
            })
            .await
            .expect("register the published key");
        let assertion = run(std::process::Command::new(&python)
            .args([
                "-c",
                "import sys, time, uuid, jwt; \
                 from cryptography.hazmat.primitives import serialization as s; \
                 key = s.load_pem_private_key(open(sys.argv[1], 'rb').read(), None); \
                 now = int(time.time()); \
                 print(jwt.encode({'iss': sys.argv[2], 'sub': sys.argv[2], 'aud': 'sinergi', \
                 'iat': now, 'exp': now + 60, 'jti': str(uuid.uuid4())}, key, \
                 algorithm=sys.argv[3], headers={'kid': sys.argv[4]}))",
            ])
            .arg(dir.path().join(&file))
            .args([&agency, jwt_algorithm, &kid]));
        let issued = app
            .auth()
            .issue_token(proto::IssueTokenRequest {
                client_assertion: assertion.trim().to_owned(),
            })
            .await
            .expect("a token for the assertion PyJWT signed")
            .into_inner();
        reads_with(&app, &issued.access_token).await;
    }
}

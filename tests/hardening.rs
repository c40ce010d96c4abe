//! Limits and TLS: what a hostile or broken client cannot do to the server.

mod common;

use std::time::Duration;

use common::{Backend, TestApp, get_employer, pki::Pki, spawn_app_over, spawn_app_with};
use sinergi::proto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

/// The metrics endpoint's text.
async fn scrape(app: &TestApp) -> String {
    let addr = app.metrics_addr.expect("metrics are on in tests");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: sinergi\r\nconnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of the first sample line starting with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// Makes `count` GetEmployer calls at once through clones of `client`, and counts those served
/// and those refused RESOURCE_EXHAUSTED; any other answer fails the test.
async fn burst(
    client: &proto::employer_service_client::EmployerServiceClient<common::Authed>,
    id: &str,
    count: usize,
) -> (u32, u32) {
    let calls: Vec<_> = (0..count)
        .map(|_| {
            let mut client = client.clone();
            let id = id.to_owned();
            tokio::spawn(async move { client.get_employer(get_employer(&id)).await })
        })
        .collect();
    let (mut served, mut refused) = (0, 0);
    for call in calls {
        match call.await.expect("task") {
            Ok(_) => served += 1,
            Err(status) if status.code() == Code::ResourceExhausted => refused += 1,
            Err(status) => panic!("unexpected answer: {status:?}"),
        }
    }
    (served, refused)
}

#[tokio::test]
async fn a_message_over_the_limit_is_refused_and_the_server_goes_on() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let mut employer = common::employer("PT Besar Sekali");
    employer.address = "x".repeat(5 * 1024 * 1024);
    let refused = app
        .employers()
        .upsert_employer(proto::UpsertEmployerRequest {
            employer: Some(employer),
            ..Default::default()
        })
        .await
        .expect_err("a 5 MiB message is over the 4 MiB default");
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(refused.message().contains("too large"), "{refused:?}");

    let created = common::create(&app, common::employer("PT Kecil")).await;
    app.employers()
        .get_employer(get_employer(&created.id))
        .await
        .expect("the same connection still serves");
}

/// The server announces its stream limit in its HTTP/2 settings, and 10,000 calls opened at
/// once on one connection all end with an answer — served or refused RESOURCE_EXHAUSTED —
/// while another connection is served meanwhile.
#[tokio::test]
async fn ten_thousand_streams_on_one_connection_are_bounded() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.limits.max_concurrent_streams_per_connection = 100;
    })
    .await;
    let created = common::create(&app, common::employer("PT Ramai")).await;

    let tcp = tokio::net::TcpStream::connect(app.addr).await.expect("tcp");
    let (h2, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    let mut h2 = h2.ready().await.expect("ready");
    // Once a first exchange is answered, the server's SETTINGS have been applied.
    let probe = http::Request::post(format!("http://{}/grpc.health.v1.Health/Check", app.addr))
        .header("content-type", "application/grpc")
        .body(())
        .expect("request");
    let (answer, _) = h2.send_request(probe, true).expect("send");
    answer.await.expect("answered");
    assert_eq!(h2.current_max_send_streams(), 100);
    drop(h2);

    let one_connection = common::connect(app.addr, None).await.expect("connect");
    let client = proto::employer_service_client::EmployerServiceClient::new(common::authed(
        &one_connection,
        &app.registry.token,
    ));
    let flood = burst(&client, &created.id, 10_000);
    let mut other = app.employers();
    let (answered, (served, refused)) =
        tokio::join!(other.get_employer(get_employer(&created.id)), flood);
    answered.expect("another connection is served during the flood");
    assert_eq!(served + refused, 10_000);
    assert!(served > 0);
}

/// A client that opens a TLS connection and sends nothing is cut off after the handshake
/// timeout, and does not keep others from being served.
#[tokio::test]
async fn a_silent_tls_client_is_disconnected() {
    let pki = Pki::new("Sinergi test CA");
    let server = pki.server();
    let (cert, key) = (
        pki.write("server.pem", &server.cert_pem),
        pki.write("server.key", &server.key_pem),
    );
    let app = spawn_app_over(
        Backend::Sqlite,
        |config| {
            config.tls.cert_file = Some(cert);
            config.tls.key_file = Some(key);
            config.tls.handshake_timeout_ms = 300;
            config.health.probe_listen = Some("127.0.0.1:0".parse().expect("address"));
        },
        Some(pki.client_tls(None)),
    )
    .await;

    let mut silent = tokio::net::TcpStream::connect(app.addr).await.expect("tcp");
    common::create(&app, common::employer("PT Tetap Dilayani")).await;
    let mut buffer = [0_u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buffer))
        .await
        .expect("the server closes the connection well before 10 s");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, not answered: {read:?}"
    );

    let plain = match common::connect(app.addr, None).await {
        Err(_) => false,
        Ok(channel) => proto::auth_service_client::AuthServiceClient::new(channel)
            .get_jwks(proto::GetJwksRequest {})
            .await
            .is_ok(),
    };
    assert!(!plain, "plaintext is not spoken on a TLS port");

    // Probes, which cannot speak TLS, ask the plaintext health port; it answers health only.
    let probe = common::connect(app.probe_addr.expect("probe port"), None)
        .await
        .expect("plaintext probe port");
    let mut health = tonic_health::pb::health_client::HealthClient::new(probe.clone());
    for service in [
        "",
        sinergi::server::app::LIVENESS,
        "sinergi.v1.EmployerService",
    ] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status();
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving
        );
    }
    let data = proto::auth_service_client::AuthServiceClient::new(probe)
        .get_jwks(proto::GetJwksRequest {})
        .await
        .expect_err("no data on the probe port");
    assert_eq!(data.code(), Code::Unimplemented);
}

/// With mutual TLS, a token obtained over a connection with a client certificate works only
/// with that certificate: a stolen token is useless elsewhere.
#[tokio::test]
async fn tokens_are_bound_to_the_client_certificate() {
    let pki = Pki::new("Sinergi agencies CA");
    let server = pki.server();
    let (cert, key, ca) = (
        pki.write("server.pem", &server.cert_pem),
        pki.write("server.key", &server.key_pem),
        pki.write("ca.pem", &pki.ca_pem()),
    );
    let operator = pki.client("operator.sinergi.test");
    let app = spawn_app_over(
        Backend::Sqlite,
        |config| {
            config.tls.cert_file = Some(cert);
            config.tls.key_file = Some(key);
            config.tls.client_ca_file = Some(ca);
        },
        Some(pki.client_tls(Some(&operator))),
    )
    .await;
    let created = common::create(&app, common::employer("PT Terikat")).await;

    let agency_cert = pki.client("disnaker.jateng.test");
    let agency_channel = common::connect(app.addr, Some(pki.client_tls(Some(&agency_cert))))
        .await
        .expect("mutual TLS connection");
    let issued = sinergi::client::issue_token(
        agency_channel.clone(),
        &app.registry.id,
        &app.registry.key,
        "sinergi",
        None,
        None,
    )
    .await
    .expect("token over mutual TLS");
    let expected_thumbprint = {
        use base64::Engine;
        use sha2::Digest;
        let der = rustls_pemfile_der(&agency_cert.cert_pem);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
    };
    assert_eq!(issued.certificate_thumbprint, expected_thumbprint);

    let with = |channel: tonic::transport::Channel| {
        proto::employer_service_client::EmployerServiceClient::new(common::authed(
            &channel,
            &issued.access_token,
        ))
    };
    with(agency_channel)
        .get_employer(get_employer(&created.id))
        .await
        .expect("the bound token works with its certificate");

    let thief = pki.client("elsewhere.test");
    let thief_channel = common::connect(app.addr, Some(pki.client_tls(Some(&thief))))
        .await
        .expect("connect");
    let stolen = with(thief_channel)
        .get_employer(get_employer(&created.id))
        .await
        .expect_err("another certificate");
    assert_eq!(stolen.code(), Code::Unauthenticated);

    let anonymous = common::connect(app.addr, Some(pki.client_tls(None)))
        .await
        .expect("client certificates are optional by default");
    let stolen = with(anonymous.clone())
        .get_employer(get_employer(&created.id))
        .await
        .expect_err("no certificate");
    assert_eq!(stolen.code(), Code::Unauthenticated);
    // Without a certificate, tokens are unbound and work as before.
    let unbound = sinergi::client::issue_token(
        anonymous,
        &app.registry.id,
        &app.registry.key,
        "sinergi",
        None,
        None,
    )
    .await
    .expect("token without a certificate");
    assert!(unbound.certificate_thumbprint.is_empty());

    let foreign = Pki::new("Some other CA");
    let impostor = foreign.client("impostor.test");
    let mut impostor_tls = pki.client_tls(None);
    impostor_tls = impostor_tls.identity(tonic::transport::Identity::from_pem(
        &impostor.cert_pem,
        &impostor.key_pem,
    ));
    let admitted = match common::connect(app.addr, Some(impostor_tls)).await {
        Err(_) => false,
        Ok(channel) => proto::auth_service_client::AuthServiceClient::new(channel)
            .get_jwks(proto::GetJwksRequest {})
            .await
            .is_ok(),
    };
    assert!(!admitted, "a certificate from an unknown CA is refused");

    // The HTTP door speaks TLS with the same certificate and binds tokens the same way.
    let http = app.http_addr.expect("the HTTP door is on");
    let path = format!("/v1/employers/{}", created.id);
    let ca = pki.ca_pem();
    let token = &issued.access_token;
    assert_eq!(
        https_get(http, &ca, Some(&agency_cert), &path, token).await,
        Some(http::StatusCode::OK),
        "the bound token works with its certificate over HTTPS"
    );
    assert_eq!(
        https_get(http, &ca, Some(&thief), &path, token).await,
        Some(http::StatusCode::UNAUTHORIZED),
        "and not with another"
    );
    assert_eq!(
        https_get(http, &ca, None, &path, token).await,
        Some(http::StatusCode::UNAUTHORIZED),
        "nor without one"
    );
    let mut plain = tokio::net::TcpStream::connect(http).await.expect("tcp");
    plain
        .write_all(b"GET /openapi.json HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plaintext is not spoken on the HTTP door with TLS on"
    );
}

/// A GET over HTTPS to `addr`, trusting `ca_pem`, presenting `client`'s certificate if any:
/// the status answered, `None` when no TLS connection could be made.
async fn https_get(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    client: Option<&common::pki::Credentials>,
    path: &str,
    token: &str,
) -> Option<http::StatusCode> {
    use tokio_rustls::rustls::{self, pki_types::pem::PemObject};

    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(certificate.expect("CA PEM")).expect("CA");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match client {
        Some(client) => builder
            .with_client_auth_cert(
                rustls::pki_types::CertificateDer::pem_slice_iter(client.cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .expect("client chain"),
                rustls::pki_types::PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes())
                    .expect("client key"),
            )
            .expect("client auth"),
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect("localhost".try_into().expect("name"), tcp)
        .await
        .ok()?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .ok()?;
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header("host", "localhost")
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    Some(sender.send_request(request).await.ok()?.status())
}

/// The DER inside a PEM certificate.
fn rustls_pemfile_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body")
}

/// One agency flooding the server is held to its rate; another agency calling meanwhile is
/// served every time.
#[tokio::test]
async fn a_flood_from_one_agency_does_not_starve_another() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.limits.agency_calls_per_second = 20;
        config.limits.agency_burst = 20;
    })
    .await;
    let created = common::create(&app, common::employer("PT Banjir")).await;
    let flooder = app
        .agency(proto::AgencyKind::Disnaker, &[("employers.read", &[])])
        .await;
    let bystander = app
        .agency(proto::AgencyKind::BpjsKesehatan, &[("employers.read", &[])])
        .await;

    let started = std::time::Instant::now();
    let flooder_client = app.employers_as(&flooder.token);
    let flood = burst(&flooder_client, &created.id, 400);
    let bystander_calls = async {
        let mut bystander_client = app.employers_as(&bystander.token);
        for _ in 0..10 {
            bystander_client
                .get_employer(get_employer(&created.id))
                .await
                .expect("the other agency is served during the flood");
        }
    };
    let ((served, limited), ()) = tokio::join!(flood, bystander_calls);
    let allowed = 20.0 + 20.0 * started.elapsed().as_secs_f64() + 1.0;
    assert!(
        f64::from(served) <= allowed,
        "{served} served, at most {allowed} allowed"
    );
    assert!(limited >= 400 - allowed as u32);

    let metrics = scrape(&app).await;
    let series = format!(
        "sinergi_grpc_calls_rate_limited_total{{agency=\"{}\"}}",
        flooder.id
    );
    assert_eq!(sample(&metrics, &series), Some(f64::from(limited)));
}

/// Token requests, the one call without an identified caller, are limited per client address;
/// agencies already holding tokens are not affected.
#[tokio::test]
async fn a_flood_of_token_requests_is_held_to_its_rate() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.limits.token_requests_per_second_per_address = 2;
        config.limits.token_request_burst_per_address = 5;
    })
    .await;
    let created = common::create(&app, common::employer("PT Token")).await;
    let mut limited = 0;
    for _ in 0..30 {
        match app.token(&app.registry, None).await {
            Ok(_) => {}
            Err(sinergi::client::ClientError::Call(status))
                if status.code() == Code::ResourceExhausted =>
            {
                limited += 1;
            }
            Err(other) => panic!("unexpected answer: {other:?}"),
        }
    }
    assert!(
        limited >= 20,
        "only {limited} of 30 token requests were limited"
    );
    app.employers()
        .get_employer(get_employer(&created.id))
        .await
        .expect("a caller with a token is served meanwhile");
    let metrics = scrape(&app).await;
    assert_eq!(
        sample(&metrics, "sinergi_token_requests_rate_limited_total"),
        Some(f64::from(limited))
    );
}

/// At the in-flight limit, further calls are shed at once with RESOURCE_EXHAUSTED.
#[tokio::test]
async fn calls_over_the_in_flight_limit_are_shed() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.limits.max_in_flight_calls = 2;
    })
    .await;
    let created = common::create(&app, common::employer("PT Penuh")).await;
    let (_, shed) = burst(&app.employers(), &created.id, 200).await;
    assert!(shed > 0, "200 calls at once over a limit of 2");
    let metrics = scrape(&app).await;
    assert_eq!(
        sample(&metrics, "sinergi_grpc_calls_shed_total"),
        Some(f64::from(shed))
    );
}

/// The metrics endpoint reports calls by method and code, token cache use, the audit log's
/// batches, pools and feed subscribers; a path no method answers is not a label of its own.
#[tokio::test]
async fn metrics_describe_the_traffic() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let created = common::create(&app, common::employer("PT Terukur")).await;
    let mut client = app.employers();
    for _ in 0..3 {
        client
            .get_employer(get_employer(&created.id))
            .await
            .expect("read");
    }
    let missing = client
        .get_employer(get_employer(&uuid::Uuid::new_v4().to_string()))
        .await
        .expect_err("unknown employer");
    assert_eq!(missing.code(), Code::NotFound);
    let watcher = app
        .agency(proto::AgencyKind::Disnaker, &[("feed.read", &[])])
        .await;
    let _stream = proto::feed_service_client::FeedServiceClient::new(app.authed(&watcher.token))
        .watch(proto::WatchRequest::default())
        .await
        .expect("watch");

    let text = scrape(&app).await;
    let method = "/sinergi.v1.EmployerService/GetEmployer";
    assert_eq!(
        sample(
            &text,
            &format!("sinergi_grpc_calls_total{{method=\"{method}\",code=\"0\"}}")
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("sinergi_grpc_calls_total{{method=\"{method}\",code=\"5\"}}")
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            &format!("sinergi_grpc_call_duration_seconds_count{{method=\"{method}\"}}")
        )
        .is_some_and(|count| count >= 4.0)
    );
    assert!(
        sample(&text, "sinergi_token_cache_lookups_total{result=\"hit\"}")
            .is_some_and(|hits| hits >= 3.0)
    );
    assert!(
        sample(&text, "sinergi_audit_batch_entries_count").is_some_and(|batches| batches >= 1.0)
    );
    assert_eq!(sample(&text, "sinergi_database_up"), Some(1.0));
    assert!(
        sample(
            &text,
            "sinergi_database_pool_connections{pool=\"writer\",state=\"max\"}"
        )
        .is_some()
    );
    assert!(
        sample(&text, "sinergi_feed_subscribers").is_some_and(|subscribers| subscribers >= 1.0)
    );

    // A made-up path is counted as "unknown", not as a label of its own.
    let channel = app.channel.clone();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let made_up: Result<tonic::Response<()>, _> = grpc
        .unary(
            tonic::Request::new(()),
            "/sinergi.v1.Nothing/Here".parse().expect("path"),
            tonic_prost::ProstCodec::<(), ()>::default(),
        )
        .await;
    assert!(made_up.is_err());
    let text = scrape(&app).await;
    assert!(!text.contains("Nothing/Here"));
    assert!(text.contains("method=\"unknown\""));
}

/// A call that outlives the request deadline is answered DEADLINE_EXCEEDED, its transaction is
/// rolled back, and the audit log records it with that outcome.
#[tokio::test]
async fn a_call_over_its_deadline_is_cut_short_and_recorded() {
    use sqlx::Connection;

    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.limits.request_timeout_ms = 300;
        config.database.acquire_timeout_ms = 20_000;
    })
    .await;
    let auditor = app
        .agency(proto::AgencyKind::Admin, &[("audit.read", &[])])
        .await;

    // Another process holds SQLite's write lock, so the write cannot get on.
    let path = app.config().data_dir.join("sinergi.db");
    let mut blocker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the database");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .expect("take the write lock");
    let draft = common::employer("PT Terlambat");
    let npwp = draft.npwp.clone();
    let mut client = app.employers();
    let call = tokio::spawn(async move {
        client
            .upsert_employer(proto::UpsertEmployerRequest {
                employer: Some(draft),
                request_id: "late-call".into(),
                ..Default::default()
            })
            .await
    });
    // The deadline passes while the lock is held; the call's audit entry needs the lock too, so
    // the answer comes once it is released.
    tokio::time::sleep(Duration::from_millis(900)).await;
    sqlx::query("ROLLBACK")
        .execute(&mut blocker)
        .await
        .expect("release the write lock");
    let late = call.await.expect("task").expect_err("over its deadline");
    assert_eq!(late.code(), Code::DeadlineExceeded, "{late:?}");

    let lookup = app
        .employers()
        .get_employer(proto::GetEmployerRequest {
            key: Some(proto::get_employer_request::Key::Npwp(npwp)),
        })
        .await
        .expect_err("the cut-short write changed nothing");
    assert_eq!(lookup.code(), Code::NotFound);

    let mut audit =
        proto::audit_service_client::AuditServiceClient::new(app.authed(&auditor.token));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = audit
            .list_events(proto::ListEventsRequest {
                method: "/sinergi.v1.EmployerService/UpsertEmployer".into(),
                ..Default::default()
            })
            .await
            .expect("list events")
            .into_inner()
            .events;
        let recorded = events
            .iter()
            .filter_map(|event| event.entry.as_ref())
            .find(|entry| entry.request_id == "late-call");
        if let Some(entry) = recorded {
            assert_eq!(entry.status_code, Code::DeadlineExceeded as i32);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the late call is in the log"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

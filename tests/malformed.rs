//! Requests whose bytes are not a valid gRPC message, sent as raw HTTP/2 frames to every RPC of
//! the contract: each is the caller's mistake, answered INVALID_ARGUMENT with a short generic
//! message that shows nothing of the decoder, and recorded in the audit log as `invalid`.

mod common;

use common::TestApp;
use sinergi::{grpc::codec::UNDECODABLE_REQUEST, proto, server::framing::MALFORMED_FRAMING};
use tonic::Code;

/// Bodies that break a request, with whether they are a fault of streaming requests too (an
/// empty body is a complete, empty stream).
fn garbage() -> Vec<(&'static str, Vec<u8>, bool)> {
    // Field 1, length-delimited, announcing 5 bytes where 1 follows: no message decodes it.
    let undecodable = [0x0a, 0x05, 0x01];
    let mut framed = vec![0, 0, 0, 0, undecodable.len() as u8];
    framed.extend_from_slice(&undecodable);
    vec![
        ("undecodable message", framed, true),
        ("message cut short", vec![0, 0, 0, 0, 100, 1, 2, 3], true),
        ("unknown compression flag", vec![7, 0, 0, 0, 0], true),
        ("half a prefix", vec![0, 0], true),
        ("no message", Vec::new(), false),
    ]
}

/// Sends `body` to `path` over a fresh HTTP/2 connection and returns the gRPC status code and
/// message, wherever the server put them (headers of a trailers-only answer, or trailers).
async fn raw_call(app: &TestApp, path: &str, token: &str, body: &[u8]) -> (i32, String) {
    let tcp = tokio::net::TcpStream::connect(app.addr).await.expect("tcp");
    let (h2, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    let mut h2 = h2.ready().await.expect("ready");
    let request = http::Request::post(format!("http://{}{path}", app.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .expect("request");
    let (answer, mut send) = h2.send_request(request, body.is_empty()).expect("send");
    if !body.is_empty() {
        send.send_data(body.to_vec().into(), true).expect("data");
    }
    let response = answer.await.expect("answered");
    let mut headers = response.headers().clone();
    let mut body = response.into_body();
    while let Some(data) = body.data().await {
        data.expect("data");
    }
    if let Some(trailers) = body.trailers().await.expect("trailers") {
        headers.extend(trailers);
    }
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let code = text("grpc-status").parse().expect("a grpc-status");
    let message = percent_decoded(&text("grpc-message"));
    (code, message)
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(byte) = text
                .get(index + 1..index + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            decoded.push(byte);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

async fn garbage_is_invalid_argument_on_every_rpc(app: TestApp) {
    // Bulk submission reads its stream only once the caller may write reports.
    let caller = app
        .agency(
            proto::AgencyKind::Disnaker,
            &[("reports.write", &[]), ("employers.read", &[])],
        )
        .await;
    let methods: Vec<_> = sinergi::grpc::served_methods()
        .into_iter()
        .filter(|method| method.path.starts_with("/sinergi.v1."))
        .collect();
    assert!(methods.len() > 40, "every RPC of the contract");
    let mut sent = 0;
    for method in &methods {
        for (what, body, breaks_streams) in garbage() {
            if method.client_streaming && !breaks_streams {
                continue;
            }
            let (code, message) = raw_call(&app, &method.path, &caller.token, &body).await;
            assert_eq!(
                code,
                Code::InvalidArgument as i32,
                "{} with {what}: {message}",
                method.path
            );
            assert!(
                message == UNDECODABLE_REQUEST || message == MALFORMED_FRAMING,
                "{} with {what}: {message:?}",
                method.path
            );
            sent += 1;
        }
    }

    // Every one of them is in the log as the caller's mistake, none as a server error.
    let auditor = app
        .agency(proto::AgencyKind::Admin, &[("audit.read", &[])])
        .await;
    let mut audit =
        proto::audit_service_client::AuditServiceClient::new(app.authed(&auditor.token));
    let mut invalid = 0;
    let mut errors = 0;
    let mut page_token = String::new();
    loop {
        let page = audit
            .list_events(proto::ListEventsRequest {
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .expect("the log")
            .into_inner();
        for event in &page.events {
            let entry = event.entry.as_ref().expect("entry");
            match entry.decision() {
                proto::Decision::Invalid => invalid += 1,
                proto::Decision::Error => errors += 1,
                _ => {}
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(invalid, sent, "each malformed call is recorded as invalid");
    assert_eq!(errors, 0, "none is recorded as a server error");
}

on_both_backends!(garbage_is_invalid_argument_on_every_rpc);

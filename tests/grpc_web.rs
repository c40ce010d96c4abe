//! gRPC-Web on the gRPC port, as a browser calls it over HTTP/1.1: the same call, with the same
//! authentication and the same audit entry as over gRPC; cross-origin pages only from the
//! origins configured; and nothing of it when it is turned off.

mod common;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use prost::Message;
use sinergi::config::{Config, WebOrigin};
use sinergi::proto;

use common::{Backend, TestApp, spawn_app, spawn_app_with};

/// What a gRPC-Web call answered: the HTTP status and headers, the messages, and the trailers
/// (which gRPC-Web carries in the body, or in the headers of a trailers-only answer).
struct WebAnswer {
    status: http::StatusCode,
    headers: http::HeaderMap,
    messages: Vec<Bytes>,
    trailers: String,
}

impl WebAnswer {
    fn grpc_status(&self) -> Option<String> {
        let in_headers = self
            .headers
            .get("grpc-status")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        in_headers.or_else(|| {
            self.trailers.lines().find_map(|line| {
                line.strip_prefix("grpc-status:")
                    .map(|code| code.trim().to_owned())
            })
        })
    }
}

/// Sends one HTTP/1.1 request to the server at `addr`.
async fn http1(
    addr: std::net::SocketAddr,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<Bytes>, hyper::Error> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(http::Response::from_parts(parts, body))
}

/// Calls `method` with `message` as a gRPC-Web client does, with `token` if given.
async fn web_call(
    addr: std::net::SocketAddr,
    method: &str,
    message: impl Message,
    token: Option<&str>,
) -> WebAnswer {
    let payload = message.encode_to_vec();
    let mut framed = Vec::with_capacity(payload.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    framed.extend_from_slice(&payload);
    let mut request = http::Request::post(format!("http://{addr}{method}"))
        .header("host", addr.to_string())
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = http1(
        addr,
        request
            .body(Full::new(Bytes::from(framed)))
            .expect("a request"),
    )
    .await
    .expect("an HTTP/1.1 answer");
    let (parts, mut body) = response.into_parts();
    let mut messages = Vec::new();
    let mut trailers = String::new();
    while body.remaining() >= 5 {
        let flag = body.get_u8();
        let length = body.get_u32() as usize;
        let frame = body.split_to(length);
        if flag & 0x80 == 0 {
            messages.push(frame);
        } else {
            trailers.push_str(&String::from_utf8_lossy(&frame));
        }
    }
    WebAnswer {
        status: parts.status,
        headers: parts.headers,
        messages,
        trailers,
    }
}

async fn a_browser_call_is_the_same_call(app: TestApp) {
    let employer = common::create(&app, common::employer("PT Contoh Web")).await;
    let method = "/sinergi.v1.EmployerService/GetEmployer";
    let request = common::get_employer(&employer.id);

    let answer = web_call(app.addr, method, request.clone(), Some(&app.registry.token)).await;
    assert_eq!(answer.status, http::StatusCode::OK);
    assert!(
        answer.headers["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("application/grpc-web"),
    );
    assert_eq!(answer.grpc_status().as_deref(), Some("0"));
    let read = proto::GetEmployerResponse::decode(answer.messages[0].clone())
        .expect("a GetEmployerResponse");
    assert_eq!(read.employer.map(|e| e.name), Some("PT Contoh Web".into()));

    // Without a token: UNAUTHENTICATED, as over gRPC.
    let refused = web_call(app.addr, method, request, None).await;
    assert_eq!(refused.grpc_status().as_deref(), Some("16"));
    assert!(refused.messages.is_empty());

    // The call is in the audit log as the gRPC call it is.
    let events =
        proto::audit_service_client::AuditServiceClient::new(app.authed(&app.registry.token))
            .list_events(proto::ListEventsRequest {
                resource_id: employer.id.clone(),
                ..Default::default()
            })
            .await
            .expect("the registry's own calls")
            .into_inner()
            .events;
    let read_entries: Vec<_> = events
        .iter()
        .filter_map(|event| event.entry.as_ref())
        .filter(|entry| entry.agency_id == app.registry.id && entry.method.ends_with("GetEmployer"))
        .collect();
    assert_eq!(read_entries.len(), 1, "{events:?}");
    assert_eq!(read_entries[0].status_code, 0);
}

on_both_backends!(a_browser_call_is_the_same_call);

fn preflight(addr: std::net::SocketAddr, origin: &str) -> http::Request<Full<Bytes>> {
    http::Request::options(format!(
        "http://{addr}/sinergi.v1.EmployerService/GetEmployer"
    ))
    .header("host", addr.to_string())
    .header("origin", origin)
    .header("access-control-request-method", "POST")
    .header(
        "access-control-request-headers",
        "authorization,content-type,x-grpc-web",
    )
    .body(Full::new(Bytes::new()))
    .expect("a preflight request")
}

fn allowed_origin(response: &http::Response<Bytes>) -> Option<&str> {
    response
        .headers()
        .get("access-control-allow-origin")
        .and_then(|value| value.to_str().ok())
}

#[tokio::test]
async fn only_configured_origins_may_call_across_origins() {
    let console = "https://console.example.go.id";
    let closed = spawn_app(Backend::Sqlite).await;
    let answer = http1(closed.addr, preflight(closed.addr, console))
        .await
        .expect("an answer");
    assert_eq!(allowed_origin(&answer), None);

    let open = spawn_app_with(Backend::Sqlite, |config: &mut Config| {
        config.grpc_web.cors_allowed_origins =
            vec![WebOrigin::try_from(console.to_owned()).expect("an origin")];
    })
    .await;
    let answer = http1(open.addr, preflight(open.addr, console))
        .await
        .expect("an answer");
    assert_eq!(allowed_origin(&answer), Some(console));
    let methods = answer.headers()["access-control-allow-methods"]
        .to_str()
        .expect("ASCII");
    assert!(methods.contains("POST"), "{methods}");
    let elsewhere = http1(open.addr, preflight(open.addr, "https://elsewhere.example"))
        .await
        .expect("an answer");
    assert_eq!(allowed_origin(&elsewhere), None);
}

#[tokio::test]
async fn turned_off_it_answers_no_browser() {
    let app = spawn_app_with(Backend::Sqlite, |config: &mut Config| {
        config.grpc_web.enabled = false;
    })
    .await;
    let request = http::Request::post(format!("http://{}/grpc.health.v1.Health/Check", app.addr))
        .header("host", app.addr.to_string())
        .header("content-type", "application/grpc-web+proto")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .expect("a request");
    // An HTTP/2-only server drops an HTTP/1.1 connection.
    assert!(http1(app.addr, request).await.is_err());
}

#[test]
fn an_origin_is_a_scheme_and_a_host() {
    for good in [
        "https://console.example.go.id",
        "http://localhost:8080",
        "http://[::1]:8080",
    ] {
        assert!(WebOrigin::try_from(good.to_owned()).is_ok(), "{good}");
    }
    for bad in [
        "console.example.go.id",
        "https://console.example.go.id/",
        "https://",
        "ftp://files.example",
        "*",
    ] {
        assert!(WebOrigin::try_from(bad.to_owned()).is_err(), "{bad}");
    }
}

//! The HTTP/JSON door driven as REST clients drive it: reads over HTTP/2 connections (as many
//! as the gRPC workloads use, so the transcoder is what differs), and a bulk submission as one
//! streamed NDJSON upload over HTTP/1.1, the way `curl -T` or a PHP batch job sends it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio_stream::StreamExt;

/// A failed HTTP call: the connection's error, or an answer other than 200.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Connection(#[from] hyper::Error),
    #[error("answered {0}")]
    Status(http::StatusCode),
    #[error(transparent)]
    Request(#[from] http::Error),
}

/// `count` HTTP/2 connections (prior knowledge, as to the gRPC port) to the HTTP door.
pub async fn connections(
    addr: SocketAddr,
    count: usize,
) -> anyhow::Result<Vec<SendRequest<Empty<Bytes>>>> {
    let mut senders = Vec::with_capacity(count);
    for _ in 0..count {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await?;
        tokio::spawn(connection);
        senders.push(sender);
    }
    Ok(senders)
}

/// A GET of `uri` with `authorization`, its whole answer read.
pub async fn get(
    mut sender: SendRequest<Empty<Bytes>>,
    uri: String,
    authorization: http::HeaderValue,
) -> Result<(), CallError> {
    let request = http::Request::get(uri)
        .header(http::header::AUTHORIZATION, authorization)
        .body(Empty::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    if status != http::StatusCode::OK {
        return Err(CallError::Status(status));
    }
    Ok(())
}

/// Lines sent per chunk of the upload: about 200 KiB of reports.
const LINES_PER_CHUNK: u64 = 1_000;

/// Uploads `count` lines made by `line` as one NDJSON body to `POST /v1/reports:bulkSubmit`,
/// generated as it is sent (never held whole), and returns how long the call took and the
/// accepted count the server answered.
pub async fn upload_ndjson(
    addr: SocketAddr,
    token: &str,
    count: u64,
    line: fn(u64) -> String,
) -> anyhow::Result<(Duration, u64)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let chunks =
        tokio_stream::iter((0..count).step_by(LINES_PER_CHUNK as usize)).map(move |start| {
            let mut chunk = String::with_capacity(LINES_PER_CHUNK as usize * 256);
            for i in start..count.min(start + LINES_PER_CHUNK) {
                chunk.push_str(&line(i));
                chunk.push('\n');
            }
            Ok::<_, Infallible>(Frame::data(Bytes::from(chunk)))
        });
    let request = http::Request::post(format!(
        "http://{addr}/v1/reports:bulkSubmit?request_id=bench-{count}"
    ))
    .header(http::header::HOST, addr.to_string())
    .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
    .header(http::header::CONTENT_TYPE, "application/x-ndjson")
    .body(StreamBody::new(chunks))?;
    let started = Instant::now();
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let elapsed = started.elapsed();
    anyhow::ensure!(
        status == http::StatusCode::OK,
        "the upload was answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    let answer: serde_json::Value = serde_json::from_slice(&body)?;
    // A uint64, which the JSON mapping writes as a string.
    let accepted = answer["acceptedCount"]
        .as_str()
        .and_then(|count| count.parse().ok())
        .unwrap_or_default();
    Ok((elapsed, accepted))
}

/// The body of a plain GET of `path` over a connection of its own (the metrics endpoint).
pub async fn get_text(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    anyhow::ensure!(
        response.status() == http::StatusCode::OK,
        "{path} answered {}",
        response.status()
    );
    let body = response.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

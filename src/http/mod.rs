//! The HTTP/JSON door: every RPC at the verb and path of its `google.api.http` binding, for
//! systems that speak REST rather than gRPC. One transcoder for every method, driven by the
//! descriptor set: a request becomes the protobuf request of its RPC and is sent, as a gRPC
//! call, into the very service stack the gRPC port serves — so authentication, purpose,
//! request ids, limits, deadlines and the audit entry are the same code for both doors. A
//! request the transcoder cannot turn into its RPC's request is sent in too, as a call whose
//! body fails with the refusal, so that it is authenticated, limited and audited as `invalid`
//! like any other bad call.

mod answer;
pub mod openapi;
pub mod request;
pub mod routes;

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::transport::server::TcpConnectInfo;
use tower::{Service, ServiceExt};

use crate::auth::ClientCertificate;
use crate::server::tls::HttpTls;

use answer::{Answer, Renderer, cursor_of, etag_of, json_response};
use request::refusal;
use routes::{Binding, Bindings, BodyRule, Matched};

/// The headers of an HTTP request that a gRPC call carries as metadata, unchanged.
const FORWARDED_HEADERS: [&str; 7] = [
    "authorization",
    "x-purpose",
    "x-request-id",
    "grpc-timeout",
    "traceparent",
    "tracestate",
    "user-agent",
];

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Streamed answers (the feed) are held back by a client that stops reading: this many
/// rendered messages wait for it, then the stream waits too.
const STREAM_QUEUE: usize = 16;
/// How long a server-streaming answer may stay silent before its HTTP headers go out anyway: a
/// refusal comes well within it, and an HTTP client gives up on a call whose headers are late.
const FIRST_MESSAGE_WAIT: Duration = Duration::from_secs(1);

type HttpBody = UnsyncBoxBody<Bytes, Infallible>;
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
type GrpcRequest = http::Request<tonic::body::Body>;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the contract's descriptors do not load")]
    Descriptors(#[from] prost_reflect::DescriptorError),
    #[error("the contract's HTTP bindings: {0}")]
    Bindings(#[from] routes::BindingError),
    #[error("the descriptors lack google.rpc.Status")]
    StatusType,
}

/// What a request the transcoder refused is answered with: the status (which the stack
/// returns, and the audit log records), and the HTTP status when one says more than the
/// code's mapping (413, 415, 408).
struct Refused {
    status: Status,
    http: Option<StatusCode>,
}

impl From<Status> for Refused {
    fn from(status: Status) -> Self {
        Self { status, http: None }
    }
}

fn refused(http: StatusCode, field: &str, description: impl Into<String>) -> Refused {
    Refused {
        status: refusal(field, description),
        http: Some(http),
    }
}

struct Shared {
    bindings: Bindings,
    renderer: Renderer,
    openapi: Bytes,
    max_body: usize,
    body_timeout: Duration,
}

/// Who a request came from: the connection's addresses and, over mutual TLS, the client's
/// verified certificate, which the layers read as they read a gRPC call's.
#[derive(Clone)]
struct Peer {
    tcp: TcpConnectInfo,
    certificate: Option<ClientCertificate>,
}

/// The transcoder in front of `calls`, the layered gRPC services.
pub struct Gateway<S> {
    calls: S,
    shared: Arc<Shared>,
}

impl<S: Clone> Clone for Gateway<S> {
    fn clone(&self) -> Self {
        Self {
            calls: self.calls.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The contract's descriptors and the error-detail types, which error answers render.
pub fn descriptor_pool() -> Result<DescriptorPool, GatewayError> {
    let mut pool = DescriptorPool::decode(crate::grpc::FILE_DESCRIPTOR_SET)?;
    pool.decode_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)?;
    Ok(pool)
}

impl<S, B> Gateway<S>
where
    S: Service<GrpcRequest, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError> + Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    /// `max_body`: the largest request body (the gRPC message limit); `body_timeout`: how long
    /// a body may take to arrive (for an upload: the longest pause between its chunks).
    pub fn new(calls: S, max_body: usize, body_timeout: Duration) -> Result<Self, GatewayError> {
        let pool = descriptor_pool()?;
        let bindings = Bindings::from_pool(&pool)?;
        let openapi = openapi::document(&pool, &bindings).into();
        let renderer = Renderer::new(&pool).ok_or(GatewayError::StatusType)?;
        Ok(Self {
            calls,
            shared: Arc::new(Shared {
                bindings,
                renderer,
                openapi,
                max_body,
                body_timeout,
            }),
        })
    }

    /// Serves HTTP/1.1 and HTTP/2 until `shutdown`, then lets requests in flight finish
    /// within `grace`. With `tls`, over TLS (HTTP/2 by ALPN), else in cleartext (HTTP/2 by
    /// prior knowledge).
    pub async fn serve(
        self,
        listener: TcpListener,
        tls: Option<HttpTls>,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) {
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "HTTP: cannot accept a connection");
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let tcp = TcpConnectInfo {
                local_addr: stream.local_addr().ok(),
                remote_addr: Some(remote),
            };
            let gateway = self.clone();
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let tls = tls.clone();
            // The handshake runs in the connection's own task, so a client that stalls in it
            // holds up nobody else's.
            tokio::spawn(async move {
                let served = match tls {
                    None => {
                        let peer = Peer {
                            tcp,
                            certificate: None,
                        };
                        gateway.connection(&builder, stream, peer, watcher).await
                    }
                    Some(tls) => {
                        let (stream, certificate) = match tls.accept(stream).await {
                            Ok(accepted) => accepted,
                            Err(error) => {
                                tracing::debug!(%error, %remote, "HTTP: TLS handshake failed");
                                return;
                            }
                        };
                        let peer = Peer { tcp, certificate };
                        gateway.connection(&builder, stream, peer, watcher).await
                    }
                };
                if let Err(error) = served {
                    tracing::debug!(%error, "HTTP connection ended");
                }
            });
        }
        drop(listener);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("grace period over: abandoning HTTP requests still in flight");
        }
    }

    /// Serves one connection, in cleartext or after its TLS handshake, until it ends or the
    /// grace period is over.
    async fn connection<IO>(
        self,
        builder: &hyper_util::server::conn::auto::Builder<TokioExecutor>,
        io: IO,
        peer: Peer,
        watcher: hyper_util::server::graceful::Watcher,
    ) -> Result<(), BoxError>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let served = builder
            .serve_connection_with_upgrades(TokioIo::new(io), self.service(peer))
            .into_owned();
        watcher.watch(served).await
    }

    /// The requests of one connection, from `peer`.
    fn service(
        self,
        peer: Peer,
    ) -> impl hyper::service::Service<
        http::Request<Incoming>,
        Response = http::Response<HttpBody>,
        Error = Infallible,
        Future = impl Future<Output = Result<http::Response<HttpBody>, Infallible>> + Send,
    > + Clone
    + Send
    + 'static {
        hyper::service::service_fn(move |request| {
            let gateway = self.clone();
            let peer = peer.clone();
            async move { Ok::<_, Infallible>(gateway.handle(request, peer).await) }
        })
    }

    async fn handle(
        self,
        request: http::Request<Incoming>,
        connection: Peer,
    ) -> http::Response<HttpBody> {
        let (parts, body) = request.into_parts();
        let shared = Arc::clone(&self.shared);
        if parts.uri.path() == "/openapi.json" && parts.method == Method::GET {
            return full(json_response(StatusCode::OK, shared.openapi.clone()));
        }
        let (binding, path_values) = match shared.bindings.find(&parts.method, parts.uri.path()) {
            Matched::Found(binding, values) => (binding, values),
            Matched::WrongVerb(verbs) => {
                let status = Status::unimplemented(format!(
                    "{} is not bound to {}",
                    parts.uri.path(),
                    parts.method
                ));
                let mut response = shared
                    .renderer
                    .error(&status, Some(StatusCode::METHOD_NOT_ALLOWED));
                let allowed: Vec<&str> = verbs.iter().map(Method::as_str).collect();
                if let Ok(allow) = HeaderValue::from_str(&allowed.join(", ")) {
                    response.headers_mut().insert(header::ALLOW, allow);
                }
                return full(response);
            }
            Matched::NotFound => {
                let status = Status::not_found(format!(
                    "no RPC is bound to {} {}; the bindings are in /openapi.json",
                    parts.method,
                    parts.uri.path()
                ));
                return full(shared.renderer.error(&status, None));
            }
        };
        if binding.method.is_client_streaming() {
            return self.upload(binding, parts, body, connection).await;
        }
        let prepared = match read_body(&parts.headers, body, &shared).await {
            Ok(bytes) => prepare(binding, &parts, path_values, &bytes),
            Err(refused) => Err(refused),
        };
        let (grpc_body, refused) = match prepared {
            Ok(message) => (single_message(&message), None),
            Err(refused) => (failing_body(refused.status.clone()), Some(refused)),
        };
        let call = grpc_request(&parts.headers, binding, grpc_body, connection);
        let answer = match self.calls.oneshot(call).await {
            Ok(response) => Answer::new(response),
            Err(error) => {
                let error: BoxError = error.into();
                tracing::error!(%error, "HTTP: the call failed inside the stack");
                return full(
                    shared
                        .renderer
                        .error(&Status::internal("the call failed"), None),
                );
            }
        };
        if binding.method.is_server_streaming() {
            let format = StreamFormat::of(&parts.headers);
            return stream(Arc::clone(&shared), binding, answer, format).await;
        }
        unary(&shared, binding, &parts.headers, answer, refused).await
    }

    /// A client-streaming RPC: each NDJSON line of the body is one message's body field,
    /// converted and sent into the call as it arrives, never the whole body held at once.
    async fn upload(
        self,
        binding: &Binding,
        parts: http::request::Parts,
        body: Incoming,
        connection: Peer,
    ) -> http::Response<HttpBody> {
        let shared = Arc::clone(&self.shared);
        let first = first_upload_message(binding, &parts);
        let (sender, receiver) = mpsc::channel(STREAM_QUEUE);
        let refused = match first {
            Ok(first) => {
                let lines = UploadLines {
                    binding: binding.clone(),
                    first: Some(first),
                    max_line: shared.max_body,
                    idle_timeout: shared.body_timeout,
                };
                tokio::spawn(lines.send(body, sender));
                None
            }
            Err(refused) => {
                let _ = sender.try_send(Err(refused.status.clone()));
                Some(refused)
            }
        };
        let grpc_body = tonic::body::Body::new(StreamBody::new(ReceiverStream::new(receiver)));
        let call = grpc_request(&parts.headers, binding, grpc_body, connection);
        match self.calls.oneshot(call).await {
            Ok(response) => {
                unary(
                    &shared,
                    binding,
                    &parts.headers,
                    Answer::new(response),
                    refused,
                )
                .await
            }
            Err(error) => {
                let error: BoxError = error.into();
                tracing::error!(%error, "HTTP: the upload failed inside the stack");
                full(
                    shared
                        .renderer
                        .error(&Status::internal("the call failed"), None),
                )
            }
        }
    }
}

/// The request message of a unary or server-streaming call: body, then path, then query, then
/// the HTTP headers that stand for fields (`If-Match` for `etag`, `Last-Event-ID` for the
/// feed's cursor).
fn prepare(
    binding: &Binding,
    parts: &http::request::Parts,
    path_values: routes::PathValues,
    body: &[u8],
) -> Result<DynamicMessage, Refused> {
    let input = binding.method.input();
    let mut message = request::from_body(&input, &binding.body, body)?;
    request::apply_path(&mut message, path_values)?;
    if matches!(binding.body, BodyRule::Whole) && parts.uri.query().is_some_and(|q| !q.is_empty()) {
        return Err(refusal("query", "this method reads every field from the body").into());
    }
    request::apply_query(&mut message, parts.uri.query())?;
    if let Some(etag) = header_text(&parts.headers, header::IF_MATCH) {
        request::fill_if_unset(&mut message, "etag", unquote(etag))?;
    }
    if let Some(cursor) = header_text(&parts.headers, "last-event-id") {
        request::fill_if_unset(&mut message, "after_cursor", cursor)?;
    }
    Ok(message)
}

fn first_upload_message(
    binding: &Binding,
    parts: &http::request::Parts,
) -> Result<DynamicMessage, Refused> {
    let media = media_type(&parts.headers);
    if !matches!(
        media.as_deref(),
        Some("application/x-ndjson" | "application/jsonl" | "application/json-seq")
    ) {
        return Err(refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type",
            "an upload is NDJSON: application/x-ndjson, one item a line",
        ));
    }
    let mut message = DynamicMessage::new(binding.method.input());
    request::apply_query(&mut message, parts.uri.query())?;
    Ok(message)
}

/// Feeds an upload's lines into the call as messages.
struct UploadLines {
    binding: Binding,
    /// The fields from the query string, sent with the first item.
    first: Option<DynamicMessage>,
    max_line: usize,
    idle_timeout: Duration,
}

impl UploadLines {
    async fn send(
        mut self,
        mut body: Incoming,
        sender: mpsc::Sender<Result<Frame<Bytes>, Status>>,
    ) {
        let mut pending = BytesMut::new();
        let mut index = 0usize;
        let outcome = loop {
            let frame = match tokio::time::timeout(self.idle_timeout, body.frame()).await {
                Err(_) => {
                    break Err(refusal(
                        "body",
                        format!(
                            "no data for {} s: the upload was abandoned",
                            self.idle_timeout.as_secs()
                        ),
                    ));
                }
                Ok(None) => break Ok(()),
                Ok(Some(Err(_))) => break Err(refusal("body", "the upload was cut off")),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            // The chunk's whole lines go into the call as one piece: a piece per item would
            // wake the call once for every report.
            let mut messages = BytesMut::new();
            let mut failed = None;
            while let Some(end) = memchr::memchr(b'\n', &pending) {
                let line = pending.split_to(end + 1);
                if let Err(status) = self.item(&line, &mut index, &mut messages) {
                    failed = Some(status);
                    break;
                }
            }
            if !messages.is_empty()
                && sender
                    .send(Ok(Frame::data(messages.freeze())))
                    .await
                    .is_err()
            {
                return;
            }
            if let Some(status) = failed {
                break Err(status);
            }
            if pending.len() > self.max_line {
                break Err(refusal(
                    &format!("items[{index}]"),
                    format!("a line is longer than {} bytes", self.max_line),
                ));
            }
        };
        let last = outcome.and_then(|()| {
            let tail = pending.split();
            let mut messages = BytesMut::new();
            self.item(&tail, &mut index, &mut messages)?;
            self.end_of_upload(&mut messages);
            Ok(messages.freeze())
        });
        let _ = sender.send(last.map(Frame::data)).await;
    }

    /// One line as a framed message appended to `messages`; blank lines are skipped.
    fn item(
        &mut self,
        line: &[u8],
        index: &mut usize,
        messages: &mut BytesMut,
    ) -> Result<(), Status> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let at = *index;
        let at = move || format!("items[{at}]");
        *index += 1;
        let mut message = self.next_message();
        if let BodyRule::Field(field) = &self.binding.body
            && let prost_reflect::Kind::Message(item) = field.kind()
        {
            let item = request::parse_json_at(&item, line, at)?;
            message.set_field(field, Value::Message(item));
        } else {
            message = request::parse_json_at(&self.binding.method.input(), line, at)?;
        }
        append_framed(&message, messages);
        Ok(())
    }

    /// The message that says the upload ended whole: its `end_of_batch`, when the request has
    /// one, set.
    fn end_of_upload(&mut self, messages: &mut BytesMut) {
        let mut message = self.next_message();
        if let Some(field) = message.descriptor().get_field_by_name("end_of_batch") {
            message.set_field(&field, Value::Bool(true));
        }
        append_framed(&message, messages);
    }

    fn next_message(&mut self) -> DynamicMessage {
        self.first
            .take()
            .unwrap_or_else(|| DynamicMessage::new(self.binding.method.input()))
    }
}

async fn read_body(headers: &HeaderMap, body: Incoming, shared: &Shared) -> Result<Bytes, Refused> {
    let too_large = || {
        refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body",
            format!("larger than {} bytes", shared.max_body),
        )
    };
    let declared = header_text(headers, header::CONTENT_LENGTH).and_then(|n| n.parse::<u64>().ok());
    if declared.is_some_and(|length| length > shared.max_body as u64) {
        return Err(too_large());
    }
    let collected = tokio::time::timeout(
        shared.body_timeout,
        Limited::new(body, shared.max_body).collect(),
    )
    .await;
    let bytes = match collected {
        Err(_) => {
            return Err(refused(
                StatusCode::REQUEST_TIMEOUT,
                "body",
                format!(
                    "the body did not arrive within {} s",
                    shared.body_timeout.as_secs()
                ),
            ));
        }
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Ok(Err(_)) => return Err(refusal("body", "the body could not be read").into()),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let json = matches!(media_type(headers).as_deref(), Some(media) if media == "application/json" || media.ends_with("+json"));
    if !bytes.is_empty() && !json {
        return Err(refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type",
            "a request body is JSON: application/json",
        ));
    }
    Ok(bytes)
}

/// A unary answer: the message as JSON (with its `ETag`), or the status.
async fn unary<B>(
    shared: &Shared,
    binding: &Binding,
    headers: &HeaderMap,
    mut answer: Answer<B>,
    refused: Option<Refused>,
) -> http::Response<HttpBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let outcome = match answer.next().await {
        Ok(Some(bytes)) => answer.next().await.map(|_| bytes),
        Ok(None) => Err(Status::internal("the call answered nothing")),
        Err(status) => Err(status),
    };
    let bytes = match outcome {
        Ok(bytes) => bytes,
        Err(status) => {
            let http = match refused {
                Some(refused)
                    if refused.status.code() == status.code()
                        && refused.status.message() == status.message() =>
                {
                    refused.http
                }
                _ if status.code() == tonic::Code::Aborted
                    && headers.contains_key(header::IF_MATCH) =>
                {
                    Some(StatusCode::PRECONDITION_FAILED)
                }
                _ => None,
            };
            return full(shared.renderer.error(&status, http));
        }
    };
    let output = binding.method.output();
    let etag = etag_of(&output, &bytes);
    if let (Some(etag), Some(wanted)) = (&etag, header_text(headers, header::IF_NONE_MATCH))
        && wanted.split(',').any(|one| unquote(one.trim()) == etag)
    {
        let mut response = http::Response::new(Bytes::new());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        set_etag(response.headers_mut(), etag);
        return full(response);
    }
    let mut response = match shared.renderer.message(&output, bytes) {
        Ok(json) => json_response(StatusCode::OK, json.into()),
        Err(status) => shared.renderer.error(&status, None),
    };
    if let Some(etag) = &etag {
        set_etag(response.headers_mut(), etag);
    }
    full(response)
}

#[derive(Clone, Copy)]
enum StreamFormat {
    /// Server-Sent Events: the event id is the cursor, so `Last-Event-ID` resumes.
    EventStream,
    /// One JSON message a line.
    Ndjson,
}

impl StreamFormat {
    fn of(headers: &HeaderMap) -> Self {
        match header_text(headers, header::ACCEPT) {
            Some(accept) if accept.contains("text/event-stream") => Self::EventStream,
            _ => Self::Ndjson,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::EventStream => "text/event-stream",
            Self::Ndjson => "application/x-ndjson",
        }
    }
}

/// A server-streaming answer. The first message (or the failure before it) decides the HTTP
/// status if it comes within [`FIRST_MESSAGE_WAIT`]; a stream still quiet by then (a feed with
/// nothing new) is answered as accepted, so that a client sees its call taken without waiting
/// for the first heartbeat. After that, a failure ends the stream with an `error` event or line.
async fn stream<B>(
    shared: Arc<Shared>,
    binding: &Binding,
    mut answer: Answer<B>,
    format: StreamFormat,
) -> http::Response<HttpBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    // Reading a message is cancel-safe: what arrived stays buffered in the answer.
    let first = match tokio::time::timeout(FIRST_MESSAGE_WAIT, answer.next()).await {
        Ok(Err(status)) => return full(shared.renderer.error(&status, None)),
        Ok(first) => Some(first),
        Err(_quiet) => None,
    };
    let output = binding.method.output();
    let (sender, receiver) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(STREAM_QUEUE);
    tokio::spawn(async move {
        let mut next = first;
        loop {
            if let Some(read) = next {
                let chunk = match read {
                    Ok(None) => return,
                    Ok(Some(bytes)) => render_streamed(&shared.renderer, &output, bytes, format),
                    Err(status) => {
                        let error = shared.renderer.status(&status);
                        let _ = sender
                            .send(Ok(Frame::data(stream_error(error, format))))
                            .await;
                        return;
                    }
                };
                if sender.send(Ok(Frame::data(chunk))).await.is_err() {
                    return;
                }
            }
            // A client gone while the stream is idle ends the call at once.
            next = tokio::select! {
                read = answer.next() => Some(read),
                () = sender.closed() => return,
            };
        }
    });
    let mut response =
        http::Response::new(StreamBody::new(ReceiverStream::new(receiver)).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies that buffer answers (nginx) would hold the events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn render_streamed(
    renderer: &Renderer,
    output: &prost_reflect::MessageDescriptor,
    bytes: Bytes,
    format: StreamFormat,
) -> Bytes {
    let message = match DynamicMessage::decode(output.clone(), bytes.clone()) {
        Ok(message) => message,
        Err(_) => return Bytes::new(),
    };
    let json = renderer.message(output, bytes).unwrap_or_default();
    match format {
        StreamFormat::Ndjson => {
            let mut line = json;
            line.push(b'\n');
            line.into()
        }
        StreamFormat::EventStream => {
            let mut event = String::new();
            if let Some(cursor) = cursor_of(&message) {
                event.push_str(&format!("id: {cursor}\n"));
            }
            if let Some((field, _)) = message.fields().next() {
                event.push_str(&format!("event: {}\n", field.name()));
            }
            let mut bytes = event.into_bytes();
            bytes.extend_from_slice(b"data: ");
            bytes.extend_from_slice(&json);
            bytes.extend_from_slice(b"\n\n");
            bytes.into()
        }
    }
}

fn stream_error(status_json: Vec<u8>, format: StreamFormat) -> Bytes {
    let mut chunk = Vec::new();
    match format {
        StreamFormat::Ndjson => {
            chunk.extend_from_slice(b"{\"error\":");
            chunk.extend_from_slice(&status_json);
            chunk.extend_from_slice(b"}\n");
        }
        StreamFormat::EventStream => {
            chunk.extend_from_slice(b"event: error\ndata: ");
            chunk.extend_from_slice(&status_json);
            chunk.extend_from_slice(b"\n\n");
        }
    }
    chunk.into()
}

fn grpc_request(
    headers: &HeaderMap,
    binding: &Binding,
    body: tonic::body::Body,
    connection: Peer,
) -> GrpcRequest {
    let mut call = http::Request::new(body);
    *call.method_mut() = Method::POST;
    *call.uri_mut() = binding.grpc_uri.clone();
    *call.version_mut() = http::Version::HTTP_2;
    let metadata = call.headers_mut();
    metadata.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    metadata.insert(header::TE, HeaderValue::from_static("trailers"));
    for name in FORWARDED_HEADERS {
        for value in headers.get_all(name) {
            metadata.append(name, value.clone());
        }
    }
    call.extensions_mut().insert(connection.tcp);
    if let Some(certificate) = connection.certificate {
        call.extensions_mut().insert(certificate);
    }
    call
}

fn single_message(message: &DynamicMessage) -> tonic::body::Body {
    tonic::body::Body::new(Full::new(frame_message(message)))
}

/// A request body that fails with `status` when the service reads it: tonic answers the call
/// with that status, after every layer has seen the call.
fn failing_body(status: Status) -> tonic::body::Body {
    let failing =
        http_body_util::StreamBody::new(tokio_stream::once(Err::<Frame<Bytes>, _>(status)));
    tonic::body::Body::new(failing)
}

fn frame_message(message: &DynamicMessage) -> Bytes {
    let mut framed = BytesMut::new();
    append_framed(message, &mut framed);
    framed.freeze()
}

/// Appends `message` with its gRPC frame header (uncompressed, its length).
fn append_framed(message: &DynamicMessage, framed: &mut BytesMut) {
    let header = framed.len();
    framed.extend_from_slice(&[0; 5]);
    // Written straight into the growing buffer and measured afterwards: `encode` would first
    // walk the whole message for its length, and a dynamic message's walk costs about as much
    // as the encoding itself.
    message.encode_raw(framed);
    let length = (framed.len() - header - 5) as u32;
    framed[header + 1..header + 5].copy_from_slice(&length.to_be_bytes());
}

fn full(response: http::Response<Bytes>) -> http::Response<HttpBody> {
    response.map(|body| Full::new(body).boxed_unsync())
}

fn header_text(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// The media type of `Content-Type`, lower-case, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    header_text(headers, header::CONTENT_TYPE)
        .and_then(|value| value.split(';').next())
        .map(|media| media.trim().to_ascii_lowercase())
}

/// An entity tag's value: `"abc"` and `W/"abc"` both name `abc`.
fn unquote(etag: &str) -> &str {
    etag.trim_start_matches("W/").trim_matches('"')
}

fn set_etag(headers: &mut HeaderMap, etag: &str) {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        headers.insert(header::ETAG, value);
    }
}

//! The tower layer that records every call. It sits outside authentication, so calls refused
//! for lack of credentials are recorded too, and holds the response until the call's entry is
//! durable: a call the log cannot record is answered UNAVAILABLE instead, never served
//! unaudited.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use tower::{Layer, Service};

use crate::audit::CallAudit;
use crate::error::Overload;
use crate::workers::audit_writer::AuditWriter;

/// Calls that carry no agency data and touch no record: health probes (made every few seconds
/// by the orchestrator) and reflection (the published contract). Recording them would bury
/// the calls that matter.
const UNRECORDED_PREFIXES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

#[derive(Clone)]
pub struct AuditLayer {
    writer: AuditWriter,
}

impl AuditLayer {
    pub fn new(writer: AuditWriter) -> Self {
        Self { writer }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = Audit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Audit {
            inner,
            writer: self.writer.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Audit<S> {
    inner: S,
    writer: AuditWriter,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

fn header<'a, B>(request: &'a http::Request<B>, name: &str) -> &'a str {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .unwrap_or_default()
}

/// The gRPC status of a response whose status travels in its headers (every error answered
/// before a message); a response that carries messages started out OK.
fn status_code(response: &http::Response<tonic::body::Body>) -> i32 {
    response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

impl<S, B> Service<http::Request<B>> for Audit<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if UNRECORDED_PREFIXES
            .iter()
            .any(|prefix| request.uri().path().starts_with(prefix))
        {
            return Box::pin(self.inner.call(request));
        }
        let peer = super::limits::remote_addr(request.extensions())
            .map(|addr| addr.to_string())
            .unwrap_or_default();
        // Both bounded, like everything the log stores about a caller's own words.
        let purpose: String = header(&request, "x-purpose").chars().take(200).collect();
        let request_id: String = header(&request, "x-request-id").chars().take(64).collect();
        let audit = CallAudit::new(request.uri().path(), peer, &purpose, &request_id);
        request.extensions_mut().insert(audit.clone());

        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let writer = self.writer.clone();
        // The call runs to its end on its own task even if the client goes away meanwhile:
        // its entry is then still written with the call's real outcome, and no handler is
        // dropped halfway through a database transaction.
        let call = tokio::spawn(async move {
            let response = inner.call(request).await?;
            if audit.is_recorded() {
                return Ok(response);
            }
            match writer
                .append(audit.entry(status_code(&response), None, None))
                .await
            {
                Ok(()) => Ok(response),
                Err(error) => {
                    tracing::error!(%error, "call not answered: its audit entry cannot be stored");
                    Ok(tonic::Status::from(Overload::AuditUnavailable).into_http())
                }
            }
        });
        Box::pin(async move {
            call.await.unwrap_or_else(|failure| {
                tracing::error!(%failure, "a call's task failed");
                Ok(tonic::Status::internal("internal error").into_http())
            })
        })
    }
}

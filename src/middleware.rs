//! The one place where the tower layers around every gRPC service are stacked. Outermost first;
//! each layer says why it is there.
//!
//! Where the next layers go: per-caller limits belong between tracing and the audit layer, so
//! a shed call is still traced; everything that answers a caller sits inside the audit layer.

use std::sync::Arc;

use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::classify::{GrpcCode, GrpcErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;

type GrpcRequest = http::Request<tonic::body::Body>;
type MakeSpan = fn(&GrpcRequest) -> Span;

use crate::audit::layer::AuditLayer;
use crate::auth::{Authenticator, layer::AuthLayer};

type Tracing = TraceLayer<SharedClassifier<GrpcErrorsAsFailures>, MakeSpan>;

pub type Layers = Stack<AuthLayer, Stack<AuditLayer, Stack<Tracing, Identity>>>;

pub fn layers(audit: AuditLayer, authenticator: Arc<Authenticator>) -> ServiceBuilder<Layers> {
    ServiceBuilder::new()
        // Tracing: one span per call named by its gRPC method, so every log line a call causes
        // (including the store's) can be tied to it, and failures are logged with their status.
        .layer(TraceLayer::new(server_faults()).make_span_with(call_span as MakeSpan))
        // Audit: outside authentication, so refused calls are recorded too; it holds each
        // response until the call's entry is durable and answers UNAVAILABLE when it cannot be.
        .layer(audit)
        // Authentication: turns the bearer token into the caller's identity before any handler
        // runs, and answers UNAUTHENTICATED itself, so no handler can forget to check.
        .layer(AuthLayer::new(authenticator))
}

/// Statuses that say the server failed. The ones that answer a caller's own mistake or a
/// normal outcome (bad input, not found, a lost etag race) are not errors of this service and
/// would drown real faults in the error log.
fn server_faults() -> SharedClassifier<GrpcErrorsAsFailures> {
    let caller_outcomes = [
        GrpcCode::Cancelled,
        GrpcCode::InvalidArgument,
        GrpcCode::NotFound,
        GrpcCode::AlreadyExists,
        GrpcCode::PermissionDenied,
        GrpcCode::FailedPrecondition,
        GrpcCode::Aborted,
        GrpcCode::OutOfRange,
        GrpcCode::Unauthenticated,
    ];
    let classifier = caller_outcomes.into_iter().fold(
        GrpcErrorsAsFailures::new(),
        GrpcErrorsAsFailures::with_success,
    );
    SharedClassifier::new(classifier)
}

fn call_span(request: &GrpcRequest) -> Span {
    tracing::info_span!("rpc", method = %request.uri().path())
}

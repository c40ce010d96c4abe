//! The one place where the tower layers around every gRPC service are stacked. Outermost first;
//! each layer says why it is there.
//!
//! The HTTP/2 limits (message size, streams per connection, resets, keepalive, connection
//! age) are settings of the server itself, in `app.rs`; these layers act per call.

use std::sync::Arc;

use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower::util::{Either, MapResponseLayer, option_layer};
use tower_http::classify::{
    GrpcCode, GrpcEosErrorsAsFailures, GrpcErrorsAsFailures, SharedClassifier,
};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

type GrpcRequest = http::Request<tonic::body::Body>;
type MakeSpan = fn(&GrpcRequest) -> Span;

use crate::auth::{Authenticator, layer::AuthLayer};
use crate::config::{GrpcWebConfig, LimitsConfig};
use crate::grpc::ServedMethod;
use crate::metrics::{Metrics, MetricsLayer};
use crate::server::audit_layer::AuditLayer;
use crate::server::framing::RequestFramingLayer;
use crate::server::limits::{
    AdmitLayer, CallerRateLimit, DatabaseState, DeadlineLayer, InFlightLimit,
};

type Tracing = TraceLayer<SharedClassifier<GrpcErrorsAsFailures>, MakeSpan>;
type Traced =
    http::Response<tower_http::trace::ResponseBody<tonic::body::Body, GrpcEosErrorsAsFailures>>;
type Untraced = MapResponseLayer<fn(Traced) -> http::Response<tonic::body::Body>>;

pub type Layers = Stack<
    RequestFramingLayer,
    Stack<
        AdmitLayer<CallerRateLimit>,
        Stack<
            AuthLayer,
            Stack<
                DeadlineLayer,
                Stack<
                    AuditLayer,
                    Stack<
                        AdmitLayer<InFlightLimit>,
                        Stack<
                            AdmitLayer<DatabaseState>,
                            Stack<
                                MetricsLayer,
                                Stack<
                                    Tracing,
                                    Stack<
                                        Untraced,
                                        Stack<
                                            Either<tonic_web::GrpcWebLayer, Identity>,
                                            Stack<Either<CorsLayer, Identity>, Identity>,
                                        >,
                                    >,
                                >,
                            >,
                        >,
                    >,
                >,
            >,
        >,
    >,
>;

/// Every service of the server inside the layers: what the gRPC port serves, and what the
/// HTTP/JSON door sends its transcoded calls into.
pub type Calls = <Layers as tower::Layer<tonic::service::Routes>>::Service;

pub struct Parts {
    pub audit: AuditLayer,
    pub authenticator: Arc<Authenticator>,
    pub metrics: Arc<Metrics>,
    pub database: DatabaseState,
    /// Every method the server implements.
    pub methods: Vec<ServedMethod>,
}

pub fn layers(
    parts: Parts,
    limits: &LimitsConfig,
    grpc_web: &GrpcWebConfig,
) -> ServiceBuilder<Layers> {
    let rate_limit = CallerRateLimit::new(limits, Arc::clone(&parts.metrics));
    ServiceBuilder::new()
        // CORS: answers browsers' preflight requests for the origins configured, and only for
        // them; outermost, as a preflight is no call and carries no data.
        .layer(option_layer(cors(grpc_web)))
        // gRPC-Web: turns a browser's call into the gRPC call it stands for, so that everything
        // inside — tracing, metrics, limits, audit, authentication — is the same code for both.
        .layer(option_layer(
            grpc_web.enabled.then(tonic_web::GrpcWebLayer::new),
        ))
        // Tracing's answer body wrapped as tonic's own, the type the gRPC-Web translation
        // reads; tracing still sees the answer's end through it.
        .layer(MapResponseLayer::new(untraced as fn(Traced) -> _))
        // Tracing: one span per call named by its gRPC method, so every log line a call causes
        // (including the store's) can be tied to it, and failures are logged with their status.
        .layer(TraceLayer::new(server_faults()).make_span_with(call_span as MakeSpan))
        // Metrics: outside every gate, so refused calls are counted with their status too.
        .layer(MetricsLayer::new(
            Arc::clone(&parts.metrics),
            parts.methods.iter().map(|method| method.path.clone()),
        ))
        // Database gate: while the health check finds the database unreachable, answer
        // UNAVAILABLE at once instead of letting every call wait out the pool's timeout.
        .layer(AdmitLayer::new(parts.database))
        // Load shedding: a fixed number of calls in flight per replica, one more refused at once
        // with RESOURCE_EXHAUSTED. Outside the audit layer, because it protects the audit log's
        // own capacity; shed calls are counted in the metrics and logged instead.
        .layer(AdmitLayer::new(InFlightLimit::new(
            limits.max_in_flight_calls,
            Arc::clone(&parts.metrics),
        )))
        // Audit: outside authentication, so refused calls are recorded too; it holds each
        // response until the call's entry is durable and answers UNAVAILABLE when it cannot be.
        .layer(parts.audit)
        // Deadline: inside the audit layer, so a call cut short is recorded as
        // DEADLINE_EXCEEDED, and its work is really dropped rather than left running.
        .layer(DeadlineLayer::new(limits.request_timeout()))
        // Authentication: turns the bearer token into the caller's identity before any handler
        // runs, and answers UNAUTHENTICATED itself, so no handler can forget to check.
        .layer(AuthLayer::new(parts.authenticator))
        // Per-caller rate limits (per agency; per address for token requests): need the
        // caller's identity, so inside authentication; inside the audit layer too, so a flood
        // leaves its trace in the log.
        .layer(AdmitLayer::new(rate_limit))
        // Request framing: a body that breaks gRPC's message framing is answered
        // INVALID_ARGUMENT, like a message that does not decode, instead of tonic's INTERNAL;
        // innermost, as it only follows the body the service reads.
        .layer(RequestFramingLayer::new(
            parts
                .methods
                .into_iter()
                .filter(|method| !method.client_streaming)
                .map(|method| method.path),
        ))
}

fn untraced(response: Traced) -> http::Response<tonic::body::Body> {
    response.map(tonic::body::Body::new)
}

/// The CORS policy of gRPC-Web calls from other origins, if any origin is allowed: the
/// methods and headers a gRPC-Web client sends, and the gRPC status headers it must read.
fn cors(grpc_web: &GrpcWebConfig) -> Option<CorsLayer> {
    if !grpc_web.enabled || grpc_web.cors_allowed_origins.is_empty() {
        return None;
    }
    let origins: Vec<http::HeaderValue> = grpc_web
        .cors_allowed_origins
        .iter()
        .filter_map(|origin| http::HeaderValue::from_str(origin.as_str()).ok())
        .collect();
    let header = http::HeaderName::from_static;
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([http::Method::POST, http::Method::OPTIONS])
            .allow_headers([
                header("authorization"),
                header("content-type"),
                header("x-grpc-web"),
                header("x-user-agent"),
                header("grpc-timeout"),
                header("x-purpose"),
                header("x-request-id"),
            ])
            .expose_headers([
                header("grpc-status"),
                header("grpc-message"),
                header("grpc-status-details-bin"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
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

//! Prometheus metrics: what operators watch and alert on. Served as OpenMetrics text on a
//! port of its own ([`serve`]), so a scraper needs neither gRPC, TLS nor an access token, and
//! the port can stay inside the cluster.
//!
//! Labels are bounded on purpose: a method label is only ever a method this server
//! implements (a client can send any path), and agencies are a registered, bounded set.

use std::{
    collections::HashSet,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http_body_util::Full;
use hyper::{body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tokio::net::TcpListener;
use tower::{Layer, Service};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgencyLabels {
    agency: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupLabels {
    result: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 0.5 ms to about 16 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// How many of a database pool's connections are open, and how many of those are idle.
#[derive(Debug, Clone)]
pub struct PoolUsage {
    pub pool: &'static str,
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    latency: HistogramFamily<MethodLabels>,
    in_flight: Gauge,
    shed: Counter,
    rate_limited: Family<AgencyLabels, Counter>,
    token_requests_limited: Counter,
    audit_batch: Histogram,
    audit_wait: Histogram,
    audit_failures: Counter,
    token_cache: Family<LookupLabels, Counter>,
    feed_subscribers: Gauge,
    database_up: Gauge,
    pool: Family<PoolLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sinergi");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "grpc_calls",
            "Calls answered, by method and gRPC status code",
            calls.clone(),
        );
        let latency: HistogramFamily<MethodLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "grpc_call_duration_seconds",
            "Time from a call's arrival to its response headers, by method",
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "grpc_calls_in_flight",
            "Calls being served now",
            in_flight.clone(),
        );
        let shed = Counter::default();
        registry.register(
            "grpc_calls_shed",
            "Calls refused RESOURCE_EXHAUSTED because the replica was at its in-flight limit",
            shed.clone(),
        );
        let rate_limited = Family::<AgencyLabels, Counter>::default();
        registry.register(
            "grpc_calls_rate_limited",
            "Calls refused RESOURCE_EXHAUSTED because their agency was over its rate",
            rate_limited.clone(),
        );
        let token_requests_limited = Counter::default();
        registry.register(
            "token_requests_rate_limited",
            "Token requests refused RESOURCE_EXHAUSTED because their address was over its rate",
            token_requests_limited.clone(),
        );
        let audit_batch = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "audit_batch_entries",
            "Entries appended to the audit log per group-commit transaction",
            audit_batch.clone(),
        );
        let audit_wait = latency_histogram();
        registry.register(
            "audit_append_wait_seconds",
            "Time a call waits for its audit entry to be durable (the log's lag)",
            audit_wait.clone(),
        );
        let audit_failures = Counter::default();
        registry.register(
            "audit_append_failures",
            "Group-commit transactions that failed; their calls were answered UNAVAILABLE",
            audit_failures.clone(),
        );
        let token_cache = Family::<LookupLabels, Counter>::default();
        registry.register(
            "token_cache_lookups",
            "Access-token checks by whether the verified token was cached (hit) or not (miss)",
            token_cache.clone(),
        );
        let feed_subscribers = Gauge::default();
        registry.register(
            "feed_subscribers",
            "Open change-feed streams on this replica",
            feed_subscribers.clone(),
        );
        let database_up = Gauge::default();
        registry.register(
            "database_up",
            "1 while the database answers its health pings, 0 while it does not",
            database_up.clone(),
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "database_pool_connections",
            "Database connections by pool and state (in_use, idle, max)",
            pool.clone(),
        );
        Self {
            registry,
            calls,
            latency,
            in_flight,
            shed,
            rate_limited,
            token_requests_limited,
            audit_batch,
            audit_wait,
            audit_failures,
            token_cache,
            feed_subscribers,
            database_up,
            pool,
        }
    }

    pub fn record_shed(&self) {
        self.shed.inc();
    }

    pub fn record_rate_limited(&self, agency: &str) {
        self.rate_limited
            .get_or_create(&AgencyLabels {
                agency: agency.to_owned(),
            })
            .inc();
    }

    pub fn record_token_request_limited(&self) {
        self.token_requests_limited.inc();
    }

    pub fn record_audit_batch(&self, entries: usize, stored: bool) {
        self.audit_batch.observe(entries as f64);
        if !stored {
            self.audit_failures.inc();
        }
    }

    pub fn record_audit_wait(&self, waited: Duration) {
        self.audit_wait.observe(waited.as_secs_f64());
    }

    pub fn record_token_lookup(&self, cached: bool) {
        let result = if cached { "hit" } else { "miss" };
        self.token_cache
            .get_or_create(&LookupLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text of every metric, with the point-in-time values given here.
    pub fn render(
        &self,
        feed_subscribers: usize,
        database_up: bool,
        pools: &[PoolUsage],
    ) -> String {
        self.feed_subscribers
            .set(i64::try_from(feed_subscribers).unwrap_or(i64::MAX));
        self.database_up.set(i64::from(database_up));
        for usage in pools {
            let states = [
                ("in_use", usage.open.saturating_sub(usage.idle)),
                ("idle", usage.idle),
                ("max", usage.max),
            ];
            for (state, count) in states {
                self.pool
                    .get_or_create(&PoolLabels {
                        pool: usage.pool.to_owned(),
                        state: state.to_owned(),
                    })
                    .set(i64::from(count));
            }
        }
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot encode the metrics");
        }
        text
    }
}

/// Serves `GET /metrics` with what `render` returns, until the task is dropped.
pub async fn serve(listener: TcpListener, render: Arc<dyn Fn() -> String + Send + Sync>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(%error, "metrics endpoint cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let render = Arc::clone(&render);
        tokio::spawn(async move {
            let answer = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let render = Arc::clone(&render);
                async move {
                    if request.uri().path() == "/metrics" && request.method() == http::Method::GET {
                        http::Response::builder()
                            .header(
                                http::header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .body(Full::new(Bytes::from(render())))
                    } else {
                        http::Response::builder()
                            .status(http::StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::from_static(b"metrics are at /metrics\n")))
                    }
                }
            });
            // A scraper that connects and sends nothing is dropped after the header timeout.
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), answer);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "metrics connection ended with an error");
            }
        });
    }
}

/// Counts and times every call. A response whose status travels in its headers (every error
/// answered before a message) is counted with that code; one that carries messages counted OK.
#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
    methods: Arc<HashSet<String>>,
}

impl MetricsLayer {
    /// `methods`: the paths of every method the server implements; calls to any other path are
    /// counted under one label, so a scan of made-up paths cannot grow the metrics without end.
    pub fn new(metrics: Arc<Metrics>, methods: impl IntoIterator<Item = String>) -> Self {
        Self {
            metrics,
            methods: Arc::new(methods.into_iter().collect()),
        }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Measured<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Measured {
            inner,
            metrics: Arc::clone(&self.metrics),
            methods: Arc::clone(&self.methods),
        }
    }
}

#[derive(Clone)]
pub struct Measured<S> {
    inner: S,
    metrics: Arc<Metrics>,
    methods: Arc<HashSet<String>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Counts a call in flight until dropped, also when the client goes away mid-call.
struct InFlight(Gauge);

impl InFlight {
    fn enter(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl<S, B> Service<http::Request<B>> for Measured<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let method = if self.methods.contains(path) {
            path.to_owned()
        } else {
            "unknown".to_owned()
        };
        let metrics = Arc::clone(&self.metrics);
        let started = Instant::now();
        let in_flight = InFlight::enter(&metrics.in_flight);
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await;
            drop(in_flight);
            let code = match &response {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("0")
                    .to_owned(),
                Err(_) => "2".to_owned(),
            };
            metrics
                .latency
                .get_or_create(&MethodLabels {
                    method: method.clone(),
                })
                .observe(started.elapsed().as_secs_f64());
            metrics
                .calls
                .get_or_create(&CallLabels { method, code })
                .inc();
            response
        })
    }
}

//! Tower layers that keep the server responsive under overload, abuse and database outages.
//! Each refuses a call with a clear status rather than letting work queue up: a queue that
//! grows under overload only turns a slow service into a dead one.
//!
//! They are stacked in [`crate::server::middleware`]; the three gates share [`AdmitLayer`], which
//! decides before the call reaches the inner service and holds what it hands out (a permit)
//! until the call has been answered.

use std::{
    collections::HashMap,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use crate::auth::principal::Principal;
use crate::config::LimitsConfig;
use crate::error::Overload;
use crate::metrics::Metrics;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Response = http::Response<tonic::body::Body>;

/// A decision about a call, taken before it reaches the service.
pub trait Admission: Clone + Send + Sync + 'static {
    /// Held for as long as the admitted call runs.
    type Ticket: Send + 'static;

    fn admit<B>(&self, request: &http::Request<B>) -> Result<Self::Ticket, Status>;
}

#[derive(Clone)]
pub struct AdmitLayer<A>(A);

impl<A> AdmitLayer<A> {
    pub fn new(admission: A) -> Self {
        Self(admission)
    }
}

impl<S, A: Clone> Layer<S> for AdmitLayer<A> {
    type Service = Admit<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        Admit {
            inner,
            admission: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Admit<S, A> {
    inner: S,
    admission: A,
}

impl<S, A, B> Service<http::Request<B>> for Admit<S, A>
where
    S: Service<http::Request<B>, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    A: Admission,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match self.admission.admit(&request) {
            Ok(ticket) => {
                let call = self.inner.call(request);
                Box::pin(async move {
                    let response = call.await;
                    drop(ticket);
                    response
                })
            }
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        }
    }
}

/// Calls this replica serves at once. One more is shed with RESOURCE_EXHAUSTED: a client
/// retrying with backoff does better than one waiting in a queue behind thousands of others.
#[derive(Clone)]
pub struct InFlightLimit {
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl InFlightLimit {
    pub fn new(max_in_flight: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
            metrics,
        }
    }
}

impl Admission for InFlightLimit {
    type Ticket = OwnedSemaphorePermit;

    fn admit<B>(&self, request: &http::Request<B>) -> Result<Self::Ticket, Status> {
        Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            tracing::warn!(
                method = request.uri().path(),
                "call shed: at the in-flight limit"
            );
            self.metrics.record_shed();
            Overload::AtCapacity.into()
        })
    }
}

/// Token buckets by key: `per_second` calls on average, `burst` at once.
struct Buckets {
    per_second: f64,
    burst: f64,
    /// Keys remembered at most; beyond it, keys whose bucket has refilled are forgotten (a
    /// full bucket is what a new key gets anyway).
    capacity: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Buckets {
    /// `None` when the limit is turned off (a zero rate or burst).
    fn new(per_second: u32, burst: u32, capacity: usize) -> Option<Arc<Self>> {
        (per_second > 0 && burst > 0).then(|| {
            Arc::new(Self {
                per_second: f64::from(per_second),
                burst: f64::from(burst),
                capacity,
                buckets: Mutex::default(),
            })
        })
    }

    /// Takes a token for `key`, or tells how long until there is one.
    fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A known key (the common case) is served without allocating.
        if let Some(bucket) = buckets.get_mut(key) {
            return bucket.take(now, self.per_second, self.burst);
        }
        if buckets.len() >= self.capacity {
            buckets.retain(|_, bucket| bucket.tokens_at(now, self.per_second) < self.burst);
        }
        let mut bucket = Bucket {
            tokens: self.burst,
            refilled: now,
        };
        let taken = bucket.take(now, self.per_second, self.burst);
        buckets.insert(key.to_owned(), bucket);
        taken
    }
}

impl Bucket {
    /// The tokens there would be at `now` without a cap.
    fn tokens_at(&self, now: Instant, per_second: f64) -> f64 {
        self.tokens + now.saturating_duration_since(self.refilled).as_secs_f64() * per_second
    }

    /// Refills for the time since the last call, then takes one token if there is one, or
    /// tells how long until there is.
    fn take(&mut self, now: Instant, per_second: f64, burst: f64) -> Result<(), Duration> {
        self.tokens = self.tokens_at(now, per_second).min(burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
        }
    }
}

/// The token endpoint: the one call that does real work (a signature check, a database write)
/// without an identified caller.
const TOKEN_ENDPOINT: &str = "/sinergi.v1.AuthService/IssueToken";

/// Addresses whose token requests are tracked at most.
const TRACKED_ADDRESSES: usize = 10_000;

/// Rates per caller, so one caller's flood cannot starve the others: per agency for
/// authenticated calls, per client address for token requests. Agencies are a registered,
/// bounded set, and addresses are capped, so neither map can be grown without bound.
#[derive(Clone)]
pub struct CallerRateLimit {
    agencies: Option<Arc<Buckets>>,
    addresses: Option<Arc<Buckets>>,
    metrics: Arc<Metrics>,
}

impl CallerRateLimit {
    pub fn new(limits: &LimitsConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            agencies: Buckets::new(
                limits.agency_calls_per_second,
                limits.agency_burst,
                usize::MAX,
            ),
            addresses: Buckets::new(
                limits.token_requests_per_second_per_address,
                limits.token_request_burst_per_address,
                TRACKED_ADDRESSES,
            ),
            metrics,
        }
    }
}

impl Admission for CallerRateLimit {
    type Ticket = ();

    fn admit<B>(&self, request: &http::Request<B>) -> Result<(), Status> {
        let now = Instant::now();
        if let Some(principal) = request.extensions().get::<Principal>() {
            let agency = principal.agency_id().as_str();
            let Some(agencies) = &self.agencies else {
                return Ok(());
            };
            return agencies.take(agency, now).map_err(|retry_after| {
                self.metrics.record_rate_limited(agency);
                Overload::AgencyRate {
                    agency: agency.to_owned(),
                    retry_after,
                }
                .into()
            });
        }
        // Other calls without a caller (health, reflection) do no work worth limiting; the
        // in-flight limit bounds them.
        let (Some(addresses), true) = (&self.addresses, request.uri().path() == TOKEN_ENDPOINT)
        else {
            return Ok(());
        };
        let address = remote_addr(request.extensions()).map(|addr| addr.ip().to_string());
        addresses
            .take(address.as_deref().unwrap_or("unknown"), now)
            .map_err(|retry_after| {
                self.metrics.record_token_request_limited();
                Overload::TokenRequestRate { retry_after }.into()
            })
    }
}

/// The client's address of a call, over plain TCP or TLS.
pub fn remote_addr(extensions: &http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<TcpConnectInfo>()
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .map(TlsConnectInfo::get_ref)
        })
        .and_then(TcpConnectInfo::remote_addr)
}

/// Whether the database answered its last ping, shared between the health checker (which
/// sets it) and the gate (which reads it).
#[derive(Clone)]
pub struct DatabaseState(Arc<AtomicBool>);

impl DatabaseState {
    pub fn up() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Records the latest ping; true when this changed the state.
    pub fn set(&self, up: bool) -> bool {
        self.0.swap(up, Ordering::AcqRel) != up
    }
}

/// Refuses calls at once with UNAVAILABLE while the database is unreachable, instead of
/// letting each wait out the connection timeout: clients learn to back off in microseconds,
/// and the pool is not hammered by connection attempts. Health and reflection still answer.
impl Admission for DatabaseState {
    type Ticket = ();

    fn admit<B>(&self, request: &http::Request<B>) -> Result<(), Status> {
        if self.is_up() || request.uri().path().starts_with("/grpc.") {
            return Ok(());
        }
        Err(Overload::DatabaseDown.into())
    }
}

/// Bounds how long a call may run before it is answered DEADLINE_EXCEEDED and its work is
/// dropped (an open transaction rolls back). The client's own `grpc-timeout`, when shorter,
/// wins. Client-streaming calls are bounded by their items instead: a monthly batch may
/// rightly take minutes.
#[derive(Clone)]
pub struct DeadlineLayer {
    limit: Duration,
}

/// Methods whose request is a stream, exempt from the deadline.
const STREAMED_REQUESTS: [&str; 1] = ["/sinergi.v1.ComplianceService/BulkSubmitReports"];

impl DeadlineLayer {
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S, B> Service<http::Request<B>> for Deadline<S>
where
    S: Service<http::Request<B>, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if STREAMED_REQUESTS.contains(&request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        let limit = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map_or(self.limit, |asked| asked.min(self.limit));
        let call = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, call).await {
                Ok(response) => response,
                Err(_) => Ok(Status::deadline_exceeded(format!(
                    "the call did not finish within {} ms",
                    limit.as_millis()
                ))
                .into_http()),
            }
        })
    }
}

/// The gRPC `grpc-timeout` value: at most 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_by_unit() {
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("150m"), Some(Duration::from_millis(150)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("5x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }

    #[test]
    fn buckets_refill_at_the_configured_rate_and_are_per_key() {
        let limit = Buckets::new(10, 3, usize::MAX).expect("enabled");
        let start = Instant::now();
        assert!((0..3).all(|_| limit.take("a", start).is_ok()));
        let wait = limit.take("a", start).expect_err("burst spent");
        assert!(
            (Duration::from_millis(99)..=Duration::from_millis(101)).contains(&wait),
            "a token comes every 100 ms at 10 a second, told {wait:?}"
        );
        assert!(
            limit.take("b", start).is_ok(),
            "another key has its own bucket"
        );
        let wait = limit
            .take("a", start + Duration::from_millis(50))
            .expect_err("half a token");
        assert!(
            (Duration::from_millis(49)..=Duration::from_millis(51)).contains(&wait),
            "half a token is 50 ms away, told {wait:?}"
        );
        assert!(limit.take("a", start + Duration::from_millis(110)).is_ok());
        assert!(Buckets::new(0, 10, 1).is_none());
    }

    #[test]
    fn at_capacity_only_keys_still_limited_are_remembered() {
        let limit = Buckets::new(1, 2, 2).expect("enabled");
        let start = Instant::now();
        assert!(limit.take("spent", start).is_ok() && limit.take("spent", start).is_ok());
        assert!(limit.take("refilled", start).is_ok());
        let later = start + Duration::from_millis(1500);
        assert!(
            limit.take("new", later).is_ok(),
            "room is made for a new key"
        );
        let buckets = limit.buckets.lock().expect("lock");
        assert!(buckets.contains_key("new"));
        assert!(buckets.contains_key("spent"), "a key still limited is kept");
        assert!(
            !buckets.contains_key("refilled"),
            "a refilled bucket is forgotten"
        );
    }
}

//! The tower layer that authenticates every call except those needed to obtain a token or to
//! check the server (`AuthService`, health, reflection). An authenticated caller travels to the
//! handlers as a [`Principal`](super::principal::Principal) in the request extensions; a call
//! without valid credentials is answered UNAUTHENTICATED here and never reaches a handler.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::header::AUTHORIZATION;
use tower::{Layer, Service};

use super::Authenticator;

/// Method path prefixes callable without an access token.
const PUBLIC_PREFIXES: [&str; 4] = [
    "/sinergi.v1.AuthService/",
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// Whether a method (`/package.Service/Method`) is callable without an access token.
pub fn is_public(path: &str) -> bool {
    PUBLIC_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
}

impl AuthLayer {
    pub fn new(authenticator: Arc<Authenticator>) -> Self {
        Self { authenticator }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            authenticator: Arc::clone(&self.authenticator),
        }
    }
}

#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for Authenticate<S>
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
        let path = request.uri().path();
        if is_public(path) {
            return Box::pin(self.inner.call(request));
        }
        // The clone stays here for the next call; the service that was polled ready serves this one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authenticator = Arc::clone(&self.authenticator);
        Box::pin(async move {
            let authorization = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
            let certificate = super::client_certificate_thumbprint(request.extensions());
            match authenticator
                .authenticate(authorization, certificate.as_deref())
                .await
            {
                Ok(principal) => {
                    if let Some(audit) = request.extensions().get::<crate::audit::CallAudit>() {
                        audit.identify(
                            principal.agency_id().as_str(),
                            principal.token_id(),
                            principal.purpose(),
                        );
                    }
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(error) => {
                    tracing::info!(%error, method = request.uri().path(), "call refused");
                    Ok(tonic::Status::from(error).into_http())
                }
            }
        })
    }
}

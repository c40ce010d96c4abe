//! Calling Sinergi as an agency does: obtain an access token with a client assertion, then
//! send it with every call. Used by the command line, the benchmark and the tests.

use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::Interceptor,
    transport::Channel,
};

use crate::auth::{assertion::AssertionClaims, keys::SigningKey};
use crate::proto::{self, auth_service_client::AuthServiceClient};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the server")]
    Connect(#[from] tonic::transport::Error),
    #[error("the server refused: {}", .0.message())]
    Call(#[from] Status),
    #[error(transparent)]
    Key(#[from] crate::auth::keys::KeyError),
    #[error("the server address is not a URI: {0}")]
    Address(String),
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct BearerToken(MetadataValue<Ascii>);

impl BearerToken {
    pub fn new(token: &str) -> Result<Self, ClientError> {
        format!("Bearer {token}")
            .parse()
            .map(Self)
            .map_err(|_| ClientError::Call(Status::invalid_argument("the token is not ASCII")))
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// Connects to `server` (`http://host:port`).
pub async fn connect(server: &str) -> Result<Channel, ClientError> {
    Ok(Channel::from_shared(server.to_owned())
        .map_err(|_| ClientError::Address(server.to_owned()))?
        .connect()
        .await?)
}

/// Signs a client assertion for `agency` with `key` and exchanges it for an access token.
pub async fn issue_token(
    channel: Channel,
    agency: &str,
    key: &SigningKey,
    audience: &str,
    scope: Option<&str>,
    purpose: Option<&str>,
) -> Result<proto::IssueTokenResponse, ClientError> {
    let assertion = AssertionClaims::new(agency, audience, scope, purpose).sign(key)?;
    let response = AuthServiceClient::new(channel)
        .issue_token(proto::IssueTokenRequest {
            client_assertion: assertion,
        })
        .await?;
    Ok(response.into_inner())
}

//! Calling Sinergi as an agency does: obtain an access token with a client assertion, then
//! send it with every call; and check the audit log from outside ([`verify`]). Used by the
//! command line, the benchmark and the tests.

pub mod verify;

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
pub struct BearerToken {
    token: String,
    header: MetadataValue<Ascii>,
}

impl BearerToken {
    pub fn new(token: &str) -> Result<Self, ClientError> {
        let header = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClientError::Call(Status::invalid_argument("the token is not ASCII")))?;
        Ok(Self {
            token: token.to_owned(),
            header,
        })
    }

    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.header.clone());
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

/// An admin client that sends `token`.
pub type AdminClient = proto::agency_admin_service_client::AgencyAdminServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, BearerToken>,
>;

/// Registers an agency, its public key and its grants (scope, region codes) in one go, as an
/// administrator onboarding an agency does. Returns the key id.
pub async fn onboard_agency(
    admin: &mut AdminClient,
    agency: proto::Agency,
    key: &SigningKey,
    grants: &[(&str, &[&str])],
) -> Result<String, ClientError> {
    let agency_id = agency.id.clone();
    admin
        .create_agency(proto::CreateAgencyRequest {
            agency: Some(agency),
        })
        .await?;
    let kid = admin
        .register_key(proto::RegisterKeyRequest {
            agency_id: agency_id.clone(),
            public_jwk: key.public().canonical_json(),
        })
        .await?
        .into_inner()
        .key
        .map(|key| key.kid)
        .unwrap_or_default();
    grant_scopes(admin, &agency_id, grants).await?;
    Ok(kid)
}

/// Grants `agency` each scope of `grants`, limited to its region codes (none: everywhere).
pub async fn grant_scopes(
    admin: &mut AdminClient,
    agency: &str,
    grants: &[(&str, &[&str])],
) -> Result<(), ClientError> {
    for (scope, regions) in grants {
        admin
            .grant_scope(proto::GrantScopeRequest {
                agency_id: agency.to_owned(),
                scope: (*scope).into(),
                regions: regions
                    .iter()
                    .map(|code| proto::RegionCode {
                        code: (*code).into(),
                    })
                    .collect(),
                ..Default::default()
            })
            .await?;
    }
    Ok(())
}

//! `sinergi.v1.AuthService`: the token endpoint and Sinergi's public keys.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::agency_admin::convert::public_key;
use super::convert::timestamp;
use crate::auth::Authenticator;
use crate::error::ApiError;
use crate::proto::{self, auth_service_server::AuthService};

pub struct AuthApi {
    authenticator: Arc<Authenticator>,
}

impl AuthApi {
    pub fn new(authenticator: Arc<Authenticator>) -> Self {
        Self { authenticator }
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn issue_token(
        &self,
        request: Request<proto::IssueTokenRequest>,
    ) -> Result<Response<proto::IssueTokenResponse>, Status> {
        let audit = super::call_audit(&request);
        let certificate = crate::auth::client_certificate_thumbprint(request.extensions());
        let assertion = request.into_inner().client_assertion;
        let issued = self
            .authenticator
            .issue_token(assertion.trim(), certificate)
            .await
            .map_err(|error| {
                tracing::info!(%error, "token refused");
                ApiError::from(error)
            })?;
        audit.identify(
            issued.agency.as_str(),
            &issued.token_id,
            issued.purpose.as_deref(),
        );
        Ok(Response::new(proto::IssueTokenResponse {
            access_token: issued.access_token,
            token_type: "Bearer".into(),
            expire_time: Some(timestamp(issued.expires_at)),
            scopes: issued
                .scopes
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            agency_id: issued.agency.as_str().to_owned(),
            purpose: issued.purpose.unwrap_or_default(),
            certificate_thumbprint: issued.certificate_thumbprint.unwrap_or_default(),
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<proto::GetJwksRequest>,
    ) -> Result<Response<proto::GetJwksResponse>, Status> {
        let keys = self.authenticator.public_keys();
        let jwks = serde_json::json!({
            "keys": keys.iter().map(|key| key.to_published_json()).collect::<Vec<_>>()
        });
        let config = self.authenticator.config();
        Ok(Response::new(proto::GetJwksResponse {
            keys: keys.iter().map(public_key).collect(),
            jwks_json: jwks.to_string(),
            audience: config.audience.clone(),
            issuer: config.issuer.clone(),
        }))
    }
}

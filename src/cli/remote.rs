//! How the command line reaches a running server as an agency.

use std::path::PathBuf;

use clap::Args;
use sinergi::{
    auth::keys::SigningKey,
    client::{BearerToken, connect, issue_token},
    proto::agency_admin_service_client::AgencyAdminServiceClient,
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

/// Credentials for administration over gRPC: a token, or an agency key to obtain one.
#[derive(Args)]
pub(crate) struct RemoteArgs {
    /// Server address.
    #[arg(long, env = "SINERGI_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// An access token with the admin scope.
    #[arg(long, env = "SINERGI_TOKEN", conflicts_with_all = ["agency", "key"])]
    token: Option<String>,
    /// The administrator agency, to obtain a token with --key.
    #[arg(long, env = "SINERGI_AGENCY", requires = "key")]
    agency: Option<String>,
    /// The administrator agency's private key.
    #[arg(long, env = "SINERGI_KEY_FILE", requires = "agency")]
    key: Option<PathBuf>,
    /// The deployment's audience.
    #[arg(long, env = "SINERGI_AUDIENCE", default_value = "sinergi")]
    audience: String,
}

pub(crate) type Authed = InterceptedService<Channel, BearerToken>;

impl RemoteArgs {
    /// Whether credentials were given at all.
    pub(crate) fn has_credentials(&self) -> bool {
        self.token.is_some() || self.agency.is_some()
    }

    pub(crate) async fn client(&self) -> anyhow::Result<AgencyAdminServiceClient<Authed>> {
        Ok(AgencyAdminServiceClient::new(
            self.connect(Some("admin")).await?,
        ))
    }

    /// A channel carrying a token: the one given, or one obtained for `scope` with the key.
    pub(crate) async fn connect(&self, scope: Option<&str>) -> anyhow::Result<Authed> {
        let channel = connect(&self.server).await?;
        let token = match (&self.token, &self.agency, &self.key) {
            (Some(token), _, _) => token.clone(),
            (None, Some(agency), Some(key)) => {
                let key = SigningKey::read(key)?;
                issue_token(channel.clone(), agency, &key, &self.audience, scope, None)
                    .await?
                    .access_token
            }
            _ => anyhow::bail!("give --token, or --agency and --key"),
        };
        Ok(InterceptedService::new(channel, BearerToken::new(&token)?))
    }
}

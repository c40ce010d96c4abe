//! Client assertions (RFC 7523 §2.2): the short-lived JWT an agency signs with its own key to
//! obtain an access token. The claims are shared by the verifier and by the signing side used
//! in the command line and tests.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys::{KeyError, SigningKey};

/// Longest lifetime (`exp` − `iat`) an assertion may have.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 300;
/// Clock skew tolerated on `iat`, `nbf` and `exp`.
pub const ASSERTION_LEEWAY_SECS: i64 = 60;
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;
pub const MAX_JTI_CHARS: usize = 256;
pub const MAX_PURPOSE_CHARS: usize = 200;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

impl AssertionClaims {
    /// Claims for `agency` asking `audience` for `scope` (all granted scopes when `None`),
    /// valid for one minute from now, with a fresh `jti`.
    pub fn new(agency: &str, audience: &str, scope: Option<&str>, purpose: Option<&str>) -> Self {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Self {
            iss: agency.to_owned(),
            sub: agency.to_owned(),
            aud: audience.to_owned(),
            iat: now,
            exp: now + 60,
            nbf: None,
            jti: uuid::Uuid::new_v4().to_string(),
            scope: scope.map(str::to_owned),
            purpose: purpose.map(str::to_owned),
        }
    }

    /// Signs the claims with the agency's key.
    pub fn sign(&self, key: &SigningKey) -> Result<String, KeyError> {
        key.sign("JWT", self)
    }
}

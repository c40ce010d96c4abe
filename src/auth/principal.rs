//! The authenticated caller of one call, and the one check every handler uses.

use std::sync::Arc;

use time::OffsetDateTime;

use super::AuthError;
use super::registry::{AuthRegistry, AuthSnapshot};
use crate::domain::agency::{AgencyId, AgencyKind};
use crate::domain::region::RegionCode;
use crate::domain::scope::{RegionScope, Scope};

/// What a verified access token says; cached per token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub agency: AgencyId,
    pub scopes: Vec<Scope>,
    pub purpose: Option<String>,
    /// The agency key the token was obtained with: revoking it ends the token.
    pub agency_kid: String,
    pub token_id: String,
    pub expires_at: i64,
    /// The version of agencies, keys and grants the token was issued against.
    pub auth_version: i64,
    /// The client certificate the token is bound to (RFC 8705), if any.
    pub certificate_thumbprint: Option<String>,
}

/// An authenticated agency, valid for the call it arrived with. Rights are those of grants in
/// force now whose scope the token carries, so a withdrawal applies to live tokens.
#[derive(Clone)]
pub struct Principal {
    token: Arc<VerifiedToken>,
    kind: AgencyKind,
    snapshot: Arc<AuthSnapshot>,
    now: OffsetDateTime,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("agency", &self.token.agency)
            .field("scopes", &self.token.scopes)
            .finish()
    }
}

impl Principal {
    pub(super) fn new(
        token: Arc<VerifiedToken>,
        kind: AgencyKind,
        snapshot: Arc<AuthSnapshot>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            token,
            kind,
            snapshot,
            now,
        }
    }

    /// The same caller judged by the agencies, keys and grants in force now, for a call that
    /// outlives the moment it was authorised (a feed stream). `None` once the agency is
    /// disabled or the key its token was obtained with is revoked.
    pub fn refreshed(&self, registry: &AuthRegistry) -> Option<Self> {
        let snapshot = registry.snapshot();
        let agency = self.token.agency.as_str();
        snapshot.valid_key(agency, &self.token.agency_kid)?;
        let kind = snapshot.enabled_agency(agency)?.kind;
        Some(Self {
            token: Arc::clone(&self.token),
            kind,
            snapshot,
            now: OffsetDateTime::now_utc(),
        })
    }

    pub fn agency_id(&self) -> &AgencyId {
        &self.token.agency
    }

    pub fn kind(&self) -> AgencyKind {
        self.kind
    }

    pub fn purpose(&self) -> Option<&str> {
        self.token.purpose.as_deref()
    }

    pub fn token_id(&self) -> &str {
        &self.token.token_id
    }

    /// The regions the caller may touch with `scope`, or PERMISSION_DENIED when it has no
    /// grant in force for it (or its token does not carry it).
    pub fn require(&self, scope: Scope) -> Result<RegionScope, AuthError> {
        if !self.token.scopes.contains(&scope) {
            return Err(AuthError::missing_scope(scope));
        }
        let mut regions = Vec::new();
        let mut granted = false;
        for grant in self
            .snapshot
            .active_grants(self.token.agency.as_str(), self.now)
            .filter(|grant| grant.scope == scope)
        {
            granted = true;
            if grant.regions.is_empty() {
                return Ok(RegionScope::All);
            }
            regions.extend(grant.regions.iter().cloned());
        }
        if granted {
            Ok(RegionScope::Only(regions))
        } else {
            Err(AuthError::missing_scope(scope))
        }
    }

    /// Like [`require`](Self::require), for a call that touches a record in `region`.
    pub fn require_in(&self, scope: Scope, region: &RegionCode) -> Result<(), AuthError> {
        if self.require(scope)?.allows(region) {
            Ok(())
        } else {
            Err(AuthError::outside_region(scope, region))
        }
    }
}

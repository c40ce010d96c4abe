//! `sinergi.v1.AgencyAdminService`: agencies, keys and grants. Every method needs `admin`.

pub mod convert;

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use serde_json::json;

use super::{call_audit, cursor_of, page_size_of, principal, split_page};
use crate::audit::{CallAudit, PendingEntry, digest};
use crate::auth::{jwk::PublicJwk, registry::AuthRegistry};
use crate::domain::Violations;
use crate::domain::agency::{AgencyId, NewAgency, NewGrant, display_name};
use crate::domain::region::RegionCode;
use crate::domain::scope::Scope;
use crate::error::ApiError;
use crate::proto::{self, agency_admin_service_server::AgencyAdminService};
use crate::store::{NewKey, Store, StoreError};

pub struct AgencyAdminApi {
    store: Arc<dyn Store>,
    registry: Arc<AuthRegistry>,
}

impl AgencyAdminApi {
    pub fn new(store: Arc<dyn Store>, registry: Arc<AuthRegistry>) -> Self {
        Self { store, registry }
    }

    /// The calling administrator's agency.
    fn admin<T>(request: &Request<T>) -> Result<AgencyId, ApiError> {
        let principal = principal(request)?;
        principal.require(Scope::Admin)?;
        Ok(principal.agency_id().clone())
    }

    /// Makes a change through `write`, which commits it together with the call's audit entry
    /// (the request's digest and `detail`, what changed); then lets this replica see the
    /// change at once; the others follow within a poll.
    async fn change<T, Fut>(
        &self,
        audit: &CallAudit,
        request_sha256: [u8; 32],
        detail: serde_json::Value,
        write: impl FnOnce(PendingEntry) -> Fut,
    ) -> Result<T, ApiError>
    where
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let changed = write(audit.entry(0, Some(request_sha256), Some(detail.to_string()))).await?;
        audit.mark_recorded();
        if let Err(error) = self.registry.refresh().await {
            tracing::warn!(%error, "cannot reload agencies after a change");
        }
        Ok(changed)
    }
}

fn agency_id(text: &str, field: &str) -> Result<AgencyId, ApiError> {
    AgencyId::parse(text).map_err(|description| ApiError::invalid(field, description))
}

fn uuid(text: &str, field: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text.trim()).map_err(|_| ApiError::invalid(field, "not a UUID"))
}

#[tonic::async_trait]
impl AgencyAdminService for AgencyAdminApi {
    async fn create_agency(
        &self,
        request: Request<proto::CreateAgencyRequest>,
    ) -> Result<Response<proto::CreateAgencyResponse>, Status> {
        let actor = Self::admin(&request)?;
        let audit = call_audit(&request);
        let message = request.into_inner();
        let request_sha256 = digest(&message);
        let agency = message
            .agency
            .ok_or_else(|| ApiError::invalid("agency", "the agency to create is required"))?;
        let mut violations = Violations::new();
        let id = violations.check("agency.id", AgencyId::parse(&agency.id));
        let kind = violations.check("agency.kind", convert::agency_kind(agency.kind));
        let name = violations.check("agency.display_name", display_name(&agency.display_name));
        let home_region = agency
            .home_region
            .map(|region| region.code)
            .filter(|code| !code.trim().is_empty())
            .and_then(|code| violations.check("agency.home_region.code", RegionCode::parse(&code)));
        let (Some(id), Some(kind), Some(display_name)) = (id, kind, name) else {
            return Err(ApiError::from(violations.into_error()).into());
        };
        violations.finish().map_err(ApiError::from)?;
        audit.touch(id.as_str());
        let detail = json!({
            "action": "create_agency", "by": actor.as_str(), "agency": id.as_str(),
            "kind": kind.as_str(), "display_name": display_name,
            "home_region": home_region.as_ref().map(|r| r.as_str()),
        });
        let created = self
            .change(&audit, request_sha256, detail, |entry| async move {
                self.store
                    .create_agency(
                        &NewAgency {
                            id,
                            kind,
                            display_name,
                            home_region,
                        },
                        &actor,
                        &entry,
                    )
                    .await
            })
            .await?;
        Ok(Response::new(proto::CreateAgencyResponse {
            agency: Some(convert::agency(created)),
        }))
    }

    async fn get_agency(
        &self,
        request: Request<proto::GetAgencyRequest>,
    ) -> Result<Response<proto::GetAgencyResponse>, Status> {
        Self::admin(&request)?;
        let id = agency_id(&request.into_inner().id, "id")?;
        let agency = self
            .store
            .get_agency(&id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::Store(StoreError::NotFound("agency")))?;
        Ok(Response::new(proto::GetAgencyResponse {
            agency: Some(convert::agency(agency)),
        }))
    }

    async fn list_agencies(
        &self,
        request: Request<proto::ListAgenciesRequest>,
    ) -> Result<Response<proto::ListAgenciesResponse>, Status> {
        Self::admin(&request)?;
        let request = request.into_inner();
        let kind = if request.kind == 0 {
            None
        } else {
            Some(convert::agency_kind(request.kind).map_err(|e| ApiError::invalid("kind", e))?)
        };
        let size = page_size_of(request.page_size)?;
        let fingerprint = format!("agencies|{}", kind.map_or("", |k| k.as_str()));
        let after: Option<AgencyId> = cursor_of(&request.page_token, &fingerprint)?;
        let agencies = self
            .store
            .list_agencies(kind, after.as_ref(), size + 1)
            .await
            .map_err(ApiError::from)?;
        let (agencies, next_page_token) =
            split_page(agencies, size, &fingerprint, |agency| agency.id.clone());
        Ok(Response::new(proto::ListAgenciesResponse {
            agencies: agencies.into_iter().map(convert::agency).collect(),
            next_page_token,
        }))
    }

    async fn disable_agency(
        &self,
        request: Request<proto::DisableAgencyRequest>,
    ) -> Result<Response<proto::DisableAgencyResponse>, Status> {
        let actor = Self::admin(&request)?;
        let audit = call_audit(&request);
        let message = request.into_inner();
        let id = agency_id(&message.id, "id")?;
        if id == actor {
            return Err(
                ApiError::invalid("id", "an administrator cannot disable its own agency").into(),
            );
        }
        audit.touch(id.as_str());
        let detail =
            json!({"action": "disable_agency", "by": actor.as_str(), "agency": id.as_str()});
        let agency = self
            .change(&audit, digest(&message), detail, |entry| async move {
                self.store.disable_agency(&id, &actor, &entry).await
            })
            .await?;
        Ok(Response::new(proto::DisableAgencyResponse {
            agency: Some(convert::agency(agency)),
        }))
    }

    async fn register_key(
        &self,
        request: Request<proto::RegisterKeyRequest>,
    ) -> Result<Response<proto::RegisterKeyResponse>, Status> {
        let actor = Self::admin(&request)?;
        let audit = call_audit(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let agency = violations.check("agency_id", AgencyId::parse(&request.agency_id));
        let jwk = violations.check("public_jwk", PublicJwk::parse(&request.public_jwk));
        let (Some(agency_id), Some(jwk)) = (agency, jwk) else {
            return Err(ApiError::from(violations.into_error()).into());
        };
        let kid = jwk.thumbprint();
        audit.touch(agency_id.as_str());
        audit.touch(format!("{agency_id}/{kid}"));
        let detail = json!({
            "action": "register_key", "by": actor.as_str(), "agency": agency_id.as_str(),
            "kid": kid, "alg": jwk.algorithm.as_str(),
        });
        let key = self
            .change(&audit, digest(&request), detail, |entry| async move {
                self.store
                    .register_key(
                        &NewKey {
                            agency_id,
                            kid,
                            algorithm: jwk.algorithm,
                            public_jwk: jwk.canonical_json(),
                        },
                        &actor,
                        &entry,
                    )
                    .await
            })
            .await?;
        Ok(Response::new(proto::RegisterKeyResponse {
            key: Some(convert::agency_key(key)),
        }))
    }

    async fn revoke_key(
        &self,
        request: Request<proto::RevokeKeyRequest>,
    ) -> Result<Response<proto::RevokeKeyResponse>, Status> {
        let actor = Self::admin(&request)?;
        let audit = call_audit(&request);
        let request = request.into_inner();
        let agency = agency_id(&request.agency_id, "agency_id")?;
        if !crate::auth::jwk::is_plausible_kid(&request.kid) {
            return Err(ApiError::invalid("kid", "not a key id").into());
        }
        audit.touch(agency.as_str());
        audit.touch(format!("{agency}/{}", request.kid));
        let detail = json!({
            "action": "revoke_key", "by": actor.as_str(), "agency": agency.as_str(), "kid": request.kid,
        });
        let key = self
            .change(&audit, digest(&request), detail, |entry| async move {
                self.store
                    .revoke_key(&agency, &request.kid, &actor, &entry)
                    .await
            })
            .await?;
        Ok(Response::new(proto::RevokeKeyResponse {
            key: Some(convert::agency_key(key)),
        }))
    }

    async fn list_keys(
        &self,
        request: Request<proto::ListKeysRequest>,
    ) -> Result<Response<proto::ListKeysResponse>, Status> {
        Self::admin(&request)?;
        let agency = agency_id(&request.into_inner().agency_id, "agency_id")?;
        let keys = self
            .store
            .list_keys(&agency)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(proto::ListKeysResponse {
            keys: keys.into_iter().map(convert::agency_key).collect(),
        }))
    }

    async fn grant_scope(
        &self,
        request: Request<proto::GrantScopeRequest>,
    ) -> Result<Response<proto::GrantScopeResponse>, Status> {
        let actor = Self::admin(&request)?;
        let audit = call_audit(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let agency = violations.check("agency_id", AgencyId::parse(&request.agency_id));
        let scope = violations.check("scope", Scope::parse(request.scope.trim()));
        let mut regions = Vec::new();
        for (index, region) in request.regions.iter().enumerate() {
            if let Some(region) = violations.check(
                &format!("regions[{index}].code"),
                RegionCode::parse(&region.code),
            ) && !regions.contains(&region)
            {
                regions.push(region);
            }
        }
        let mut programmes = Vec::new();
        for (index, programme) in request.programmes.iter().enumerate() {
            if let Some(programme) = violations.check(
                &format!("programmes[{index}]"),
                super::convert::programme(*programme),
            ) && !programmes.contains(&programme)
            {
                programmes.push(programme);
            }
        }
        let expires_at = request
            .expire_time
            .and_then(|at| violations.check("expire_time", convert::future_time(&at)));
        let (Some(agency_id), Some(scope)) = (agency, scope) else {
            return Err(ApiError::from(violations.into_error()).into());
        };
        violations.finish().map_err(ApiError::from)?;
        // An agency's kind never changes, so checking it before the write cannot race.
        let kind = self
            .store
            .get_agency(&agency_id)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::Store(StoreError::NotFound("agency")))?
            .kind;
        kind.check_grant(scope).map_err(ApiError::from)?;
        let grant = NewGrant {
            id: Uuid::now_v7(),
            agency_id,
            scope,
            regions,
            programmes,
            expires_at,
        };
        audit.touch(grant.agency_id.as_str());
        audit.touch(grant.id.to_string());
        let detail = json!({
            "action": "grant_scope", "by": actor.as_str(), "agency": grant.agency_id.as_str(),
            "grant": grant.id.to_string(), "scope": grant.scope.as_str(),
            "regions": grant.regions.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "programmes": grant.programmes.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "expires_at": grant.expires_at.map(|at| at.unix_timestamp()),
        });
        let grant = self
            .change(&audit, digest(&request), detail, |entry| async move {
                self.store.grant_scope(&grant, &actor, &entry).await
            })
            .await?;
        Ok(Response::new(proto::GrantScopeResponse {
            grant: Some(convert::grant(grant)),
        }))
    }

    async fn revoke_grant(
        &self,
        request: Request<proto::RevokeGrantRequest>,
    ) -> Result<Response<proto::RevokeGrantResponse>, Status> {
        let actor = Self::admin(&request)?;
        let audit = call_audit(&request);
        let message = request.into_inner();
        let id = uuid(&message.id, "id")?;
        audit.touch(id.to_string());
        let detail =
            json!({"action": "revoke_grant", "by": actor.as_str(), "grant": id.to_string()});
        let grant = self
            .change(&audit, digest(&message), detail, |entry| async move {
                self.store.revoke_grant(id, &actor, &entry).await
            })
            .await?;
        Ok(Response::new(proto::RevokeGrantResponse {
            grant: Some(convert::grant(grant)),
        }))
    }

    async fn list_grants(
        &self,
        request: Request<proto::ListGrantsRequest>,
    ) -> Result<Response<proto::ListGrantsResponse>, Status> {
        Self::admin(&request)?;
        let request = request.into_inner();
        let agency = Some(request.agency_id.trim())
            .filter(|id| !id.is_empty())
            .map(|id| agency_id(id, "agency_id"))
            .transpose()?;
        let size = page_size_of(request.page_size)?;
        let fingerprint = format!(
            "grants|{}|{}",
            agency.as_ref().map_or("", |a| a.as_str()),
            request.include_inactive
        );
        let after: Option<Uuid> = cursor_of(&request.page_token, &fingerprint)?;
        let grants = self
            .store
            .list_grants(agency.as_ref(), request.include_inactive, after, size + 1)
            .await
            .map_err(ApiError::from)?;
        let (grants, next_page_token) = split_page(grants, size, &fingerprint, |grant| grant.id);
        Ok(Response::new(proto::ListGrantsResponse {
            grants: grants.into_iter().map(convert::grant).collect(),
            next_page_token,
        }))
    }
}

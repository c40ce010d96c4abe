//! The [`AgencyStore`](super::AgencyStore) implementation shared by both backends, instantiated
//! by `sql_store_agencies!(StoreType, DatabaseType)` next to `sql_store_common!`. Every change
//! bumps `auth_version` in its own transaction, which is how other replicas learn to reload.

use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use crate::domain::agency::{Agency, AgencyId, AgencyKey, AgencyKind, Grant, KeyAlgorithm};
use crate::domain::region::RegionCode;
use crate::domain::scope::{Programme, Scope};

#[derive(sqlx::FromRow)]
pub(super) struct AgencyRow {
    id: String,
    kind: String,
    display_name: String,
    home_region: Option<String>,
    created_at: OffsetDateTime,
    disabled_at: Option<OffsetDateTime>,
}

pub(super) const AGENCY_COLUMNS: &str =
    "id, kind, display_name, home_region, created_at, disabled_at";

fn corrupt(what: &str, id: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} of {id}"))
}

impl TryFrom<AgencyRow> for Agency {
    type Error = StoreError;

    fn try_from(row: AgencyRow) -> Result<Self, StoreError> {
        Ok(Agency {
            kind: AgencyKind::parse(&row.kind).ok_or_else(|| corrupt("kind", &row.id))?,
            home_region: row
                .home_region
                .as_deref()
                .map(RegionCode::parse)
                .transpose()
                .map_err(|_| corrupt("home region", &row.id))?,
            id: AgencyId::parse(&row.id).map_err(|_| corrupt("id", &row.id))?,
            display_name: row.display_name,
            created_at: row.created_at,
            disabled_at: row.disabled_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct KeyRow {
    agency_id: String,
    kid: String,
    algorithm: String,
    public_jwk: String,
    created_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

pub(super) const KEY_COLUMNS: &str =
    "agency_id, kid, algorithm, public_jwk, created_at, revoked_at";

impl TryFrom<KeyRow> for AgencyKey {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> Result<Self, StoreError> {
        Ok(AgencyKey {
            agency_id: AgencyId::parse(&row.agency_id).map_err(|_| corrupt("agency", &row.kid))?,
            algorithm: KeyAlgorithm::parse(&row.algorithm)
                .ok_or_else(|| corrupt("algorithm", &row.kid))?,
            kid: row.kid,
            public_jwk: row.public_jwk,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct GrantRow {
    id: Uuid,
    agency_id: String,
    scope: String,
    regions: String,
    programmes: String,
    expires_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    granted_by: String,
    revoked_at: Option<OffsetDateTime>,
    revoked_by: Option<String>,
}

pub(super) const GRANT_COLUMNS: &str = "id, agency_id, scope, regions, programmes, expires_at, \
     created_at, granted_by, revoked_at, revoked_by";

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;

    fn try_from(row: GrantRow) -> Result<Self, StoreError> {
        let id = row.id.to_string();
        let agency = |text: &str| AgencyId::parse(text).map_err(|_| corrupt("agency", &id));
        Ok(Grant {
            id: row.id,
            agency_id: agency(&row.agency_id)?,
            scope: Scope::parse(&row.scope).map_err(|_| corrupt("scope", &id))?,
            regions: row
                .regions
                .split_whitespace()
                .map(RegionCode::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| corrupt("regions", &id))?,
            programmes: row
                .programmes
                .split_whitespace()
                .map(|p| Programme::parse(p).ok_or_else(|| corrupt("programmes", &id)))
                .collect::<Result<_, _>>()?,
            expires_at: row.expires_at,
            created_at: row.created_at,
            granted_by: agency(&row.granted_by)?,
            revoked_at: row.revoked_at,
            revoked_by: row.revoked_by.as_deref().map(agency).transpose()?,
        })
    }
}

pub(super) fn joined<T>(items: &[T], text: impl Fn(&T) -> &str) -> String {
    items.iter().map(text).collect::<Vec<_>>().join(" ")
}

macro_rules! sql_store_agencies {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn insert_agency(
                tx: &mut sqlx::Transaction<'_, $db>,
                agency: &$crate::domain::agency::NewAgency,
                actor: &$crate::domain::agency::AgencyId,
            ) -> Result<$crate::domain::agency::Agency, $crate::store::StoreError> {
                let now = $crate::store::now_micros();
                sqlx::query(
                    "INSERT INTO agencies (id, kind, display_name, home_region, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(agency.id.as_str())
                .bind(agency.kind.as_str())
                .bind(&agency.display_name)
                .bind(agency.home_region.as_ref().map(|r| r.as_str()))
                .bind(now)
                .bind(actor.as_str())
                .execute(&mut **tx)
                .await?;
                Ok($crate::domain::agency::Agency {
                    id: agency.id.clone(),
                    kind: agency.kind,
                    display_name: agency.display_name.clone(),
                    home_region: agency.home_region.clone(),
                    created_at: now,
                    disabled_at: None,
                })
            }

            async fn insert_key(
                tx: &mut sqlx::Transaction<'_, $db>,
                key: &$crate::store::NewKey,
                actor: &$crate::domain::agency::AgencyId,
            ) -> Result<$crate::domain::agency::AgencyKey, $crate::store::StoreError> {
                let now = $crate::store::now_micros();
                sqlx::query(
                    "INSERT INTO agency_keys (agency_id, kid, algorithm, public_jwk, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(key.agency_id.as_str())
                .bind(&key.kid)
                .bind(key.algorithm.as_str())
                .bind(&key.public_jwk)
                .bind(now)
                .bind(actor.as_str())
                .execute(&mut **tx)
                .await?;
                Ok($crate::domain::agency::AgencyKey {
                    agency_id: key.agency_id.clone(),
                    kid: key.kid.clone(),
                    algorithm: key.algorithm,
                    public_jwk: key.public_jwk.clone(),
                    created_at: now,
                    revoked_at: None,
                })
            }

            async fn insert_grant(
                tx: &mut sqlx::Transaction<'_, $db>,
                grant: &$crate::domain::agency::NewGrant,
                actor: &$crate::domain::agency::AgencyId,
            ) -> Result<$crate::domain::agency::Grant, $crate::store::StoreError> {
                use $crate::store::agencies::joined;
                let now = $crate::store::now_micros();
                let id = grant.id;
                sqlx::query(
                    "INSERT INTO grants (id, agency_id, scope, regions, programmes, expires_at, \
                     created_at, granted_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id)
                .bind(grant.agency_id.as_str())
                .bind(grant.scope.as_str())
                .bind(joined(&grant.regions, |r| r.as_str()))
                .bind(joined(&grant.programmes, |p| p.as_str()))
                .bind(grant.expires_at)
                .bind(now)
                .bind(actor.as_str())
                .execute(&mut **tx)
                .await?;
                Ok($crate::domain::agency::Grant {
                    id,
                    agency_id: grant.agency_id.clone(),
                    scope: grant.scope,
                    regions: grant.regions.clone(),
                    programmes: grant.programmes.clone(),
                    expires_at: grant.expires_at,
                    created_at: now,
                    granted_by: actor.clone(),
                    revoked_at: None,
                    revoked_by: None,
                })
            }

            async fn bump_auth_version(
                tx: &mut sqlx::Transaction<'_, $db>,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query("UPDATE auth_version SET version = version + 1 WHERE id = 1")
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            async fn require_agency(
                tx: &mut sqlx::Transaction<'_, $db>,
                id: &$crate::domain::agency::AgencyId,
            ) -> Result<(), $crate::store::StoreError> {
                let found: Option<String> =
                    sqlx::query_scalar("SELECT id FROM agencies WHERE id = $1")
                        .bind(id.as_str())
                        .fetch_optional(&mut **tx)
                        .await?;
                found
                    .map(drop)
                    .ok_or($crate::store::StoreError::NotFound("agency"))
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::AgencyStore for $store {
            async fn create_agency(
                &self,
                agency: &$crate::domain::agency::NewAgency,
                actor: &$crate::domain::agency::AgencyId,
                audit: &$crate::audit::PendingEntry,
            ) -> Result<$crate::domain::agency::Agency, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                let created = Self::insert_agency(&mut tx, agency, actor).await?;
                Self::insert_audit_entries(&mut tx, std::slice::from_ref(audit)).await?;
                Self::bump_auth_version(&mut tx).await?;
                tx.commit().await?;
                Ok(created)
            }

            async fn bootstrap_admin(
                &self,
                agency: &$crate::domain::agency::NewAgency,
                key: &$crate::store::NewKey,
                audit: &$crate::audit::PendingEntry,
            ) -> Result<$crate::domain::agency::Agency, $crate::store::StoreError> {
                use $crate::domain::agency::{AgencyKind, NewGrant};
                use $crate::domain::scope::Scope;

                let mut tx = self.begin_write().await?;
                let admins: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM agencies WHERE kind = $1")
                        .bind(AgencyKind::Admin.as_str())
                        .fetch_one(&mut *tx)
                        .await?;
                if admins > 0 {
                    return Err($crate::store::StoreError::AdminExists);
                }
                // The first administrator vouches for itself: there is nobody else.
                let created = Self::insert_agency(&mut tx, agency, &agency.id).await?;
                Self::insert_key(&mut tx, key, &agency.id).await?;
                let grant = NewGrant {
                    id: uuid::Uuid::now_v7(),
                    agency_id: agency.id.clone(),
                    scope: Scope::Admin,
                    regions: Vec::new(),
                    programmes: Vec::new(),
                    expires_at: None,
                };
                Self::insert_grant(&mut tx, &grant, &agency.id).await?;
                Self::insert_audit_entries(&mut tx, std::slice::from_ref(audit)).await?;
                Self::bump_auth_version(&mut tx).await?;
                tx.commit().await?;
                Ok(created)
            }

            async fn get_agency(
                &self,
                id: &$crate::domain::agency::AgencyId,
            ) -> Result<Option<$crate::domain::agency::Agency>, $crate::store::StoreError> {
                use $crate::store::agencies::{AGENCY_COLUMNS, AgencyRow};
                let sql = format!("SELECT {AGENCY_COLUMNS} FROM agencies WHERE id = $1");
                let row: Option<AgencyRow> = sqlx::query_as(&sql)
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn list_agencies(
                &self,
                kind: Option<$crate::domain::agency::AgencyKind>,
                after: Option<&$crate::domain::agency::AgencyId>,
                limit: u32,
            ) -> Result<Vec<$crate::domain::agency::Agency>, $crate::store::StoreError> {
                use $crate::store::agencies::{AGENCY_COLUMNS, AgencyRow};
                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {AGENCY_COLUMNS} FROM agencies WHERE 1 = 1"
                ));
                if let Some(kind) = kind {
                    query.push(" AND kind = ").push_bind(kind.as_str());
                }
                if let Some(after) = after {
                    query.push(" AND id > ").push_bind(after.as_str().to_owned());
                }
                query.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
                let rows: Vec<AgencyRow> = query.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn disable_agency(
                &self,
                id: &$crate::domain::agency::AgencyId,
                actor: &$crate::domain::agency::AgencyId,
                audit: &$crate::audit::PendingEntry,
            ) -> Result<$crate::domain::agency::Agency, $crate::store::StoreError> {
                use $crate::store::agencies::{AGENCY_COLUMNS, AgencyRow};
                let mut tx = self.begin_write().await?;
                Self::insert_audit_entries(&mut tx, std::slice::from_ref(audit)).await?;
                sqlx::query(
                    "UPDATE agencies SET disabled_at = $2, disabled_by = $3 \
                     WHERE id = $1 AND disabled_at IS NULL",
                )
                .bind(id.as_str())
                .bind($crate::store::now_micros())
                .bind(actor.as_str())
                .execute(&mut *tx)
                .await?;
                let sql = format!("SELECT {AGENCY_COLUMNS} FROM agencies WHERE id = $1");
                let row: Option<AgencyRow> = sqlx::query_as(&sql)
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                let agency = row
                    .ok_or($crate::store::StoreError::NotFound("agency"))?
                    .try_into()?;
                Self::bump_auth_version(&mut tx).await?;
                tx.commit().await?;
                Ok(agency)
            }

            async fn register_key(
                &self,
                key: &$crate::store::NewKey,
                actor: &$crate::domain::agency::AgencyId,
                audit: &$crate::audit::PendingEntry,
            ) -> Result<$crate::domain::agency::AgencyKey, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                Self::insert_audit_entries(&mut tx, std::slice::from_ref(audit)).await?;
                Self::require_agency(&mut tx, &key.agency_id).await?;
                let registered = Self::insert_key(&mut tx, key, actor).await?;
                Self::bump_auth_version(&mut tx).await?;
                tx.commit().await?;
                Ok(registered)
            }

            async fn revoke_key(
                &self,
                agency: &$crate::domain::agency::AgencyId,
                kid: &str,
                actor: &$crate::domain::agency::AgencyId,
                audit: &$crate::audit::PendingEntry,
            ) -> Result<$crate::domain::agency::AgencyKey, $crate::store::StoreError> {
                use $crate::store::agencies::{KEY_COLUMNS, KeyRow};
                let mut tx = self.begin_write().await?;
                Self::insert_audit_entries(&mut tx, std::slice::from_ref(audit)).await?;
                sqlx::query(
                    "UPDATE agency_keys SET revoked_at = $3, revoked_by = $4 \
                     WHERE agency_id = $1 AND kid = $2 AND revoked_at IS NULL",
                )
                .bind(agency.as_str())
                .bind(kid)
                .bind($crate::store::now_micros())
                .bind(actor.as_str())
                .execute(&mut *tx)
                .await?;
                let sql =
                    format!("SELECT {KEY_COLUMNS} FROM agency_keys WHERE agency_id = $1 AND kid = $2");
                let row: Option<KeyRow> = sqlx::query_as(&sql)
                    .bind(agency.as_str())
                    .bind(kid)
                    .fetch_optional(&mut *tx)
                    .await?;
                let key = row.ok_or($crate::store::StoreError::NotFound("key"))?.try_into()?;
                Self::bump_auth_version(&mut tx).await?;
                tx.commit().await?;
                Ok(key)
            }

            async fn list_keys(
                &self,
                agency: &$crate::domain::agency::AgencyId,
            ) -> Result<Vec<$crate::domain::agency::AgencyKey>, $crate::store::StoreError> {
                use $crate::store::agencies::{KEY_COLUMNS, KeyRow};
                let sql = format!(
                    "SELECT {KEY_COLUMNS} FROM agency_keys WHERE agency_id = $1 ORDER BY created_at, kid"
                );
                let rows: Vec<KeyRow> = sqlx::query_as(&sql)
                    .bind(agency.as_str())
                    .fetch_all(self.reader())
                    .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn grant_scope(
                &self,
                grant: &$crate::domain::agency::NewGrant,
                actor: &$crate::domain::agency::AgencyId,
                audit: &$crate::audit::PendingEntry,
            ) -> Result<$crate::domain::agency::Grant, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                Self::require_agency(&mut tx, &grant.agency_id).await?;
                Self::insert_audit_entries(&mut tx, std::slice::from_ref(audit)).await?;
                let created = Self::insert_grant(&mut tx, grant, actor).await?;
                Self::bump_auth_version(&mut tx).await?;
                tx.commit().await?;
                Ok(created)
            }

            async fn revoke_grant(
                &self,
                id: uuid::Uuid,
                actor: &$crate::domain::agency::AgencyId,
                audit: &$crate::audit::PendingEntry,
            ) -> Result<$crate::domain::agency::Grant, $crate::store::StoreError> {
                use $crate::store::agencies::{GRANT_COLUMNS, GrantRow};
                let mut tx = self.begin_write().await?;
                Self::insert_audit_entries(&mut tx, std::slice::from_ref(audit)).await?;
                sqlx::query(
                    "UPDATE grants SET revoked_at = $2, revoked_by = $3 \
                     WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind($crate::store::now_micros())
                .bind(actor.as_str())
                .execute(&mut *tx)
                .await?;
                let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1");
                let row: Option<GrantRow> = sqlx::query_as(&sql)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let grant = row.ok_or($crate::store::StoreError::NotFound("grant"))?.try_into()?;
                Self::bump_auth_version(&mut tx).await?;
                tx.commit().await?;
                Ok(grant)
            }

            async fn list_grants(
                &self,
                agency: Option<&$crate::domain::agency::AgencyId>,
                include_inactive: bool,
                after: Option<uuid::Uuid>,
                limit: u32,
            ) -> Result<Vec<$crate::domain::agency::Grant>, $crate::store::StoreError> {
                use $crate::store::agencies::{GRANT_COLUMNS, GrantRow};
                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE 1 = 1"
                ));
                if let Some(agency) = agency {
                    query.push(" AND agency_id = ").push_bind(agency.as_str().to_owned());
                }
                if !include_inactive {
                    query
                        .push(" AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ")
                        .push_bind($crate::store::now_micros())
                        .push(")");
                }
                if let Some(after) = after {
                    query.push(" AND id > ").push_bind(after);
                }
                query.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
                let rows: Vec<GrantRow> = query.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn auth_version(&self) -> Result<i64, $crate::store::StoreError> {
                Ok(sqlx::query_scalar("SELECT version FROM auth_version WHERE id = 1")
                    .fetch_one(self.reader())
                    .await?)
            }

            async fn load_auth_state(
                &self,
            ) -> Result<$crate::store::AuthState, $crate::store::StoreError> {
                use $crate::store::agencies::{
                    AGENCY_COLUMNS, AgencyRow, GRANT_COLUMNS, GrantRow, KEY_COLUMNS, KeyRow,
                };
                // One read transaction, so the version matches the rows read with it.
                let mut tx = self.reader().begin().await?;
                let version: i64 =
                    sqlx::query_scalar("SELECT version FROM auth_version WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?;
                let agencies: Vec<AgencyRow> =
                    sqlx::query_as(&format!("SELECT {AGENCY_COLUMNS} FROM agencies"))
                        .fetch_all(&mut *tx)
                        .await?;
                let keys: Vec<KeyRow> =
                    sqlx::query_as(&format!("SELECT {KEY_COLUMNS} FROM agency_keys"))
                        .fetch_all(&mut *tx)
                        .await?;
                let grants: Vec<GrantRow> = sqlx::query_as(&format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE revoked_at IS NULL"
                ))
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok($crate::store::AuthState {
                    version,
                    agencies: agencies.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?,
                    keys: keys.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?,
                    grants: grants.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?,
                })
            }

            async fn record_assertion(
                &self,
                agency: &$crate::domain::agency::AgencyId,
                jti: &str,
                expires_at: time::OffsetDateTime,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM assertion_jtis WHERE expires_at < $1")
                    .bind($crate::store::now_micros())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO assertion_jtis (agency_id, jti, expires_at) VALUES ($1, $2, $3)",
                )
                .bind(agency.as_str())
                .bind(jti)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

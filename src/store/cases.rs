//! The [`CaseStore`](super::CaseStore) implementation shared by both backends, instantiated by
//! `sql_store_cases!(StoreType, DatabaseType)`.

use uuid::Uuid;

use super::StoreError;
use crate::domain::case_record::{CaseKind, CaseRecord, KindOfCase};
use crate::domain::cases::CaseFacets;
use crate::domain::inspection::Inspection;
use crate::domain::referral::Referral;
use crate::domain::region::RegionCode;
use crate::domain::sanction::SanctionTrack;

/// A case's row: what listings filter and sort on, and the case itself as JSON.
pub(super) struct CaseColumns {
    pub id: Uuid,
    pub kind: &'static str,
    pub employer_id: Uuid,
    pub region_code: String,
    pub province_code: String,
    pub facets: CaseFacets,
    pub revision: i64,
    pub detail: String,
}

impl CaseColumns {
    pub fn of(record: &CaseRecord) -> Result<Self, StoreError> {
        let detail = match record {
            CaseRecord::Inspection(c) => serde_json::to_string(c),
            CaseRecord::Sanction(c) => serde_json::to_string(c),
            CaseRecord::Referral(c) => serde_json::to_string(c),
        }
        .map_err(|e| StoreError::Corrupt(format!("case: {e}")))?;
        let case = record.case();
        let region_code = case.region_code();
        let region = RegionCode::parse(region_code)
            .map_err(|_| StoreError::Corrupt(format!("case region {region_code}")))?;
        Ok(Self {
            id: case.id(),
            kind: record.kind().as_str(),
            employer_id: case.employer_id(),
            region_code: region_code.to_owned(),
            province_code: region.province().as_str().to_owned(),
            facets: case.facets(),
            revision: case.revision(),
            detail,
        })
    }
}

/// A case read back: its kind, JSON and revision.
pub(super) fn case_of(kind: &str, detail: &str, revision: i64) -> Result<CaseRecord, StoreError> {
    fn parse<C: KindOfCase + serde::de::DeserializeOwned>(
        detail: &str,
    ) -> serde_json::Result<CaseRecord> {
        serde_json::from_str::<C>(detail).map(C::into_record)
    }
    let parsed = match CaseKind::from_stored(kind) {
        Some(CaseKind::Inspection) => parse::<Inspection>(detail),
        Some(CaseKind::Sanction) => parse::<SanctionTrack>(detail),
        Some(CaseKind::Referral) => parse::<Referral>(detail),
        None => return Err(StoreError::Corrupt(format!("case: kind {kind}"))),
    };
    let mut case = parsed.map_err(|e| StoreError::Corrupt(format!("case: {e}")))?;
    case.case_mut().set_revision(revision);
    Ok(case)
}

macro_rules! sql_store_cases {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Appends the `WHERE` clause of `filter`.
            fn push_case_filter(
                query: &mut sqlx::QueryBuilder<'static, $db>,
                filter: &$crate::store::CaseFilter,
            ) {
                query.push(" WHERE kind = ").push_bind(filter.kind.as_str());
                if let Some(within) = &filter.within {
                    $crate::store::push_within(query, within);
                }
                if let Some(employer) = filter.employer {
                    query.push(" AND employer_id = ").push_bind(employer);
                }
                if let Some(status) = filter.status {
                    query.push(" AND status = ").push_bind(status);
                }
                if filter.open_only || filter.due_before.is_some() {
                    query.push(" AND is_open");
                }
                if let Some(day) = filter.due_before {
                    query.push(" AND due_on < ").push_bind(day.to_string());
                }
                if let Some(owner) = &filter.owner {
                    query.push(" AND owner_agency = ").push_bind(owner.clone());
                }
                if let Some(counterpart) = &filter.counterpart {
                    query
                        .push(" AND counterpart_agency = ")
                        .push_bind(counterpart.clone());
                }
                if let Some(from) = filter.opened_from {
                    query.push(" AND opened_at >= ").push_bind(from);
                }
                if let Some(before) = filter.opened_before {
                    query.push(" AND opened_at < ").push_bind(before);
                }
            }

            async fn try_save_case(
                &self,
                write: &$crate::store::CaseWrite,
            ) -> Result<$crate::store::CaseSaved, $crate::store::StoreError> {
                use $crate::store::cases::CaseColumns;
                use $crate::store::{CaseSaved, StoreError, now_micros};

                let mut tx = self.begin_write().await?;
                if let Some(key) = &write.idempotency
                    && let Some(first) = Self::replay::<CaseSaved>(&mut tx, key).await?
                {
                    return Ok($crate::store::Replayable::replayed(first));
                }
                let mut case = write.case.clone();
                case.case_mut()
                    .set_revision(write.expected_revision.map_or(1, |r| r + 1));
                let row = CaseColumns::of(&case)?;
                let facets = &row.facets;
                let sql = if write.expected_revision.is_some() {
                    "UPDATE cases SET kind = $2, employer_id = $3, region_code = $4, \
                     province_code = $5, owner_agency = $6, counterpart_agency = $7, \
                     programme_group = $8, reference = $9, status = $10, is_open = $11, \
                     opened_at = $12, closed_at = $13, due_on = $14, amount_recovered = $15, \
                     revision = $16, detail = $17 WHERE id = $1 AND revision = $16 - 1"
                } else {
                    "INSERT INTO cases (id, kind, employer_id, region_code, province_code, \
                     owner_agency, counterpart_agency, programme_group, reference, status, \
                     is_open, opened_at, closed_at, due_on, amount_recovered, revision, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                     $16, $17)"
                };
                let written = sqlx::query(sql)
                    .bind(row.id)
                    .bind(row.kind)
                    .bind(row.employer_id)
                    .bind(&row.region_code)
                    .bind(&row.province_code)
                    .bind(&facets.owner_agency)
                    .bind(&facets.counterpart_agency)
                    .bind(facets.programme_group.map(|group| group.as_str()))
                    .bind(&facets.reference)
                    .bind(facets.status)
                    .bind(facets.is_open)
                    .bind(facets.opened_at)
                    .bind(facets.closed_at)
                    .bind(facets.due_on.map(|day| day.to_string()))
                    .bind($crate::store::common::db_int(facets.amount_recovered))
                    .bind(row.revision)
                    .bind(&row.detail)
                    .execute(&mut *tx)
                    .await?;
                if written.rows_affected() == 0 {
                    let current: Option<i64> =
                        sqlx::query_scalar("SELECT revision FROM cases WHERE id = $1")
                            .bind(row.id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    return Err(match current {
                        Some(revision) => StoreError::EtagMismatch {
                            current: $crate::domain::employer::etag_of(revision),
                        },
                        None => StoreError::NotFound("case"),
                    });
                }
                Self::insert_feed_events(&mut tx, &write.events).await?;
                Self::insert_audit_entries(&mut tx, std::slice::from_ref(&write.audit)).await?;
                let saved = CaseSaved {
                    case,
                    replayed: false,
                };
                if let Some(key) = &write.idempotency {
                    Self::remember(&mut tx, key, &saved, now_micros()).await?;
                }
                tx.commit().await?;
                Ok(saved)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::CaseStore for $store {
            async fn save_case(
                &self,
                write: &$crate::store::CaseWrite,
            ) -> Result<$crate::store::CaseSaved, $crate::store::StoreError> {
                let attempt = self.try_save_case(write).await;
                self.answered_once(attempt, write.idempotency.as_ref())
                    .await
            }

            async fn get_case(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<$crate::domain::case_record::CaseRecord>, $crate::store::StoreError>
            {
                let row: Option<(String, String, i64)> =
                    sqlx::query_as("SELECT kind, detail, revision FROM cases WHERE id = $1")
                        .bind(id)
                        .fetch_optional(self.reader())
                        .await?;
                row.map(|(kind, detail, revision)| {
                    $crate::store::cases::case_of(&kind, &detail, revision)
                })
                .transpose()
            }

            async fn list_cases(
                &self,
                filter: &$crate::store::CaseFilter,
                before: Option<uuid::Uuid>,
                limit: u32,
            ) -> Result<Vec<$crate::domain::case_record::CaseRecord>, $crate::store::StoreError> {
                let mut query =
                    sqlx::QueryBuilder::<$db>::new("SELECT kind, detail, revision FROM cases");
                Self::push_case_filter(&mut query, filter);
                if let Some(before) = before {
                    query.push(" AND id < ").push_bind(before);
                }
                query
                    .push(" ORDER BY id DESC LIMIT ")
                    .push_bind(i64::from(limit));
                let rows: Vec<(String, String, i64)> =
                    query.build_query_as().fetch_all(self.reader()).await?;
                rows.iter()
                    .map(|(kind, detail, revision)| {
                        $crate::store::cases::case_of(kind, detail, *revision)
                    })
                    .collect()
            }

            async fn referral_outcomes(
                &self,
                filter: &$crate::store::CaseFilter,
            ) -> Result<Vec<$crate::domain::referral::Outcome>, $crate::store::StoreError> {
                use $crate::domain::referral::{Outcome, ReferralStatus};
                use $crate::store::StoreError;

                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT region_code, status, opened_at, closed_at, amount_recovered FROM cases",
                );
                Self::push_case_filter(&mut query, filter);
                let rows: Vec<(
                    String,
                    String,
                    time::OffsetDateTime,
                    Option<time::OffsetDateTime>,
                    i64,
                )> = query.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter()
                    .map(|(region_code, status, opened_at, closed_at, recovered)| {
                        Ok(Outcome {
                            status: ReferralStatus::from_stored(&status).ok_or_else(|| {
                                StoreError::Corrupt(format!("referral status {status}"))
                            })?,
                            region_code,
                            opened_at,
                            closed_at,
                            amount_recovered: u64::try_from(recovered).unwrap_or(0),
                        })
                    })
                    .collect()
            }
        }
    };
}

//! Compliance statuses: their recomputation (in a report batch's transaction, or by the status
//! worker from the queue a longer batch leaves), the queue itself, and the reads built on the
//! stored statuses (non-compliant employers, coverage). Instantiated by
//! `sql_store_statuses!(StoreType, DatabaseType)`; the store type provides `BULK_WRITE_SETTING`
//! (a statement run first in the status worker's transactions, if any) and `SKIP_LOCKED` (how
//! the worker passes over employers a write holds).

use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::common::db_int;
use super::reports::EmployerFactsRow;
use crate::domain::compliance::ComplianceStatus;

pub(super) fn status_detail(status: &ComplianceStatus) -> Result<String, StoreError> {
    serde_json::to_string(status).map_err(|e| StoreError::Corrupt(format!("status: {e}")))
}

pub(super) fn parse_status(detail: &str) -> Result<ComplianceStatus, StoreError> {
    serde_json::from_str(detail).map_err(|e| StoreError::Corrupt(format!("status: {e}")))
}

/// A `compliance_status` row to insert or replace.
pub(super) struct StatusRow {
    pub employer_id: Uuid,
    pub group: &'static str,
    pub non_compliant: bool,
    pub categories: i64,
    pub gap: i64,
    pub arrears_amount: i64,
    pub priority: i64,
    pub region_code: String,
    pub province_code: String,
    pub size_class: Option<String>,
    pub detail: String,
    pub computed_at: OffsetDateTime,
}

impl StatusRow {
    pub fn new(employer: &EmployerFactsRow, status: &ComplianceStatus) -> Result<Self, StoreError> {
        Ok(Self {
            employer_id: employer.id,
            group: status.group.as_str(),
            non_compliant: status.is_non_compliant(),
            categories: status.category_mask(),
            gap: i64::from(status.gap),
            arrears_amount: db_int(status.arrears_amount),
            priority: db_int(status.priority_score),
            region_code: employer.region_code.clone(),
            province_code: employer.province_code.clone(),
            size_class: employer.size_class.clone(),
            detail: status_detail(status)?,
            computed_at: status.computed_at,
        })
    }
}

pub(super) const STATUS_INSERT: &str = "INSERT INTO compliance_status (employer_id, programme_group, \
     non_compliant, categories, gap, arrears_amount, priority, region_code, province_code, \
     size_class, detail, computed_at) ";

pub(super) const STATUS_UPSERT_CONFLICT: &str = " ON CONFLICT (employer_id, programme_group) DO UPDATE SET \
     non_compliant = excluded.non_compliant, categories = excluded.categories, gap = excluded.gap, \
     arrears_amount = excluded.arrears_amount, priority = excluded.priority, \
     region_code = excluded.region_code, province_code = excluded.province_code, \
     size_class = excluded.size_class, detail = excluded.detail, computed_at = excluded.computed_at";

/// Employer ids as a status queue entry stores them: 16 bytes each, one after the other.
pub(super) fn pack_ids(ids: impl IntoIterator<Item = Uuid>) -> Vec<u8> {
    ids.into_iter().flat_map(Uuid::into_bytes).collect()
}

/// The employer ids of a status queue entry (see [`pack_ids`]).
pub(super) fn unpack_ids(packed: &[u8]) -> Result<Vec<Uuid>, StoreError> {
    let corrupt = || StoreError::Corrupt("status queue entry: not a list of ids".to_owned());
    let ids = packed.chunks_exact(16);
    if !ids.remainder().is_empty() {
        return Err(corrupt());
    }
    ids.map(|id| Uuid::from_slice(id).map_err(|_| corrupt()))
        .collect()
}

macro_rules! sql_store_statuses {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Recomputes the statuses of `employers` from `reports`, stores those that changed
            /// and adds a STATUS_CHANGED event for each to `events`.
            async fn refresh_statuses(
                tx: &mut sqlx::Transaction<'_, $db>,
                employers: &[&$crate::store::reports::EmployerFactsRow],
                reports: &$crate::store::reports::CurrentReports,
                now: time::OffsetDateTime,
                source: &str,
                events: &mut Vec<$crate::domain::feed::FeedEvent>,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::domain::feed::{FeedEvent, FeedEventType, FeedPayload};
                use $crate::store::statuses::parse_status;

                let with_reports: Vec<_> = employers
                    .iter()
                    .filter(|e| reports.get(&e.id).is_some_and(|r| !r.is_empty()))
                    .collect();
                if with_reports.is_empty() {
                    return Ok(());
                }
                let mut stored = std::collections::HashMap::new();
                for chunk in with_reports.chunks($crate::store::common::ROWS_PER_STATEMENT) {
                    let ids: Vec<uuid::Uuid> = chunk.iter().map(|e| e.id).collect();
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "SELECT employer_id, programme_group, detail, region_code, size_class \
                         FROM compliance_status WHERE employer_id",
                    );
                    Self::push_in(&mut query, &ids);
                    let rows: Vec<(uuid::Uuid, String, String, String, Option<String>)> =
                        query.build_query_as().fetch_all(&mut **tx).await?;
                    for (id, group, detail, region, size) in rows {
                        stored.insert((id, group), (detail, region, size));
                    }
                }

                let time_us = (now.unix_timestamp_nanos() / 1_000) as i64;
                let mut changed = Vec::new();
                for employer in with_reports {
                    let employer_reports = reports.get(&employer.id).map_or(&[][..], |r| r);
                    for status in employer.statuses(employer_reports, now) {
                        let previous =
                            stored.get(&(employer.id, status.group.as_str().to_owned()));
                        let unchanged = previous.is_some_and(|(detail, region, size)| {
                            *region == employer.region_code
                                && *size == employer.size_class
                                && parse_status(detail).is_ok_and(|old| old.same_finding(&status))
                        });
                        if !unchanged {
                            changed.push((*employer, status));
                        }
                    }
                }
                let rows = changed
                    .iter()
                    .map(|(employer, status)| {
                        $crate::store::statuses::StatusRow::new(employer, status)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                for chunk in rows.chunks($crate::store::common::ROWS_PER_STATEMENT) {
                    Self::write_status_rows(tx, chunk).await?;
                }
                for (employer, status) in changed {
                    events.push(FeedEvent::new(
                        FeedEventType::StatusChanged,
                        time_us,
                        &employer.region_code,
                        source,
                        FeedPayload::Status(status),
                    ));
                }
                Ok(())
            }

            /// Leaves `employers` to the status worker, which recomputes their statuses once
            /// the batch has committed (see `migrations/*/0010_status_queue_by_chunk.sql`).
            async fn queue_statuses(
                tx: &mut sqlx::Transaction<'_, $db>,
                employers: &[&$crate::store::reports::EmployerFactsRow],
                source: &str,
            ) -> Result<(), $crate::store::StoreError> {
                for chunk in employers.chunks($crate::store::common::ROWS_PER_STATEMENT) {
                    sqlx::query(
                        "INSERT INTO status_queue (employers, source_agency) VALUES ($1, $2)",
                    )
                    .bind($crate::store::statuses::pack_ids(chunk.iter().map(|e| e.id)))
                    .bind(source)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::StatusStore for $store {
            async fn compliance_statuses(
                &self,
                employer: uuid::Uuid,
            ) -> Result<Vec<$crate::domain::compliance::ComplianceStatus>, $crate::store::StoreError>
            {
                use $crate::store::reports::{CurrentReports, EMPLOYER_FACTS, EmployerFactsRow};

                // Computed from the reports rather than read from compliance_status: a stored
                // status lags while a batch's employers wait for the status worker, and the
                // queue cannot say cheaply whether this employer is among them.
                let mut connection = self.reader().acquire().await?;
                let facts: Option<EmployerFactsRow> =
                    sqlx::query_as(&format!("{EMPLOYER_FACTS} = $1"))
                        .bind(employer)
                        .fetch_optional(&mut *connection)
                        .await?;
                let Some(facts) = facts else {
                    return Ok(Vec::new());
                };
                let mut current = CurrentReports::new();
                Self::current_reports(&mut *connection, &[employer], None, &mut current).await?;
                let reports = current.remove(&employer).unwrap_or_default();
                if reports.is_empty() {
                    return Ok(Vec::new());
                }
                Ok(facts
                    .statuses(&reports, $crate::store::now_micros())
                    .collect())
            }

            async fn recompute_queued_statuses(
                &self,
                after: Option<uuid::Uuid>,
                limit: u32,
            ) -> Result<Option<$crate::store::QueuedRound>, $crate::store::StoreError> {
                use std::collections::{BTreeMap, HashMap};

                use $crate::store::reports::{CurrentReports, EMPLOYER_FACTS, EmployerFactsRow};

                let mut tx = self.begin_write().await?;
                if let Some(setting) = Self::BULK_WRITE_SETTING {
                    sqlx::query(setting).execute(&mut *tx).await?;
                }
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT employer_id, source_agency FROM status_pending",
                );
                if let Some(after) = after {
                    query.push(" WHERE employer_id > ").push_bind(after);
                }
                query
                    .push(" ORDER BY employer_id LIMIT ")
                    .push_bind(i64::from(limit))
                    .push(Self::SKIP_LOCKED);
                let queued: Vec<(uuid::Uuid, String)> =
                    query.build_query_as().fetch_all(&mut *tx).await?;
                let Some(&(last, _)) = queued.last() else {
                    return Ok(None);
                };
                let ids: Vec<uuid::Uuid> = queued.iter().map(|(id, _)| *id).collect();
                // An employer a write holds right now stays queued for a later round: the
                // worker never waits on a write, so it can never deadlock with one.
                let mut query = sqlx::QueryBuilder::<$db>::new(EMPLOYER_FACTS);
                Self::push_in(&mut query, &ids);
                query.push(" ORDER BY id").push(Self::SKIP_LOCKED);
                let employers: Vec<EmployerFactsRow> =
                    query.build_query_as().fetch_all(&mut *tx).await?;
                let taken: Vec<uuid::Uuid> = employers.iter().map(|e| e.id).collect();
                if !taken.is_empty() {
                    let mut current = CurrentReports::new();
                    Self::current_reports(&mut *tx, &taken, None, &mut current).await?;
                    let sources: HashMap<uuid::Uuid, String> = queued.into_iter().collect();
                    let mut by_source: BTreeMap<&str, Vec<&EmployerFactsRow>> = BTreeMap::new();
                    for employer in &employers {
                        let source = sources.get(&employer.id).map_or("", String::as_str);
                        by_source.entry(source).or_default().push(employer);
                    }
                    let now = $crate::store::now_micros();
                    let mut events = Vec::new();
                    for (source, employers) in by_source {
                        Self::refresh_statuses(&mut tx, &employers, &current, now, source, &mut events)
                            .await?;
                    }
                    Self::insert_feed_events(&mut tx, &events).await?;
                    let mut delete =
                        sqlx::QueryBuilder::<$db>::new("DELETE FROM status_pending WHERE employer_id");
                    Self::push_in(&mut delete, &taken);
                    delete.build().execute(&mut *tx).await?;
                    tx.commit().await?;
                }
                Ok(Some($crate::store::QueuedRound {
                    last,
                    recomputed: taken.len() as u64,
                }))
            }

            async fn spread_status_queue(&self) -> Result<bool, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT id, employers, source_agency FROM status_queue ORDER BY id LIMIT 1",
                );
                query.push(Self::SKIP_LOCKED);
                let entry: Option<(i64, Vec<u8>, String)> =
                    query.build_query_as().fetch_optional(&mut *tx).await?;
                let Some((entry, packed, source)) = entry else {
                    return Ok(false);
                };
                let mut ids = $crate::store::statuses::unpack_ids(&packed)?;
                // In id order, like every other writer of these rows, so that two workers
                // spreading entries that share employers cannot deadlock.
                ids.sort_unstable();
                for chunk in ids.chunks($crate::store::common::ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO status_pending (employer_id, source_agency) ",
                    );
                    insert.push_values(chunk, |mut row, id| {
                        row.push_bind(*id).push_bind(source.clone());
                    });
                    insert.push(
                        " ON CONFLICT (employer_id) DO UPDATE \
                         SET source_agency = excluded.source_agency",
                    );
                    insert.build().execute(&mut *tx).await?;
                }
                sqlx::query("DELETE FROM status_queue WHERE id = $1")
                    .bind(entry)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn list_non_compliant(
                &self,
                query: &$crate::domain::compliance::NonCompliantQuery,
                after: Option<&$crate::domain::compliance::NonCompliantCursor>,
                limit: u32,
            ) -> Result<Vec<$crate::store::NonCompliantEntry>, $crate::store::StoreError> {
                use $crate::domain::region::RegionLevel;

                let key = query.order.column();
                let mut sql = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT s.detail, s.sort_key, e.name, e.npwp, e.region_code, e.size_class \
                     FROM (SELECT employer_id, detail, {key} AS sort_key FROM compliance_status \
                     WHERE non_compliant AND programme_group = "
                ));
                sql.push_bind(query.group.as_str());
                if let Some(region) = &query.region {
                    match region.level() {
                        RegionLevel::Province => sql.push(" AND province_code = "),
                        RegionLevel::RegencyOrCity => sql.push(" AND region_code = "),
                    };
                    sql.push_bind(region.as_str());
                }
                if let Some(within) = &query.within {
                    $crate::store::push_within(&mut sql, within);
                }
                if query.categories != 0 {
                    sql.push(" AND (categories & ")
                        .push_bind(query.categories)
                        .push(") <> 0");
                }
                if query.min_gap > 0 {
                    sql.push(" AND gap >= ").push_bind(i64::from(query.min_gap));
                }
                if let Some(size) = query.size_class {
                    sql.push(" AND size_class = ").push_bind(size.as_str());
                }
                if let Some(after) = after {
                    sql.push(format!(" AND ({key} < "))
                        .push_bind(after.key)
                        .push(format!(" OR ({key} = "))
                        .push_bind(after.key)
                        .push(" AND employer_id > ")
                        .push_bind(after.employer_id)
                        .push("))");
                }
                sql.push(format!(" ORDER BY {key} DESC, employer_id LIMIT "))
                    .push_bind(i64::from(limit))
                    .push(
                        ") s JOIN employers e ON e.id = s.employer_id \
                         ORDER BY s.sort_key DESC, s.employer_id",
                    );
                let rows: Vec<(String, i64, String, String, String, Option<String>)> =
                    sql.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter()
                    .map(|(detail, sort_key, name, npwp, region_code, size)| {
                        Ok($crate::store::NonCompliantEntry {
                            status: $crate::store::statuses::parse_status(&detail)?,
                            sort_key,
                            name,
                            npwp,
                            region_code,
                            size_class: size
                                .as_deref()
                                .and_then($crate::domain::employer::SizeClass::from_stored),
                        })
                    })
                    .collect()
            }

            async fn coverage(
                &self,
                region: Option<&$crate::domain::region::RegionCode>,
                period: $crate::domain::compliance::Period,
                group: $crate::domain::compliance::ProgrammeGroup,
            ) -> Result<Vec<$crate::store::CoverageRow>, $crate::store::StoreError> {
                use $crate::domain::region::RegionLevel;

                let level = match region.map(|r| r.level()) {
                    None => "w.province_code",
                    Some(_) => "w.region_code",
                };
                let mut sql = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {level} AS region, COUNT(*) AS employers, \
                     CAST(SUM(w.workers) AS BIGINT) AS reported, \
                     CAST(SUM(COALESCE(r.workers, 0)) AS BIGINT) AS registered, \
                     CAST(SUM(CASE WHEN r.id IS NULL OR r.workers < w.workers \
                     OR r.arrears_amount > 0 THEN 1 ELSE 0 END) AS BIGINT) AS non_compliant \
                     FROM reports w LEFT JOIN reports r ON r.employer_id = w.employer_id \
                     AND NOT r.superseded AND r.series = "
                ));
                sql.push_bind($crate::domain::compliance::registration_series(group, period))
                    .push(" WHERE w.kind = 'workforce' AND NOT w.superseded AND w.period = ")
                    .push_bind(period.to_string());
                if let Some(region) = region {
                    match region.level() {
                        RegionLevel::Province => sql.push(" AND w.province_code = "),
                        RegionLevel::RegencyOrCity => sql.push(" AND w.region_code = "),
                    };
                    sql.push_bind(region.as_str());
                }
                sql.push(format!(" GROUP BY {level} ORDER BY {level}"));
                let rows: Vec<(String, i64, i64, i64, i64)> =
                    sql.build_query_as().fetch_all(self.reader()).await?;
                Ok(rows
                    .into_iter()
                    .map(|(region_code, employers, reported, registered, non_compliant)| {
                        $crate::store::CoverageRow {
                            region_code,
                            employers: employers.max(0) as u64,
                            workers_reported: reported.max(0) as u64,
                            workers_registered: registered.max(0) as u64,
                            non_compliant: non_compliant.max(0) as u64,
                        }
                    })
                    .collect())
            }
        }
    };
}

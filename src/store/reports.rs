//! Compliance reports, the write path: a batch of reports in one transaction with its feed
//! events, its audit entry and (for a batch of one chunk) the statuses it changes; and the
//! reports of an employer read back. Instantiated by `sql_store_reports!(StoreType,
//! DatabaseType)`; the store type provides `LOCK_EMPLOYERS` (appended to the employer lookup of
//! a report batch: on PostgreSQL it locks the employers' rows so concurrent batches for one
//! employer number their versions one after the other) and `REPORT_WRITE_SETTING` (a statement
//! run first in a batch's transaction, if any, which also vouches for its reports' employers).

use std::collections::HashMap;

use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::common::db_int;
use crate::domain::compliance::{
    ComplianceStatus, EmployerFacts, Figures, Period, ProgrammeGroup, Report, compute_status,
};
use crate::domain::employer::SizeClass;

/// The most series a chunk of a batch may write for its current reports to be looked up by
/// employer and series; a chunk with more (layoff reports, one series per document) reads each
/// employer's current reports instead of making one lookup per employer and series.
pub(super) const SERIES_LOOKED_UP: usize = 8;

pub(super) const REPORT_COLUMNS: &str = "id, employer_id, period, version, supersedes, superseded, \
     source_agency, submitted_at, figures";

#[derive(sqlx::FromRow)]
pub(super) struct ReportRow {
    id: Uuid,
    employer_id: Uuid,
    period: String,
    version: i64,
    supersedes: Option<Uuid>,
    superseded: bool,
    source_agency: String,
    submitted_at: OffsetDateTime,
    figures: String,
}

impl TryFrom<ReportRow> for Report {
    type Error = StoreError;

    fn try_from(row: ReportRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("report {}: {what}", row.id));
        Ok(Report {
            period: Period::parse_stored(&row.period).ok_or_else(|| corrupt("period"))?,
            version: u32::try_from(row.version).map_err(|_| corrupt("version"))?,
            figures: serde_json::from_str::<Figures>(&row.figures)
                .map_err(|_| corrupt("figures"))?,
            id: row.id,
            employer_id: row.employer_id,
            supersedes: row.supersedes,
            superseded: row.superseded,
            source_agency: row.source_agency,
            submitted_at: row.submitted_at,
        })
    }
}

/// What a report batch needs to know of an employer.
#[derive(sqlx::FromRow, Debug, Clone)]
pub(super) struct EmployerFactsRow {
    pub id: Uuid,
    pub npwp: String,
    pub region_code: String,
    pub province_code: String,
    pub size_class: Option<String>,
}

impl EmployerFactsRow {
    pub fn size(&self) -> Option<SizeClass> {
        self.size_class.as_deref().and_then(SizeClass::from_stored)
    }

    /// The employer's status in every programme group, computed from its current `reports`.
    pub fn statuses(
        &self,
        reports: &[Report],
        now: OffsetDateTime,
    ) -> impl Iterator<Item = ComplianceStatus> {
        let facts = EmployerFacts {
            size_class: self.size(),
        };
        ProgrammeGroup::ALL
            .into_iter()
            .map(move |group| compute_status(self.id, group, facts, reports, now))
    }
}

/// The columns of [`EmployerFactsRow`].
pub(super) const EMPLOYER_FACTS: &str = "SELECT id, npwp, region_code, province_code, size_class \
     FROM employers WHERE id";

/// A `reports` row to insert.
pub(super) struct ReportInsert {
    pub id: Uuid,
    pub employer_id: Uuid,
    pub kind: &'static str,
    pub group: Option<&'static str>,
    pub period: String,
    pub series: String,
    pub version: i64,
    pub supersedes: Option<Uuid>,
    pub superseded: bool,
    pub source_agency: String,
    pub submitted_at: OffsetDateTime,
    pub figures: String,
    pub workers: i64,
    pub arrears_amount: i64,
    pub region_code: String,
    pub province_code: String,
}

impl ReportInsert {
    pub fn new(report: &Report, employer: &EmployerFactsRow) -> Result<Self, StoreError> {
        let arrears = match &report.figures {
            Figures::Registration { arrears_amount, .. } => *arrears_amount,
            _ => 0,
        };
        Ok(Self {
            id: report.id,
            employer_id: report.employer_id,
            kind: report.figures.kind().as_str(),
            group: report.figures.group().map(|g| g.as_str()),
            period: report.period.to_string(),
            series: report.series(),
            version: i64::from(report.version),
            supersedes: report.supersedes,
            superseded: report.superseded,
            source_agency: report.source_agency.clone(),
            submitted_at: report.submitted_at,
            figures: serde_json::to_string(&report.figures)
                .map_err(|e| StoreError::Corrupt(format!("report figures: {e}")))?,
            workers: i64::from(report.figures.workers()),
            arrears_amount: db_int(arrears),
            region_code: employer.region_code.clone(),
            province_code: employer.province_code.clone(),
        })
    }
}

pub(super) const REPORT_INSERT: &str = "INSERT INTO reports (id, employer_id, kind, programme_group, \
     period, series, version, supersedes, superseded, source_agency, submitted_at, figures, \
     workers, arrears_amount, region_code, province_code) ";

/// The reports of each employer of a batch, updated as items are applied in order.
pub(super) type CurrentReports = HashMap<Uuid, Vec<Report>>;

macro_rules! sql_store_reports {
    ($store:ty, $db:ty) => {
        impl $store {
            /// The employers named by ids or NPWPs, locked for the batch where the backend
            /// needs it.
            async fn batch_employers(
                tx: &mut sqlx::Transaction<'_, $db>,
                ids: &[uuid::Uuid],
                npwps: &[String],
            ) -> Result<Vec<$crate::store::reports::EmployerFactsRow>, $crate::store::StoreError>
            {
                let mut found = Vec::new();
                if !ids.is_empty() {
                    let mut query =
                        sqlx::QueryBuilder::<$db>::new($crate::store::reports::EMPLOYER_FACTS);
                    Self::push_in(&mut query, ids);
                    query.push(" ORDER BY id").push(Self::LOCK_EMPLOYERS);
                    found.extend(query.build_query_as().fetch_all(&mut **tx).await?);
                }
                if !npwps.is_empty() {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "SELECT id, npwp, region_code, province_code, size_class FROM employers \
                         WHERE npwp",
                    );
                    Self::push_in(&mut query, npwps);
                    query.push(" ORDER BY id").push(Self::LOCK_EMPLOYERS);
                    found.extend(query.build_query_as().fetch_all(&mut **tx).await?);
                }
                Ok(found)
            }

            /// The reports matching `condition` (a filter ending in the column compared) for
            /// any of `keys`, and with `series` only those in any of them; a statement per
            /// `ROWS_PER_STATEMENT` keys.
            async fn reports_where(
                connection: &mut <$db as sqlx::Database>::Connection,
                condition: &str,
                keys: &[uuid::Uuid],
                series: Option<&[String]>,
            ) -> Result<Vec<$crate::domain::compliance::Report>, $crate::store::StoreError> {
                use $crate::store::reports::{REPORT_COLUMNS, ReportRow};
                let mut reports = Vec::with_capacity(keys.len());
                for chunk in keys.chunks($crate::store::common::ROWS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {REPORT_COLUMNS} FROM reports WHERE {condition}"
                    ));
                    Self::push_in(&mut query, chunk);
                    if let Some(series) = series {
                        query.push(" AND series");
                        Self::push_in(&mut query, series);
                    }
                    let rows: Vec<ReportRow> =
                        query.build_query_as().fetch_all(&mut *connection).await?;
                    for row in rows {
                        reports.push($crate::domain::compliance::Report::try_from(row)?);
                    }
                }
                Ok(reports)
            }

            /// The current (not superseded) reports of these employers; with `series`, only
            /// those in any of them. A batch that leaves its statuses to the worker needs only
            /// the series it writes, to supersede them, and not an employer's other current
            /// reports (a year of monthly reports is three dozen). Each employer is looked up
            /// once per series, so `series` must be few (see `SERIES_LOOKED_UP`).
            async fn current_reports(
                connection: &mut <$db as sqlx::Database>::Connection,
                employers: &[uuid::Uuid],
                series: Option<&[String]>,
                into: &mut $crate::store::reports::CurrentReports,
            ) -> Result<(), $crate::store::StoreError> {
                let reports = Self::reports_where(
                    connection,
                    "NOT superseded AND employer_id",
                    employers,
                    series,
                )
                .await?;
                for report in reports {
                    into.entry(report.employer_id).or_default().push(report);
                }
                Ok(())
            }

            async fn try_submit_reports(
                &self,
                batch: &$crate::store::ReportBatch,
                items: &mut dyn $crate::store::ReportChunks,
            ) -> Result<$crate::store::SubmitOutcome, $crate::store::StoreError> {
                use std::collections::{HashMap, HashSet};

                use $crate::domain::compliance::{EmployerRef, Report};
                use $crate::domain::feed::{FeedEvent, FeedEventType, FeedPayload};
                use $crate::store::reports::CurrentReports;
                use $crate::store::{StoreError, SubmitOutcome, now_micros};

                let mut tx = self.begin_write().await?;
                if let Some(setting) = Self::REPORT_WRITE_SETTING {
                    sqlx::query(setting).execute(&mut *tx).await?;
                }
                if let Some(key) = &batch.idempotency
                    && let Some(first) = Self::replay::<SubmitOutcome>(&mut tx, key).await?
                {
                    return Ok($crate::store::Replayable::replayed(first));
                }
                // A batch written in one chunk recomputes its statuses in place; a longer one
                // leaves them to the status worker, and queues each chunk's feed events as one
                // bundle: a million-report batch queued a million rows or more otherwise.
                let many_chunks = $crate::store::spans_chunks(items.remaining());

                let now = now_micros();
                let time_us = (now.unix_timestamp_nanos() / 1_000) as i64;
                let source = batch.source.as_str();
                let mut outcome = SubmitOutcome {
                    accepted: 0,
                    superseded: 0,
                    last: None,
                    replayed: false,
                };
                let mut offset: u64 = 0;
                while let Some(chunk) = items.next_chunk()? {
                    let ids: Vec<uuid::Uuid> = chunk
                        .iter()
                        .filter_map(|item| match &item.employer {
                            EmployerRef::Id(id) => Some(*id),
                            EmployerRef::Npwp(_) => None,
                        })
                        .collect::<HashSet<_>>()
                        .into_iter()
                        .collect();
                    let npwps: Vec<String> = chunk
                        .iter()
                        .filter_map(|item| match &item.employer {
                            EmployerRef::Npwp(npwp) => Some(npwp.as_str().to_owned()),
                            EmployerRef::Id(_) => None,
                        })
                        .collect::<HashSet<_>>()
                        .into_iter()
                        .collect();
                    let found = Self::batch_employers(&mut tx, &ids, &npwps).await?;
                    let by_id: HashMap<uuid::Uuid, &_> = found.iter().map(|e| (e.id, e)).collect();
                    let by_npwp: HashMap<&str, &_> =
                        found.iter().map(|e| (e.npwp.as_str(), e)).collect();

                    let mut employers = Vec::with_capacity(chunk.len());
                    for (index, item) in chunk.iter().enumerate() {
                        let index = offset + index as u64;
                        let employer = match &item.employer {
                            EmployerRef::Id(id) => by_id.get(id),
                            EmployerRef::Npwp(npwp) => by_npwp.get(npwp.as_str()),
                        }
                        .copied()
                        .ok_or(StoreError::UnknownEmployer { index })?;
                        let inside =
                            $crate::domain::region::RegionCode::parse(&employer.region_code)
                                .is_ok_and(|region| batch.writable.allows(&region));
                        if !inside {
                            return Err(StoreError::ItemOutsideRegion {
                                index,
                                region: employer.region_code.clone(),
                            });
                        }
                        employers.push(employer);
                    }

                    let touched: Vec<uuid::Uuid> = employers
                        .iter()
                        .map(|e| e.id)
                        .collect::<HashSet<_>>()
                        .into_iter()
                        .collect();
                    // Statuses computed here need every current report; superseding needs
                    // only those of the series the chunk writes (one or two in a monthly batch).
                    let only_series: Option<Vec<String>> = many_chunks
                        .then(|| {
                            chunk
                                .iter()
                                .map(|item| item.series())
                                .collect::<HashSet<_>>()
                                .into_iter()
                                .collect()
                        })
                        .filter(|series: &Vec<String>| {
                            series.len() <= $crate::store::reports::SERIES_LOOKED_UP
                        });
                    let mut current = CurrentReports::new();
                    Self::current_reports(&mut *tx, &touched, only_series.as_deref(), &mut current)
                        .await?;

                    // Items apply in order: a later item of the same series corrects an
                    // earlier one, even within this chunk.
                    let mut superseded_stored = Vec::new();
                    let mut new_reports: Vec<Report> = Vec::with_capacity(chunk.len());
                    let mut events = Vec::with_capacity(chunk.len() * 3);
                    for (item, employer) in chunk.into_iter().zip(&employers) {
                        let series = item.series();
                        let reports = current.entry(employer.id).or_default();
                        let previous = reports
                            .iter()
                            .position(|r| !r.superseded && r.series() == series);
                        let mut report = Report {
                            id: uuid::Uuid::now_v7(),
                            employer_id: employer.id,
                            period: item.period,
                            version: 1,
                            supersedes: None,
                            superseded: false,
                            source_agency: source.to_owned(),
                            submitted_at: now,
                            figures: item.figures,
                        };
                        if let Some(position) = previous {
                            let old = &mut reports[position];
                            old.superseded = true;
                            report.version = old.version + 1;
                            report.supersedes = Some(old.id);
                            outcome.superseded += 1;
                            match new_reports.iter_mut().find(|r| r.id == old.id) {
                                Some(pending) => pending.superseded = true,
                                None => superseded_stored.push(old.id),
                            }
                            events.push(FeedEvent::new(
                                FeedEventType::ReportSuperseded,
                                time_us,
                                &employer.region_code,
                                source,
                                FeedPayload::Report(old.clone()),
                            ));
                        }
                        events.push(FeedEvent::new(
                            FeedEventType::ReportSubmitted,
                            time_us,
                            &employer.region_code,
                            source,
                            FeedPayload::Report(report.clone()),
                        ));
                        reports.push(report.clone());
                        new_reports.push(report);
                    }

                    if !superseded_stored.is_empty() {
                        let mut query = sqlx::QueryBuilder::<$db>::new(
                            "UPDATE reports SET superseded = TRUE WHERE id",
                        );
                        Self::push_in(&mut query, &superseded_stored);
                        query.build().execute(&mut *tx).await?;
                    }
                    let rows = new_reports
                        .iter()
                        .zip(&employers)
                        .map(|(report, employer)| {
                            $crate::store::reports::ReportInsert::new(report, employer)
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Self::write_report_rows(&mut tx, &rows).await?;

                    let unique: Vec<&_> = {
                        let mut seen = HashSet::new();
                        employers
                            .iter()
                            .copied()
                            .filter(|e| seen.insert(e.id))
                            .collect()
                    };
                    if many_chunks {
                        Self::queue_statuses(&mut tx, &unique, source).await?;
                        Self::insert_feed_bundle(&mut tx, &events).await?;
                    } else {
                        Self::refresh_statuses(
                            &mut tx,
                            &unique,
                            &current,
                            now,
                            source,
                            &mut events,
                        )
                        .await?;
                        Self::insert_feed_events(&mut tx, &events).await?;
                    }

                    outcome.accepted += new_reports.len() as u64;
                    offset += new_reports.len() as u64;
                    if let Some(last) = new_reports.pop() {
                        outcome.last = Some(last);
                    }
                }

                Self::insert_audit_entries(&mut tx, std::slice::from_ref(&batch.audit)).await?;
                if let Some(key) = &batch.idempotency {
                    Self::remember(&mut tx, key, &outcome, now).await?;
                }
                tx.commit().await?;
                Ok(outcome)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::ReportStore for $store {
            async fn submit_reports(
                &self,
                batch: &$crate::store::ReportBatch,
                items: &mut dyn $crate::store::ReportChunks,
            ) -> Result<$crate::store::SubmitOutcome, $crate::store::StoreError> {
                let attempt = self.try_submit_reports(batch, items).await;
                self.answered_once(attempt, batch.idempotency.as_ref())
                    .await
            }

            async fn list_reports(
                &self,
                employer: uuid::Uuid,
                kind: Option<$crate::domain::compliance::ReportKind>,
                include_superseded: bool,
                after: Option<&$crate::store::ReportCursor>,
                limit: u32,
            ) -> Result<Vec<$crate::domain::compliance::Report>, $crate::store::StoreError> {
                use $crate::store::reports::{REPORT_COLUMNS, ReportRow};

                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {REPORT_COLUMNS} FROM reports WHERE employer_id = "
                ));
                query.push_bind(employer);
                if let Some(kind) = kind {
                    query.push(" AND kind = ").push_bind(kind.as_str());
                }
                if !include_superseded {
                    query.push(" AND NOT superseded");
                }
                if let Some(after) = after {
                    query
                        .push(" AND (period < ")
                        .push_bind(after.period.clone())
                        .push(" OR (period = ")
                        .push_bind(after.period.clone())
                        .push(" AND (series > ")
                        .push_bind(after.series.clone())
                        .push(" OR (series = ")
                        .push_bind(after.series.clone())
                        .push(" AND version < ")
                        .push_bind(i64::from(after.version))
                        .push("))))");
                }
                query
                    .push(" ORDER BY period DESC, series, version DESC LIMIT ")
                    .push_bind(i64::from(limit));
                let rows: Vec<ReportRow> = query.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter()
                    .map($crate::domain::compliance::Report::try_from)
                    .collect()
            }
        }
    };
}

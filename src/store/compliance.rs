//! The [`ComplianceStore`](super::ComplianceStore) and [`FeedStore`](super::FeedStore)
//! implementations shared by both backends, instantiated by
//! `sql_store_compliance!(StoreType, DatabaseType)`. The store type provides `LOCK_EMPLOYERS`
//! (appended to the employer lookup of a report batch: on PostgreSQL it locks the employers'
//! rows so concurrent batches for one employer number their versions one after the other),
//! `LOCK_FEED_HEAD` (the feed sequencer's lock, like the audit log's), `BULK_WRITE_SETTING`
//! (a statement run first in the status worker's transactions, if any), `REPORT_WRITE_SETTING`
//! (the same for a report batch's, which also vouches for its reports' employers) and
//! `SKIP_LOCKED` (how the status worker passes over employers a write holds).

use std::collections::HashMap;

use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use crate::domain::compliance::{
    ComplianceStatus, EmployerFacts, Figures, Period, ProgrammeGroup, Report, compute_status,
};
use crate::domain::employer::SizeClass;
use crate::domain::feed::{FeedEvent, FeedEventType, FeedPayload};
use crate::domain::scope::Scope;

/// Rows per multi-row statement where a row has many columns: keeps every statement under
/// SQLite's limit of bound parameters.
pub(super) const ROWS_PER_STATEMENT: usize = 1000;

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

/// Marks an agency (rather than an agency kind) in a feed event's stored audience.
const PARTY_PREFIX: &str = "agency:";

#[derive(sqlx::FromRow)]
pub(super) struct FeedRow {
    seq: i64,
    event_type: String,
    time_us: i64,
    employer_id: String,
    region_code: String,
    read_scope: String,
    audience: String,
    source_agency: String,
    payload: String,
}

impl TryFrom<FeedRow> for FeedEvent {
    type Error = StoreError;

    fn try_from(row: FeedRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("feed event {}: {what}", row.seq));
        Ok(FeedEvent {
            seq: u64::try_from(row.seq).map_err(|_| corrupt("seq"))?,
            event_type: FeedEventType::from_stored(&row.event_type)
                .ok_or_else(|| corrupt("type"))?,
            time_us: row.time_us,
            employer_id: Uuid::parse_str(&row.employer_id).map_err(|_| corrupt("employer"))?,
            region_code: row.region_code,
            read_scope: Scope::parse(&row.read_scope).map_err(|_| corrupt("scope"))?,
            audience: row
                .audience
                .split_whitespace()
                .filter(|token| !token.starts_with(PARTY_PREFIX))
                .map(|kind| {
                    crate::domain::agency::AgencyKind::parse(kind)
                        .ok_or_else(|| corrupt("audience"))
                })
                .collect::<Result<_, _>>()?,
            parties: row
                .audience
                .split_whitespace()
                .filter_map(|token| token.strip_prefix(PARTY_PREFIX))
                .map(str::to_owned)
                .collect(),
            source_agency: row.source_agency,
            payload: serde_json::from_str::<FeedPayload>(&row.payload)
                .map_err(|_| corrupt("payload"))?,
        })
    }
}

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

/// A feed event to write: queued in `feed_pending`, or numbered into `feed_events`.
pub(super) struct FeedInsert {
    pub event_type: &'static str,
    pub time_us: i64,
    pub employer_id: String,
    pub region_code: String,
    pub read_scope: &'static str,
    pub audience: String,
    pub source_agency: String,
    pub payload: String,
}

impl FeedInsert {
    pub fn new(event: &FeedEvent) -> Result<Self, StoreError> {
        Ok(Self {
            event_type: event.event_type.as_str(),
            time_us: event.time_us,
            employer_id: event.employer_id.to_string(),
            region_code: event.region_code.clone(),
            read_scope: event.read_scope.as_str(),
            audience: event
                .audience
                .iter()
                .map(|kind| kind.as_str().to_owned())
                .chain(
                    event
                        .parties
                        .iter()
                        .map(|agency| format!("{PARTY_PREFIX}{agency}")),
                )
                .collect::<Vec<_>>()
                .join(" "),
            source_agency: event.source_agency.clone(),
            payload: serde_json::to_string(&event.payload)
                .map_err(|e| StoreError::Corrupt(format!("feed payload: {e}")))?,
        })
    }
}

/// The feed events of one chunk of a report batch, queued as one `feed_pending` row (see
/// `migrations/*/0011_feed_bundles.sql`): which report each event carries, not the report, so
/// that the batch writes a few bytes per event. The sequencer reads the reports back by id and
/// numbers the events in this order. A stored report never changes but for being superseded,
/// which the event's type says it was or was not when the event happened.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct FeedBundle {
    #[prost(int64, tag = "1")]
    pub time_us: i64,
    #[prost(string, tag = "2")]
    pub source_agency: String,
    #[prost(message, repeated, tag = "3")]
    pub events: Vec<BundledEvent>,
}

/// A report event of a [`FeedBundle`].
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct BundledEvent {
    /// REPORT_SUPERSEDED rather than REPORT_SUBMITTED.
    #[prost(bool, tag = "1")]
    pub superseded: bool,
    /// The report's id, 16 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub report_id: Vec<u8>,
    /// The employer's region when the event happened.
    #[prost(string, tag = "3")]
    pub region_code: String,
}

impl FeedBundle {
    /// The bundle of a chunk's report events, all of one time and source.
    pub fn of(events: &[FeedEvent]) -> Result<Self, StoreError> {
        let first = events
            .first()
            .ok_or_else(|| StoreError::Corrupt("a feed bundle of no events".to_owned()))?;
        let events = events
            .iter()
            .map(|event| match (&event.event_type, &event.payload) {
                (
                    kind @ (FeedEventType::ReportSubmitted | FeedEventType::ReportSuperseded),
                    FeedPayload::Report(report),
                ) => Ok(BundledEvent {
                    superseded: *kind == FeedEventType::ReportSuperseded,
                    report_id: report.id.as_bytes().to_vec(),
                    region_code: event.region_code.clone(),
                }),
                _ => Err(StoreError::Corrupt(format!(
                    "a {} event cannot be bundled",
                    event.event_type.as_str()
                ))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            time_us: first.time_us,
            source_agency: first.source_agency.clone(),
            events,
        })
    }

    pub fn decode_stored(id: i64, stored: &[u8]) -> Result<Self, StoreError> {
        <Self as prost::Message>::decode(stored)
            .map_err(|e| StoreError::Corrupt(format!("queued feed bundle {id}: {e}")))
    }

    /// The ids of the reports the events carry.
    pub fn report_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        self.events
            .iter()
            .map(|event| {
                Uuid::from_slice(&event.report_id).map_err(|_| {
                    StoreError::Corrupt("queued feed bundle: a report id is not 16 bytes".into())
                })
            })
            .collect()
    }

    /// The bundle's events, given the [`Self::report_ids`] and the reports read back by them.
    pub fn unpack(
        &self,
        ids: &[Uuid],
        reports: &HashMap<Uuid, Report>,
    ) -> Result<Vec<FeedInsert>, StoreError> {
        ids.iter()
            .zip(&self.events)
            .map(|(id, event)| {
                let mut report = reports.get(id).cloned().ok_or_else(|| {
                    StoreError::Corrupt(format!("queued feed bundle: report {id} is missing"))
                })?;
                report.superseded = event.superseded;
                let event_type = if event.superseded {
                    FeedEventType::ReportSuperseded
                } else {
                    FeedEventType::ReportSubmitted
                };
                FeedInsert::new(&FeedEvent::new(
                    event_type,
                    self.time_us,
                    &event.region_code,
                    &self.source_agency,
                    FeedPayload::Report(report),
                ))
            })
            .collect()
    }
}

/// A `feed_pending` row a sequencing round takes: one event, or a bundle of `events`.
#[derive(sqlx::FromRow)]
pub(super) struct PendingFeed {
    pub id: i64,
    pub events: i64,
    pub bundled: bool,
}

/// The rows of one sequencing round out of `rows`, in queue order: rows are taken while fewer
/// than `limit` events are, so a round ends within one bundle of `limit`. Whether rows were
/// left over tells the caller the queue is not drained.
pub(super) fn sequencing_round<T>(
    rows: Vec<T>,
    limit: u32,
    events: impl Fn(&T) -> i64,
) -> (Vec<T>, bool) {
    let fetched = rows.len();
    let mut taken_events = 0;
    let round: Vec<T> = rows
        .into_iter()
        .take_while(|row| {
            let take = taken_events < i64::from(limit);
            taken_events += events(row);
            take
        })
        .collect();
    let left_over = round.len() < fetched;
    (round, left_over)
}

pub(super) const REPORT_INSERT: &str = "INSERT INTO reports (id, employer_id, kind, programme_group, \
     period, series, version, supersedes, superseded, source_agency, submitted_at, figures, \
     workers, arrears_amount, region_code, province_code) ";

pub(super) const STATUS_INSERT: &str = "INSERT INTO compliance_status (employer_id, programme_group, \
     non_compliant, categories, gap, arrears_amount, priority, region_code, province_code, \
     size_class, detail, computed_at) ";

/// The columns of a feed event, in `feed_pending` and, after `seq`, in `feed_events`.
pub(super) const FEED_COLUMNS: &str =
    "event_type, time_us, employer_id, region_code, read_scope, audience, source_agency, payload";

/// The start of a multi-row insert of feed events: queued in `feed_pending`, or `numbered`
/// into `feed_events` (their sequence numbers first).
pub(super) fn feed_insert(numbered: bool) -> String {
    if numbered {
        format!("INSERT INTO feed_events (seq, {FEED_COLUMNS}) ")
    } else {
        format!("INSERT INTO feed_pending ({FEED_COLUMNS}) ")
    }
}

pub(super) const STATUS_UPSERT_CONFLICT: &str = " ON CONFLICT (employer_id, programme_group) DO UPDATE SET \
     non_compliant = excluded.non_compliant, categories = excluded.categories, gap = excluded.gap, \
     arrears_amount = excluded.arrears_amount, priority = excluded.priority, \
     region_code = excluded.region_code, province_code = excluded.province_code, \
     size_class = excluded.size_class, detail = excluded.detail, computed_at = excluded.computed_at";

/// Figures above `i64::MAX` cannot occur in practice; clamp rather than fail a write.
pub(super) fn db_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

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

/// The reports of each employer of a batch, updated as items are applied in order.
pub(super) type CurrentReports = HashMap<Uuid, Vec<Report>>;

macro_rules! sql_store_compliance {
    ($store:ty, $db:ty) => {
        impl $store {
            /// The employers named by ids or NPWPs, locked for the batch where the backend
            /// needs it.
            async fn batch_employers(
                tx: &mut sqlx::Transaction<'_, $db>,
                ids: &[uuid::Uuid],
                npwps: &[String],
            ) -> Result<Vec<$crate::store::compliance::EmployerFactsRow>, $crate::store::StoreError>
            {
                let mut found = Vec::new();
                if !ids.is_empty() {
                    let mut query =
                        sqlx::QueryBuilder::<$db>::new($crate::store::compliance::EMPLOYER_FACTS);
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
                use $crate::store::compliance::{REPORT_COLUMNS, ReportRow};
                let mut reports = Vec::with_capacity(keys.len());
                for chunk in keys.chunks($crate::store::compliance::ROWS_PER_STATEMENT) {
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
                into: &mut $crate::store::compliance::CurrentReports,
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

            /// Recomputes the statuses of `employers` from `reports`, stores those that changed
            /// and adds a STATUS_CHANGED event for each to `events`.
            async fn refresh_statuses(
                tx: &mut sqlx::Transaction<'_, $db>,
                employers: &[&$crate::store::compliance::EmployerFactsRow],
                reports: &$crate::store::compliance::CurrentReports,
                now: time::OffsetDateTime,
                source: &str,
                events: &mut Vec<$crate::domain::feed::FeedEvent>,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::domain::feed::{FeedEvent, FeedEventType, FeedPayload};
                use $crate::store::compliance::parse_status;

                let with_reports: Vec<_> = employers
                    .iter()
                    .filter(|e| reports.get(&e.id).is_some_and(|r| !r.is_empty()))
                    .collect();
                if with_reports.is_empty() {
                    return Ok(());
                }
                let mut stored = std::collections::HashMap::new();
                for chunk in with_reports.chunks($crate::store::compliance::ROWS_PER_STATEMENT) {
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
                        $crate::store::compliance::StatusRow::new(employer, status)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                for chunk in rows.chunks($crate::store::compliance::ROWS_PER_STATEMENT) {
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
                employers: &[&$crate::store::compliance::EmployerFactsRow],
                source: &str,
            ) -> Result<(), $crate::store::StoreError> {
                for chunk in employers.chunks($crate::store::compliance::ROWS_PER_STATEMENT) {
                    sqlx::query(
                        "INSERT INTO status_queue (employers, source_agency) VALUES ($1, $2)",
                    )
                    .bind($crate::store::compliance::pack_ids(chunk.iter().map(|e| e.id)))
                    .bind(source)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }

            /// Queues feed events for the sequencer, inside the change's transaction.
            async fn insert_feed_events(
                tx: &mut sqlx::Transaction<'_, $db>,
                events: &[$crate::domain::feed::FeedEvent],
            ) -> Result<(), $crate::store::StoreError> {
                let rows = events
                    .iter()
                    .map($crate::store::compliance::FeedInsert::new)
                    .collect::<Result<Vec<_>, _>>()?;
                for chunk in rows.chunks($crate::store::compliance::ROWS_PER_STATEMENT) {
                    Self::write_feed_rows(tx, None, chunk).await?;
                }
                Ok(())
            }

            /// Queues a chunk's report events for the sequencer as one bundle (one
            /// `feed_pending` row).
            async fn insert_feed_bundle(
                tx: &mut sqlx::Transaction<'_, $db>,
                events: &[$crate::domain::feed::FeedEvent],
            ) -> Result<(), $crate::store::StoreError> {
                use prost::Message;

                let bundle = $crate::store::compliance::FeedBundle::of(events)?;
                sqlx::query("INSERT INTO feed_pending (events, bundle) VALUES ($1, $2)")
                    .bind(bundle.events.len() as i64)
                    .bind(bundle.encode_to_vec())
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// The events of a queued bundle, with the reports they carry read back.
            async fn unpack_feed_bundle(
                tx: &mut sqlx::Transaction<'_, $db>,
                id: i64,
                stored: &[u8],
            ) -> Result<Vec<$crate::store::compliance::FeedInsert>, $crate::store::StoreError> {
                let bundle = $crate::store::compliance::FeedBundle::decode_stored(id, stored)?;
                let ids = bundle.report_ids()?;
                let reports = Self::reports_where(&mut **tx, "id", &ids, None)
                    .await?
                    .into_iter()
                    .map(|report| (report.id, report))
                    .collect();
                bundle.unpack(&ids, &reports)
            }

            /// Copies the single queued events `ids` into the feed, numbered in id order after
            /// `head`.
            async fn number_single_feed_events(
                tx: &mut sqlx::Transaction<'_, $db>,
                head: i64,
                ids: &[i64],
            ) -> Result<(), $crate::store::StoreError> {
                if ids.is_empty() {
                    return Ok(());
                }
                let mut insert = sqlx::QueryBuilder::<$db>::new(
                    $crate::store::compliance::feed_insert(true),
                );
                insert.push("SELECT ");
                insert.push_bind(head).push(format!(
                    " + ROW_NUMBER() OVER (ORDER BY id), {} FROM feed_pending WHERE id",
                    $crate::store::compliance::FEED_COLUMNS
                ));
                Self::push_in(&mut insert, ids);
                insert.build().execute(&mut **tx).await?;
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
                use $crate::store::compliance::CurrentReports;
                use $crate::store::{StoreError, SubmitOutcome, now_micros};

                let mut tx = self.begin_write().await?;
                if let Some(setting) = Self::REPORT_WRITE_SETTING {
                    sqlx::query(setting).execute(&mut *tx).await?;
                }
                if let Some(key) = &batch.idempotency
                    && let Some(first) = Self::replay::<SubmitOutcome>(&mut tx, key).await?
                {
                    return Ok(SubmitOutcome {
                        replayed: true,
                        ..first
                    });
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
                        let inside = $crate::domain::region::RegionCode::parse(
                            &employer.region_code,
                        )
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
                            series.len() <= $crate::store::compliance::SERIES_LOOKED_UP
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
                            $crate::store::compliance::ReportInsert::new(report, employer)
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
                        Self::refresh_statuses(&mut tx, &unique, &current, now, source, &mut events)
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
        impl $crate::store::ComplianceStore for $store {
            async fn submit_reports(
                &self,
                batch: &$crate::store::ReportBatch,
                items: &mut dyn $crate::store::ReportChunks,
            ) -> Result<$crate::store::SubmitOutcome, $crate::store::StoreError> {
                match self.try_submit_reports(batch, items).await {
                    // A concurrent call with the same request_id committed first: answer with
                    // its result, as a retry after it would have been answered.
                    Err($crate::store::StoreError::Duplicate {
                        resource: "request", ..
                    }) if batch.idempotency.is_some() => {
                        let key = batch.idempotency.as_ref().expect("checked by the guard");
                        let mut tx = self.begin_write().await?;
                        let first: Option<$crate::store::SubmitOutcome> =
                            Self::replay(&mut tx, key).await?;
                        first
                            .map(|first| $crate::store::SubmitOutcome {
                                replayed: true,
                                ..first
                            })
                            .ok_or($crate::store::StoreError::RequestIdReused)
                    }
                    outcome => outcome,
                }
            }

            async fn list_reports(
                &self,
                employer: uuid::Uuid,
                kind: Option<$crate::domain::compliance::ReportKind>,
                include_superseded: bool,
                after: Option<&$crate::store::ReportCursor>,
                limit: u32,
            ) -> Result<Vec<$crate::domain::compliance::Report>, $crate::store::StoreError> {
                use $crate::store::compliance::{REPORT_COLUMNS, ReportRow};

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

            async fn compliance_statuses(
                &self,
                employer: uuid::Uuid,
            ) -> Result<Vec<$crate::domain::compliance::ComplianceStatus>, $crate::store::StoreError>
            {
                use $crate::store::compliance::{CurrentReports, EMPLOYER_FACTS, EmployerFactsRow};

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

                use $crate::store::compliance::{CurrentReports, EMPLOYER_FACTS, EmployerFactsRow};

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
                let mut ids = $crate::store::compliance::unpack_ids(&packed)?;
                // In id order, like every other writer of these rows, so that two workers
                // spreading entries that share employers cannot deadlock.
                ids.sort_unstable();
                for chunk in ids.chunks($crate::store::compliance::ROWS_PER_STATEMENT) {
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
                            status: $crate::store::compliance::parse_status(&detail)?,
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

        #[async_trait::async_trait]
        impl $crate::store::FeedStore for $store {
            async fn sequence_feed(
                &self,
                limit: u32,
            ) -> Result<(u64, u64), $crate::store::StoreError> {
                if !self.feed_waiting().await? {
                    return Ok((0, 0));
                }
                let mut tx = self.begin_sequencing().await?;
                let head: i64 = sqlx::query_scalar(Self::LOCK_FEED_HEAD)
                    .fetch_one(&mut *tx)
                    .await?;
                let (pending, mark) = self.take_pending_feed(&mut tx, limit).await?;
                if pending.is_empty() {
                    self.feed_moved(mark);
                    return Ok((0, head.max(0) as u64));
                }
                let bundled: Vec<i64> = pending.iter().filter(|p| p.bundled).map(|p| p.id).collect();
                let mut bundles = std::collections::HashMap::new();
                if !bundled.is_empty() {
                    let mut query =
                        sqlx::QueryBuilder::<$db>::new("SELECT id, bundle FROM feed_pending WHERE id");
                    Self::push_in(&mut query, &bundled);
                    let rows: Vec<(i64, Vec<u8>)> = query.build_query_as().fetch_all(&mut *tx).await?;
                    bundles.extend(rows);
                }
                // Events are numbered in queue order, a bundle's in its own order. Single
                // events move inside the database, only their ids travelling; a bundle is
                // unpacked here.
                let mut numbered = head;
                let mut singles: Vec<i64> = Vec::new();
                for entry in &pending {
                    if !entry.bundled {
                        singles.push(entry.id);
                        continue;
                    }
                    Self::number_single_feed_events(&mut tx, numbered, &singles).await?;
                    numbered += singles.len() as i64;
                    singles.clear();
                    let stored = bundles.remove(&entry.id).ok_or_else(|| {
                        $crate::store::StoreError::Corrupt(format!(
                            "queued feed bundle {} vanished while its round held the feed",
                            entry.id
                        ))
                    })?;
                    let events = Self::unpack_feed_bundle(&mut tx, entry.id, &stored).await?;
                    for chunk in events.chunks($crate::store::compliance::ROWS_PER_STATEMENT) {
                        Self::write_feed_rows(&mut tx, Some(numbered + 1), chunk).await?;
                        numbered += chunk.len() as i64;
                    }
                }
                Self::number_single_feed_events(&mut tx, numbered, &singles).await?;
                numbered += singles.len() as i64;

                let ids: Vec<i64> = pending.iter().map(|p| p.id).collect();
                let mut delete = sqlx::QueryBuilder::<$db>::new("DELETE FROM feed_pending WHERE id");
                Self::push_in(&mut delete, &ids);
                delete.build().execute(&mut *tx).await?;
                sqlx::query("UPDATE feed_head SET size = $1 WHERE id = 1")
                    .bind(numbered)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                self.feed_moved(mark);
                Ok(((numbered - head) as u64, numbered as u64))
            }

            async fn feed_head(&self) -> Result<u64, $crate::store::StoreError> {
                let head: i64 = sqlx::query_scalar("SELECT size FROM feed_head WHERE id = 1")
                    .fetch_one(self.reader())
                    .await?;
                Ok(head.max(0) as u64)
            }

            async fn feed_events(
                &self,
                after: u64,
                limit: u32,
            ) -> Result<Vec<$crate::domain::feed::FeedEvent>, $crate::store::StoreError> {
                let rows: Vec<$crate::store::compliance::FeedRow> = sqlx::query_as(
                    "SELECT seq, event_type, time_us, employer_id, region_code, read_scope, \
                     audience, source_agency, payload FROM feed_events WHERE seq > $1 \
                     ORDER BY seq LIMIT $2",
                )
                .bind($crate::store::compliance::db_int(after))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await?;
                rows.into_iter()
                    .map($crate::domain::feed::FeedEvent::try_from)
                    .collect()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::sequencing_round;

    #[test]
    fn a_round_takes_rows_until_it_holds_the_limit() {
        let events = |row: &i64| *row;
        assert_eq!(
            sequencing_round(vec![1, 1, 1], 10, events),
            (vec![1, 1, 1], false)
        );
        // The row that reaches the limit is the round's last; the rest wait.
        assert_eq!(
            sequencing_round(vec![4, 5, 3, 1], 10, events),
            (vec![4, 5, 3], true)
        );
        // A bundle larger than the limit still makes a round of its own.
        assert_eq!(sequencing_round(vec![25, 1], 10, events), (vec![25], true));
        assert_eq!(
            sequencing_round(Vec::new(), 10, events),
            (Vec::new(), false)
        );
    }
}

//! Persistence behind one [`Store`] trait with two implementations: SQLite (embedded default) and
//! PostgreSQL (production). Both run the same SQL text where the dialects agree — parameters are
//! written `$n`, which SQLite accepts too — and are generated from one body per aggregate by
//! `sql_store_<aggregate>!` macros, because sqlx's generic executor bounds cannot express "any of
//! these two databases" in async code that must be `Send`. Dialect differences (connecting,
//! pools, schema types, the statements that differ) stay in `sqlite.rs` and `postgres.rs`.
//!
//! One file per aggregate, each implementing its trait of this module: `common.rs` (transactions,
//! idempotency, employers), `agencies.rs`, `audit.rs`, `cases.rs`, `reports.rs` (the report
//! batch write path), `statuses.rs` (status recomputation, the status queue, the reads built on
//! statuses) and `feed.rs` (queueing, numbering and reading the change feed). Beside them,
//! `employer_reads.rs` lets single-employer reads that arrive together share one query, and
//! `kept_connections.rs` keeps connections out of the pool between queries.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::{
    PendingEntry,
    merkle::{Hash, NodeId},
};
use crate::config::Config;
use crate::domain::agency::{
    Agency, AgencyId, AgencyKey, AgencyKind, Grant, KeyAlgorithm, NewAgency, NewGrant,
};
use crate::domain::case_record::{CaseKind, CaseRecord};
use crate::domain::compliance::{
    ComplianceStatus, NewReport, NonCompliantCursor, NonCompliantQuery, Period, ProgrammeGroup,
    Report, ReportKind,
};
use crate::domain::employer::{
    Employer, EmployerDraft, EmployerFilter, EmployerKey, NameQuery, SizeClass,
};
use crate::domain::feed::FeedEvent;
use crate::domain::referral::Outcome;
use crate::domain::region::RegionCode;
use crate::domain::scope::RegionScope;

#[macro_use]
mod common;
use common::{EMPLOYER_COLUMNS, EmployerRow, like_contains, now_micros, push_within};
#[macro_use]
mod agencies;
#[macro_use]
mod audit;
#[macro_use]
mod cases;
#[macro_use]
mod feed;
#[macro_use]
mod reports;
#[macro_use]
mod statuses;
mod employer_reads;
mod kept_connections;
pub mod postgres;
pub mod sqlite;

/// Errors a store reports; `grpc` turns them into statuses in one place (`crate::error`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique value is taken: `field` of `resource`, held by `holder` where known.
    #[error("{field} is already held by another {resource}")]
    Duplicate {
        resource: &'static str,
        field: &'static str,
        holder: Option<String>,
    },
    #[error("the record changed since it was read (now at etag {current})")]
    EtagMismatch { current: String },
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database failure")]
    Internal(#[source] sqlx::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("an administrator agency already exists")]
    AdminExists,
    #[error("the record lies in region {0}, outside the caller's grant")]
    OutsideRegion(String),
    /// Item `index` of a report batch names an employer that does not exist.
    #[error("item {index}: no such employer")]
    UnknownEmployer { index: u64 },
    /// Item `index` of a report batch concerns an employer outside the caller's grant.
    #[error("item {index}: the employer lies in region {region}, outside the caller's grant")]
    ItemOutsideRegion { index: u64, region: String },
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Self::Unavailable(error)
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                // SQLite names the table and columns in its message, PostgreSQL names the
                // constraint; both contain the table name and, for employers, the column.
                let text = format!("{} {}", db.message(), db.constraint().unwrap_or_default());
                let (resource, field) = if text.contains("cases") && text.contains("reference") {
                    ("referral", "skk_number")
                } else if text.contains("cases")
                    && (text.contains("open_sanction") || text.contains("programme_group"))
                {
                    ("sanction track", "employer_id")
                } else if text.contains("idempotency_keys") {
                    ("request", "request_id")
                } else if text.contains("assertion_jtis") {
                    ("assertion", "jti")
                } else if text.contains("agency_keys") {
                    ("key", "kid")
                } else if text.contains("agencies") {
                    ("agency", "id")
                } else if text.contains("npp") {
                    ("employer", "bpjs_tk_npp")
                } else if text.contains("nib") {
                    ("employer", "nib")
                } else if text.contains("npwp") {
                    ("employer", "npwp")
                } else {
                    return Self::Internal(error);
                };
                Self::Duplicate {
                    resource,
                    field,
                    holder: None,
                }
            }
            _ => Self::Internal(error),
        }
    }
}

/// Identifies a retried write (AIP-155): the caller, its key, which method, and a digest of the
/// request so a key reused for a different request is refused rather than answered wrongly.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub caller: String,
    pub request_id: String,
    pub method: &'static str,
    pub request_digest: Vec<u8>,
}

/// A validated employer write and its preconditions.
#[derive(Debug, Clone)]
pub struct UpsertEmployer {
    pub draft: EmployerDraft,
    pub expected_etag: Option<String>,
    pub idempotency: Option<IdempotencyKey>,
    /// Where the caller may write: an update of an employer outside it is refused, checked in
    /// the same transaction as the write.
    pub writable: RegionScope,
    /// The call's audit entry, committed with the write.
    pub audit: PendingEntry,
}

/// The stored result of an idempotent write, answered again to a retry.
pub(crate) trait Replayable: serde::de::DeserializeOwned {
    /// The result as answered to a retry: nothing was written this time.
    fn replayed(self) -> Self;
}

macro_rules! replayable {
    ($($outcome:ty),+) => {
        $(impl Replayable for $outcome {
            fn replayed(self) -> Self {
                Self {
                    replayed: true,
                    ..self
                }
            }
        })+
    };
}

replayable!(UpsertOutcome, SubmitOutcome, CaseSaved);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpsertOutcome {
    pub employer: Employer,
    pub created: bool,
    /// True when the answer is the stored result of an earlier call with the same request id,
    /// and nothing (not even the audit entry) was written.
    #[serde(skip)]
    pub replayed: bool,
}

/// Where a name search resumes: the last (folded name, id) returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameCursor {
    pub name_folded: String,
    pub id: Uuid,
}

/// Everything the service persists, one implementation per backend.
#[async_trait]
pub trait Store:
    EmployerStore
    + AgencyStore
    + AuditStore
    + ReportStore
    + StatusStore
    + FeedStore
    + CaseStore
    + Send
    + Sync
    + 'static
{
    /// Which backend this is, for logs and the bench.
    fn backend(&self) -> &'static str;

    /// Applies all of the schema's migrations that have not run yet.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Forgets idempotency records made before `before`; returns how many. A retry with such
    /// a `request_id` is then treated as a new request.
    async fn purge_idempotency_keys(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// How busy the connection pools are now, for the metrics.
    fn pool_usage(&self) -> Vec<crate::metrics::PoolUsage>;
}

pub fn pool_usage<DB: sqlx::Database>(
    name: &'static str,
    pool: &sqlx::Pool<DB>,
) -> crate::metrics::PoolUsage {
    crate::metrics::PoolUsage {
        pool: name,
        open: pool.size(),
        idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        max: pool.options().get_max_connections(),
    }
}

/// The employer registry.
#[async_trait]
pub trait EmployerStore: Send + Sync {
    async fn upsert_employer(&self, command: &UpsertEmployer) -> Result<UpsertOutcome, StoreError>;

    async fn find_employer(&self, key: &EmployerKey) -> Result<Option<Employer>, StoreError>;

    /// Up to `limit` employers matching `filter`, in id order, after `after`.
    async fn list_employers(
        &self,
        filter: &EmployerFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Employer>, StoreError>;

    /// Up to `limit` employers whose folded name contains the query, in name order, after
    /// `after`, limited to `within` when given.
    async fn search_employers(
        &self,
        query: &NameQuery,
        within: Option<&[RegionCode]>,
        after: Option<&NameCursor>,
        limit: u32,
    ) -> Result<Vec<Employer>, StoreError>;
}

/// A key to register.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub agency_id: AgencyId,
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    pub public_jwk: String,
}

/// Everything token checks need, read at once.
#[derive(Debug, Clone, Default)]
pub struct AuthState {
    /// Changes whenever any agency, key or grant changes.
    pub version: i64,
    pub agencies: Vec<Agency>,
    pub keys: Vec<AgencyKey>,
    /// Grants not withdrawn (expiry is checked per call).
    pub grants: Vec<Grant>,
}

/// Agencies, keys and grants. `actor` is the agency on whose authority a change is made;
/// `audit` is the change's audit entry, committed in the same transaction.
#[async_trait]
pub trait AgencyStore: Send + Sync {
    async fn create_agency(
        &self,
        agency: &NewAgency,
        actor: &AgencyId,
        audit: &PendingEntry,
    ) -> Result<Agency, StoreError>;

    /// Creates the first administrator agency with its key and the `admin` grant, refusing with
    /// [`StoreError::AdminExists`] once any administrator exists.
    async fn bootstrap_admin(
        &self,
        agency: &NewAgency,
        key: &NewKey,
        audit: &PendingEntry,
    ) -> Result<Agency, StoreError>;

    async fn get_agency(&self, id: &AgencyId) -> Result<Option<Agency>, StoreError>;

    /// Up to `limit` agencies in id order after `after`, optionally of one kind.
    async fn list_agencies(
        &self,
        kind: Option<AgencyKind>,
        after: Option<&AgencyId>,
        limit: u32,
    ) -> Result<Vec<Agency>, StoreError>;

    async fn disable_agency(
        &self,
        id: &AgencyId,
        actor: &AgencyId,
        audit: &PendingEntry,
    ) -> Result<Agency, StoreError>;

    async fn register_key(
        &self,
        key: &NewKey,
        actor: &AgencyId,
        audit: &PendingEntry,
    ) -> Result<AgencyKey, StoreError>;

    async fn revoke_key(
        &self,
        agency: &AgencyId,
        kid: &str,
        actor: &AgencyId,
        audit: &PendingEntry,
    ) -> Result<AgencyKey, StoreError>;

    async fn list_keys(&self, agency: &AgencyId) -> Result<Vec<AgencyKey>, StoreError>;

    async fn grant_scope(
        &self,
        grant: &NewGrant,
        actor: &AgencyId,
        audit: &PendingEntry,
    ) -> Result<Grant, StoreError>;

    async fn revoke_grant(
        &self,
        id: Uuid,
        actor: &AgencyId,
        audit: &PendingEntry,
    ) -> Result<Grant, StoreError>;

    /// Up to `limit` grants in id (creation) order after `after`.
    async fn list_grants(
        &self,
        agency: Option<&AgencyId>,
        include_inactive: bool,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Grant>, StoreError>;

    /// The counter every agency, key or grant change increments.
    async fn auth_version(&self) -> Result<i64, StoreError>;

    async fn load_auth_state(&self) -> Result<AuthState, StoreError>;

    /// Remembers a client assertion id until it expires; a second use is
    /// [`StoreError::Duplicate`]. Forgets expired ones on the way.
    async fn record_assertion(
        &self,
        agency: &AgencyId,
        jti: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// Which audit events a listing returns; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub agency: Option<String>,
    pub method: Option<String>,
    pub resource_id: Option<String>,
    pub start_us: Option<i64>,
    pub end_us: Option<i64>,
    pub decision: Option<&'static str>,
    /// Limits the listing to what this agency may see without `audit.read`: its own calls, and
    /// the calls that touched records it wrote — employers it registered or updated, and the
    /// records whose readers name it with [`crate::audit::written_by`] (its reports, its cases
    /// and their steps).
    pub visible_to: Option<String>,
}

/// The audit log: pending entries, the sequenced log and its Merkle tree.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends entries in one transaction (group commit).
    async fn append_audit(&self, entries: &[PendingEntry]) -> Result<(), StoreError>;

    /// Gives up to `limit` pending entries their sequence numbers and extends the tree;
    /// returns how many it sequenced.
    async fn sequence_audit(&self, limit: u32) -> Result<u64, StoreError>;

    /// Indexes the records touched by up to `limit` more entries, where the index is built
    /// after the append (SQLite); returns how many entries it covered. Searches by record are
    /// exact either way: they read entries past the index from the log itself.
    async fn index_audit_records(&self, limit: u32) -> Result<u64, StoreError>;

    /// The tree's size and root.
    async fn audit_head(&self) -> Result<(u64, Hash), StoreError>;

    /// The stored hashes of these complete subtrees (missing ones are left out).
    async fn audit_nodes(&self, nodes: &[NodeId]) -> Result<HashMap<NodeId, Hash>, StoreError>;

    /// The canonical bytes of entries `[start, end)` with their sequence numbers.
    async fn audit_entries(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;

    /// Up to `limit` entries matching `filter` after sequence number `after`.
    async fn list_audit_events(
        &self,
        filter: &AuditFilter,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
}

/// A batch of reports from one call and what it must satisfy.
#[derive(Debug, Clone)]
pub struct ReportBatch {
    /// The agency submitting.
    pub source: AgencyId,
    /// Where the caller may write: every item's employer must lie inside.
    pub writable: RegionScope,
    pub idempotency: Option<IdempotencyKey>,
    /// The call's audit entry, committed with the reports.
    pub audit: PendingEntry,
}

/// The items of a batch, handed over in chunks so a batch of any size is written with bounded
/// memory.
pub trait ReportChunks: Send {
    /// The next items (at most [`REPORT_CHUNK`]), or `None` after the last.
    fn next_chunk(&mut self) -> Result<Option<Vec<NewReport>>, StoreError>;

    /// Items not yet handed over.
    fn remaining(&self) -> u64;
}

/// Items written per multi-row statement.
pub const REPORT_CHUNK: usize = 1000;

/// Whether a batch of `items` is written in more than one chunk: such a batch gathers its feed
/// events apart until it commits (where the backend needs it) and leaves its statuses to the
/// status worker.
pub fn spans_chunks(items: u64) -> bool {
    items > REPORT_CHUNK as u64
}

/// One report in memory, as a batch of one.
pub struct SingleReport(pub Option<NewReport>);

impl ReportChunks for SingleReport {
    fn next_chunk(&mut self) -> Result<Option<Vec<NewReport>>, StoreError> {
        Ok(self.0.take().map(|report| vec![report]))
    }

    fn remaining(&self) -> u64 {
        u64::from(self.0.is_some())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitOutcome {
    pub accepted: u64,
    pub superseded: u64,
    /// The last report stored.
    pub last: Option<Report>,
    #[serde(skip)]
    pub replayed: bool,
}

/// Where a report listing resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportCursor {
    pub period: String,
    pub series: String,
    pub version: u32,
}

/// An entry of `ListNonCompliant`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonCompliantEntry {
    pub name: String,
    pub npwp: String,
    pub region_code: String,
    pub size_class: Option<SizeClass>,
    pub status: ComplianceStatus,
    pub sort_key: i64,
}

/// A round of the status worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedRound {
    /// The last queued employer the round looked at: the next round starts after it.
    pub last: Uuid,
    /// Employers recomputed and taken off the queue (those a write held stay queued).
    pub recomputed: u64,
}

/// Coverage figures of one region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoverageRow {
    pub region_code: String,
    pub employers: u64,
    pub workers_reported: u64,
    pub workers_registered: u64,
    pub non_compliant: u64,
}

/// Compliance reports.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Stores every report of `items` in one transaction with their feed events and the audit
    /// entry, or nothing. The statuses the reports change are recomputed in the same
    /// transaction when `items` fit in one chunk; a larger batch queues its employers for
    /// [`StatusStore::recompute_queued_statuses`] instead.
    async fn submit_reports(
        &self,
        batch: &ReportBatch,
        items: &mut dyn ReportChunks,
    ) -> Result<SubmitOutcome, StoreError>;

    /// Up to `limit` reports of an employer, newest period first.
    async fn list_reports(
        &self,
        employer: Uuid,
        kind: Option<ReportKind>,
        include_superseded: bool,
        after: Option<&ReportCursor>,
        limit: u32,
    ) -> Result<Vec<Report>, StoreError>;
}

/// Compliance statuses: computed, queued for the status worker, and read.
#[async_trait]
pub trait StatusStore: Send + Sync {
    /// The statuses of an employer (none before its first report), computed from its current
    /// reports: what the status worker stores, also while a batch has left it queued there.
    async fn compliance_statuses(
        &self,
        employer: Uuid,
    ) -> Result<Vec<ComplianceStatus>, StoreError>;

    /// Moves the employers of the oldest entry a report batch left in the status queue (one
    /// entry per chunk) to the queue of employers that
    /// [`recompute_queued_statuses`](Self::recompute_queued_statuses) goes through in id
    /// order. `false` when no entry was left to take.
    async fn spread_status_queue(&self) -> Result<bool, StoreError>;

    /// Recomputes the statuses of up to `limit` queued employers, the first ones after `after`
    /// in id order, and stores those that changed with their feed events. `None` when no
    /// employer is queued after `after`.
    async fn recompute_queued_statuses(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Option<QueuedRound>, StoreError>;

    async fn list_non_compliant(
        &self,
        query: &NonCompliantQuery,
        after: Option<&NonCompliantCursor>,
        limit: u32,
    ) -> Result<Vec<NonCompliantEntry>, StoreError>;

    /// Coverage in `period` for `group`, one row per province (`region` unset), per regency of
    /// a province, or for one regency.
    async fn coverage(
        &self,
        region: Option<&RegionCode>,
        period: Period,
        group: ProgrammeGroup,
    ) -> Result<Vec<CoverageRow>, StoreError>;
}

/// The change feed.
#[async_trait]
pub trait FeedStore: Send + Sync {
    /// Numbers about `limit` pending events after the feed's head (a round ends with the queued
    /// row that reaches `limit`, which may be a bundle of many); returns how many it numbered
    /// and, when that is not zero, the new head. Fewer than `limit` means the queue is drained.
    async fn sequence_feed(&self, limit: u32) -> Result<(u64, u64), StoreError>;

    /// The cursor of the last numbered event.
    async fn feed_head(&self) -> Result<u64, StoreError>;

    /// Up to `limit` events after `after`, in order.
    async fn feed_events(&self, after: u64, limit: u32) -> Result<Vec<FeedEvent>, StoreError>;
}

/// A new case or a step of one, with what commits beside it.
#[derive(Debug, Clone)]
pub struct CaseWrite {
    /// The case as it is to be stored.
    pub case: CaseRecord,
    /// The revision the step was taken on (the etag the caller presented); `None` for a new case.
    pub expected_revision: Option<i64>,
    pub idempotency: Option<IdempotencyKey>,
    /// The call's audit entry, committed with the case.
    pub audit: PendingEntry,
    /// The change's feed events.
    pub events: Vec<FeedEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseSaved {
    /// The case as stored, with its new revision.
    pub case: CaseRecord,
    #[serde(skip)]
    pub replayed: bool,
}

/// Which cases a listing returns.
#[derive(Debug, Clone)]
pub struct CaseFilter {
    pub kind: CaseKind,
    /// Only these regions; `None`: any.
    pub within: Option<Vec<RegionCode>>,
    pub employer: Option<Uuid>,
    pub status: Option<&'static str>,
    pub open_only: bool,
    /// Only open cases due before this day (overdue today).
    pub due_before: Option<time::Date>,
    /// Only cases opened by this agency.
    pub owner: Option<String>,
    /// Only cases whose other party is this agency.
    pub counterpart: Option<String>,
    pub opened_from: Option<OffsetDateTime>,
    pub opened_before: Option<OffsetDateTime>,
}

impl CaseFilter {
    pub fn of(kind: CaseKind) -> Self {
        Self {
            kind,
            within: None,
            employer: None,
            status: None,
            open_only: false,
            due_before: None,
            owner: None,
            counterpart: None,
            opened_from: None,
            opened_before: None,
        }
    }
}

/// Inspections, sanction tracks and referrals.
#[async_trait]
pub trait CaseStore: Send + Sync {
    /// Stores a new case, or a step of one if it is still at `expected_revision`
    /// ([`StoreError::EtagMismatch`] otherwise), with its audit entry and feed events.
    async fn save_case(&self, write: &CaseWrite) -> Result<CaseSaved, StoreError>;

    async fn get_case(&self, id: Uuid) -> Result<Option<CaseRecord>, StoreError>;

    /// Up to `limit` cases matching `filter`, newest first, before `before`.
    async fn list_cases(
        &self,
        filter: &CaseFilter,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<CaseRecord>, StoreError>;

    /// What the statistics need of every referral matching `filter`.
    async fn referral_outcomes(&self, filter: &CaseFilter) -> Result<Vec<Outcome>, StoreError>;
}

/// Opens the database the configuration names: PostgreSQL for a `postgres://` URL, otherwise
/// SQLite (a `sqlite://` URL, or `sinergi.db` in the data directory).
pub async fn connect(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    match config.database_url.as_deref() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(
                postgres::PostgresStore::connect(
                    url,
                    config.database.max_connections,
                    config.database.acquire_timeout(),
                )
                .await?,
            ))
        }
        Some(url) => Ok(Arc::new(
            sqlite::SqliteStore::open_url(url, &config.database).await?,
        )),
        None => Ok(Arc::new(
            sqlite::SqliteStore::open_in_dir(&config.data_dir, &config.database).await?,
        )),
    }
}

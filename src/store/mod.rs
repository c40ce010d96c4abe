//! Persistence behind one [`Store`] trait with two implementations: SQLite (embedded default) and
//! PostgreSQL (production). Both run the same SQL text where the dialects agree — parameters are
//! written `$n`, which SQLite accepts too — and are generated from one body by
//! [`sql_store_common!`], because sqlx's generic executor bounds cannot express "any of these two
//! databases" in async code that must be `Send`. Dialect differences (connecting, pools, schema
//! types) stay in `sqlite.rs` and `postgres.rs`.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::Config;
use crate::domain::employer::{
    Employer, EmployerDraft, EmployerFilter, EmployerKey, NameQuery, SizeClass,
};

#[macro_use]
mod common;
pub mod postgres;
pub mod sqlite;

/// Errors a store reports; `grpc` turns them into statuses in one place (`crate::error`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{field} is already held by another employer")]
    Duplicate {
        field: &'static str,
        holder: Option<Uuid>,
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
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Self::Unavailable(error)
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                let text = format!("{} {}", db.message(), db.constraint().unwrap_or_default());
                let field = if text.contains("idempotency_keys") {
                    "request_id"
                } else if text.contains("npp") {
                    "bpjs_tk_npp"
                } else if text.contains("nib") {
                    "nib"
                } else if text.contains("npwp") {
                    "npwp"
                } else {
                    return Self::Internal(error);
                };
                Self::Duplicate {
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpsertOutcome {
    pub employer: Employer,
    pub created: bool,
}

/// Where a name search resumes: the last (folded name, id) returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameCursor {
    pub name_folded: String,
    pub id: Uuid,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is, for logs and the bench.
    fn backend(&self) -> &'static str;

    /// Applies all of the schema's migrations that have not run yet.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    async fn upsert_employer(&self, command: &UpsertEmployer) -> Result<UpsertOutcome, StoreError>;

    async fn find_employer(&self, key: &EmployerKey) -> Result<Option<Employer>, StoreError>;

    /// Up to `limit` employers matching `filter`, in id order, after `after`.
    async fn list_employers(
        &self,
        filter: &EmployerFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Employer>, StoreError>;

    /// Up to `limit` employers whose folded name contains the query, in name order, after `after`.
    async fn search_employers(
        &self,
        query: &NameQuery,
        after: Option<&NameCursor>,
        limit: u32,
    ) -> Result<Vec<Employer>, StoreError>;
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

/// An employer row as both backends return it.
#[derive(sqlx::FromRow)]
struct EmployerRow {
    id: Uuid,
    npwp: String,
    nib: Option<String>,
    bpjs_tk_npp: String,
    bpjs_kes_code: Option<String>,
    name: String,
    address: Option<String>,
    region_code: String,
    kbli: Option<String>,
    size_class: Option<String>,
    workforce_declared: Option<i64>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    revision: i64,
}

const EMPLOYER_COLUMNS: &str = "id, npwp, nib, bpjs_tk_npp, bpjs_kes_code, name, address, \
     region_code, kbli, size_class, workforce_declared, created_at, updated_at, revision";

impl TryFrom<EmployerRow> for Employer {
    type Error = StoreError;

    fn try_from(row: EmployerRow) -> Result<Self, StoreError> {
        let size_class = match row.size_class.as_deref() {
            None => None,
            Some(text) => Some(SizeClass::from_stored(text).ok_or_else(|| {
                StoreError::Corrupt(format!("employer {}: size class {text:?}", row.id))
            })?),
        };
        let workforce_declared = row
            .workforce_declared
            .map(u32::try_from)
            .transpose()
            .map_err(|_| StoreError::Corrupt(format!("employer {}: workforce", row.id)))?;
        Ok(Employer {
            id: row.id,
            npwp: row.npwp,
            nib: row.nib,
            bpjs_tk_npp: row
                .bpjs_tk_npp
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            bpjs_kes_code: row.bpjs_kes_code,
            name: row.name,
            address: row.address,
            region_code: row.region_code,
            kbli: row.kbli,
            size_class,
            workforce_declared,
            created_at: row.created_at,
            updated_at: row.updated_at,
            revision: row.revision,
        })
    }
}

/// The current time at the precision both databases keep (microseconds), so a value read back
/// equals the value written.
fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a `LIKE … ESCAPE '\'` pattern.
fn like_contains(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

//! SQLite backend: the zero-setup default. One file in WAL mode; writes go through a single
//! connection (SQLite has one writer at a time, and a dedicated writer avoids `SQLITE_BUSY`
//! when a read transaction would otherwise upgrade), reads through a small pool that proceeds
//! alongside the writer.

use std::{path::Path, str::FromStr};

use sqlx::{
    Sqlite, SqlitePool,
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::StoreError;
use super::audit::{FrontierCache, LogRow, numbered_resources};
use super::compliance::{
    FEED_INSERT, FeedInsert, REPORT_INSERT, ReportInsert, STATUS_INSERT, STATUS_UPSERT_CONFLICT,
    StatusRow,
};
use crate::audit::merkle::{Frontier, Hash, NodeId};
use crate::config::DatabaseConfig;

/// Audit log rows per insert statement: keeps a statement under SQLite's limit of bound
/// parameters.
const LOG_ROWS_PER_STATEMENT: usize = 1000;

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    frontier: FrontierCache,
}

impl SqliteStore {
    const BACKEND: &'static str = "sqlite";
    // Write transactions already hold the write lock (`begin_write`).
    const LOCK_AUDIT_HEAD: &'static str =
        "SELECT size, root, EXISTS (SELECT 1 FROM audit_pending) FROM audit_head WHERE id = 1";
    const LOCK_FEED_HEAD: &'static str = "SELECT size FROM feed_head WHERE id = 1";
    const BULK_WRITE_SETTING: Option<&'static str> = None;
    const LOCK_EMPLOYERS: &'static str = "";
    const MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

    /// Opens (creating if needed) `sinergi.db` inside `dir`, creating the directory too.
    pub async fn open_in_dir(dir: &Path, config: &DatabaseConfig) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| StoreError::Unavailable(error.into()))?;
        let options = SqliteConnectOptions::new().filename(dir.join("sinergi.db"));
        Self::open(options, config).await
    }

    /// Opens the database a `sqlite://path` URL names.
    pub async fn open_url(url: &str, config: &DatabaseConfig) -> Result<Self, StoreError> {
        Self::open(SqliteConnectOptions::from_str(url)?, config).await
    }

    async fn open(
        options: SqliteConnectOptions,
        config: &DatabaseConfig,
    ) -> Result<Self, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed write (and, later, its audit entry) survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(config.acquire_timeout())
            // Multi-row inserts are one statement per row count (up to 1,000 rows), and a
            // group commit's row count varies with the load: keep them all prepared.
            .statement_cache_capacity(2000);
        // No ping before each use: a connection to a local file does not go stale, and the
        // ping is one more round trip to the connection's thread on every query.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(config.acquire_timeout())
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(config.sqlite_readers.max(1))
            .test_before_acquire(false)
            .acquire_timeout(config.acquire_timeout())
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self {
            writer,
            reader,
            frontier: FrontierCache::default(),
        })
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Starts a write transaction holding SQLite's write lock from the first statement, so a
    /// transaction that reads before it writes waits for another writer (another process on
    /// the same file) instead of failing when it upgrades.
    ///
    /// Its commit is durable (the WAL is synced): the safety level is set with every begin
    /// because [`Self::begin_sequencing`] lowers it on the same connection.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, Sqlite>, sqlx::Error> {
        self.writer
            .begin_with("PRAGMA synchronous = FULL; BEGIN IMMEDIATE")
            .await
    }

    /// Starts a sequencer's transaction, whose commit is not synced: the WAL is written in
    /// order and every later durable commit syncs it, so a round can only be lost together
    /// with everything after it. Its input (the pending rows, in commit order on this single
    /// writer) is durable and stays in place until the round commits, so a lost round is done
    /// again with the same numbers and hashes. Sparing its sync keeps the calls queued behind
    /// it from waiting on the disk twice.
    async fn begin_sequencing(&self) -> Result<sqlx::Transaction<'_, Sqlite>, sqlx::Error> {
        self.writer
            .begin_with("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE")
            .await
    }

    /// Writes log rows numbered from `first_seq`, their resources, the tree nodes they
    /// complete and the new head.
    async fn write_log(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        first_seq: u64,
        rows: &[LogRow<'_>],
        nodes: &[(NodeId, Hash)],
        frontier: &Frontier,
    ) -> Result<(), StoreError> {
        let seq = |offset: usize| (first_seq + offset as u64) as i64;
        for (first, chunk) in (0..rows.len())
            .step_by(LOG_ROWS_PER_STATEMENT)
            .zip(rows.chunks(LOG_ROWS_PER_STATEMENT))
        {
            let mut log = sqlx::QueryBuilder::<Sqlite>::new(
                "INSERT INTO audit_log (seq, entry, time_us, agency, method, decision, \
                 status_code, is_write) ",
            );
            log.push_values(chunk.iter().enumerate(), |mut row, (offset, r)| {
                row.push_bind(seq(first + offset))
                    .push_bind(r.entry)
                    .push_bind(r.time_us)
                    .push_bind(r.agency)
                    .push_bind(r.method)
                    .push_bind(r.decision)
                    .push_bind(r.status_code)
                    .push_bind(r.is_write);
            });
            log.build().execute(&mut **tx).await?;
        }

        let resources: Vec<(i64, &str)> = numbered_resources(first_seq, rows).collect();
        for chunk in resources.chunks(4000) {
            let mut query = sqlx::QueryBuilder::<Sqlite>::new(
                "INSERT INTO audit_resources (seq, resource_id) ",
            );
            query.push_values(chunk, |mut row, (seq, id)| {
                row.push_bind(*seq).push_bind(*id);
            });
            query.build().execute(&mut **tx).await?;
        }

        for chunk in nodes.chunks(4000) {
            let mut query =
                sqlx::QueryBuilder::<Sqlite>::new("INSERT INTO audit_nodes (key, hash) ");
            query.push_values(chunk, |mut row, (node, hash)| {
                row.push_bind(node.key()).push_bind(hash.as_slice());
            });
            query.build().execute(&mut **tx).await?;
        }

        sqlx::query("UPDATE audit_head SET size = $1, root = $2 WHERE id = 1")
            .bind(frontier.size() as i64)
            .bind(frontier.root().as_slice())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Appends ` IN (…)` matching any of `values`.
    fn push_in<'q, T>(query: &mut sqlx::QueryBuilder<'q, Sqlite>, values: &'q [T])
    where
        T: sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + Sync + 'q,
        &'q T: sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite>,
    {
        query.push(" IN (");
        let mut list = query.separated(", ");
        for value in values {
            list.push_bind(value);
        }
        query.push(")");
    }

    /// Inserts report rows with one multi-row statement.
    async fn write_report_rows(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        rows: &[ReportInsert],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(REPORT_INSERT);
        insert.push_values(rows, |mut row, r| {
            row.push_bind(r.id)
                .push_bind(r.employer_id)
                .push_bind(r.kind)
                .push_bind(r.group)
                .push_bind(&r.period)
                .push_bind(&r.series)
                .push_bind(r.version)
                .push_bind(r.supersedes)
                .push_bind(r.superseded)
                .push_bind(&r.source_agency)
                .push_bind(r.submitted_at)
                .push_bind(&r.figures)
                .push_bind(r.workers)
                .push_bind(r.arrears_amount)
                .push_bind(&r.region_code)
                .push_bind(&r.province_code);
        });
        insert.build().execute(&mut **tx).await?;
        Ok(())
    }

    /// Inserts or replaces status rows with one multi-row statement.
    async fn write_status_rows(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        rows: &[StatusRow],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(STATUS_INSERT);
        insert.push_values(rows, |mut row, s| {
            row.push_bind(s.employer_id)
                .push_bind(s.group)
                .push_bind(s.non_compliant)
                .push_bind(s.categories)
                .push_bind(s.gap)
                .push_bind(s.arrears_amount)
                .push_bind(s.priority)
                .push_bind(&s.region_code)
                .push_bind(&s.province_code)
                .push_bind(&s.size_class)
                .push_bind(&s.detail)
                .push_bind(s.computed_at);
        });
        insert.push(STATUS_UPSERT_CONFLICT);
        insert.build().execute(&mut **tx).await?;
        Ok(())
    }

    /// Queues feed events with one multi-row statement.
    async fn write_feed_rows(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        rows: &[FeedInsert],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(FEED_INSERT);
        insert.push_values(rows, |mut row, f| {
            row.push_bind(f.event_type)
                .push_bind(f.time_us)
                .push_bind(&f.employer_id)
                .push_bind(&f.region_code)
                .push_bind(f.read_scope)
                .push_bind(&f.audience)
                .push_bind(&f.source_agency)
                .push_bind(&f.payload);
        });
        insert.build().execute(&mut **tx).await?;
        Ok(())
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

sql_store_common!(SqliteStore, Sqlite);
sql_store_agencies!(SqliteStore, Sqlite);
sql_store_audit!(SqliteStore, Sqlite);
sql_store_compliance!(SqliteStore, Sqlite);
sql_store_cases!(SqliteStore, Sqlite);

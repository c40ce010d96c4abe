//! SQLite backend: the zero-setup default. One file in WAL mode; writes go through a single
//! connection (SQLite has one writer at a time, and a dedicated writer avoids `SQLITE_BUSY`
//! when a read transaction would otherwise upgrade), reads through a small pool that proceeds
//! alongside the writer.
//!
//! The audit log's record index (which entries touched which record) lives in a second file,
//! `<database>-audit-index`, with its own writer. Keyed by record, it puts each entry on a
//! different page; in the main file those pages were most of what every group commit wrote and
//! synced and every checkpoint copied back, on the one writer all calls wait for. The entry's
//! row keeps its records (a JSON array), the index is filled from them in the background, and
//! searches read the entries it has not reached from the log. It holds nothing else, so it is
//! checked against the log when opened and rebuilt if it does not match (or is missing).

use std::{future::Future, path::Path, pin::Pin, str::FromStr};

use sqlx::{
    Sqlite, SqliteConnection, SqlitePool,
    migrate::Migrator,
    pool::PoolConnectionMetadata,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::StoreError;
use super::audit::{FrontierCache, LogRow};
use super::employer_reads::EmployerReads;
use super::feed::{FeedInsert, PendingFeed, feed_insert, sequencing_round};
use super::reports::{REPORT_INSERT, ReportInsert};
use super::statuses::{STATUS_INSERT, STATUS_UPSERT_CONFLICT, StatusRow};
use crate::audit::PendingEntry;
use crate::audit::merkle::{Frontier, Hash, NodeId};
use crate::config::DatabaseConfig;

/// Audit log rows per insert statement: keeps a statement under SQLite's limit of bound
/// parameters.
const LOG_ROWS_PER_STATEMENT: usize = 1000;

/// The record index's file. `indexed`: entries below this sequence number are in the index;
/// `last_entry`: the entry just below it, which the log must still hold for the index to be
/// the log's.
const RECORD_INDEX_SCHEMA: &str = "\
    CREATE TABLE IF NOT EXISTS audit_resource_index (\
        resource_id TEXT NOT NULL, \
        seq INTEGER NOT NULL, \
        PRIMARY KEY (resource_id, seq)\
    ) WITHOUT ROWID; \
    CREATE TABLE IF NOT EXISTS audit_index_head (\
        id INTEGER PRIMARY KEY CHECK (id = 1), \
        indexed INTEGER NOT NULL, \
        last_entry BLOB\
    ); \
    INSERT OR IGNORE INTO audit_index_head (id, indexed) VALUES (1, 0)";

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Lookups of single employers only.
    lookups: SqlitePool,
    /// The record index's own connection, with the main file attached as `log` to read from.
    record_index: SqlitePool,
    frontier: FrontierCache,
    employer_reads: EmployerReads,
}

/// What a pool runs on each new connection before handing it out.
type ConnectHook<'c> = Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

/// A pool's connect hook that attaches the database in `file` under `schema` to every new
/// connection.
fn attaching(
    file: String,
    schema: &'static str,
) -> impl for<'c> Fn(&'c mut SqliteConnection, PoolConnectionMetadata) -> ConnectHook<'c>
+ Send
+ Sync
+ 'static {
    let statement = format!("ATTACH DATABASE $1 AS {schema}");
    move |connection, _| {
        let file = file.clone();
        let statement = statement.clone();
        Box::pin(async move {
            sqlx::query(&statement)
                .bind(file)
                .execute(connection)
                .await
                .map(drop)
        })
    }
}

impl SqliteStore {
    const BACKEND: &'static str = "sqlite";
    // Write transactions already hold the write lock (`begin_write`).
    const LOCK_AUDIT_HEAD: &'static str =
        "SELECT size, root, EXISTS (SELECT 1 FROM audit_pending) FROM audit_head WHERE id = 1";
    const LOCK_FEED_HEAD: &'static str = "SELECT size FROM feed_head WHERE id = 1";
    const BULK_WRITE_SETTING: Option<&'static str> = None;
    const REPORT_WRITE_SETTING: Option<&'static str> = None;
    const SKIP_LOCKED: &'static str = "";
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
            // A statement that may fail halfway inside a transaction (every multi-row insert)
            // keeps an undo journal; on disk that is a temporary file created, written and
            // deleted per statement, which cost a group commit more than its own writes.
            .pragma("temp_store", "memory")
            // Multi-row inserts are one statement per row count (up to 1,000 rows), and a
            // group commit's row count varies with the load: keep them all prepared.
            .statement_cache_capacity(2000);
        // No ping before each use: a connection to a local file does not go stale, and the
        // ping is one more round trip to the connection's thread on every query.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(config.acquire_timeout())
            // 32 MiB of page cache instead of SQLite's 2 MB: a report batch or a status round
            // writes into every index of its tables, and with the default cache the writer read
            // those pages back from the OS on every chunk (a tenth of its time in pread).
            // A checkpoint every 10,000 WAL pages (about 40 MB) instead of 1,000: the log's
            // append rewrites the same few pages (its head, the right edge of each table) in
            // every group commit, and a checkpoint copies each page once however many versions
            // the WAL holds, so rarer checkpoints copy far less per entry.
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", "-32768")
                    .pragma("wal_autocheckpoint", "10000"),
            )
            .await?;

        let database = options.get_filename().to_string_lossy().into_owned();
        let index_file = format!("{database}-audit-index");
        // Not synced at commit: whatever a crash takes back is indexed again from the log.
        let index_options = options
            .clone()
            .filename(&index_file)
            .synchronous(SqliteSynchronous::Normal);
        let record_index = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(config.acquire_timeout())
            .after_connect(attaching(database, "log"))
            .connect_with(index_options)
            .await?;
        sqlx::raw_sql(RECORD_INDEX_SCHEMA)
            .execute(&record_index)
            .await?;
        Self::check_record_index(&record_index).await?;

        let reader = SqlitePoolOptions::new()
            .max_connections(config.sqlite_readers.max(1))
            .test_before_acquire(false)
            .acquire_timeout(config.acquire_timeout())
            .after_connect(attaching(index_file, "audit_index"))
            .connect_with(options.clone().read_only(true))
            .await?;
        // As many connections again, for the lookups of single employers alone: they keep
        // their connections between queries.
        let lookups = SqlitePoolOptions::new()
            .max_connections(config.sqlite_readers.max(1))
            .test_before_acquire(false)
            .acquire_timeout(config.acquire_timeout())
            .connect_with(options.read_only(true))
            .await?;
        let employer_reads =
            Self::start_employer_reads(lookups.clone(), config.sqlite_readers.max(1) as usize);
        Ok(Self {
            writer,
            reader,
            lookups,
            record_index,
            frontier: FrontierCache::default(),
            employer_reads,
        })
    }

    /// Empties the record index unless the log still holds the entry the index last covered:
    /// a log restored from a backup, or an index file copied from another database, must not
    /// lend its records to these entries.
    async fn check_record_index(record_index: &SqlitePool) -> Result<(), StoreError> {
        let (indexed, last_entry): (i64, Option<Vec<u8>>) =
            sqlx::query_as("SELECT indexed, last_entry FROM audit_index_head WHERE id = 1")
                .fetch_one(record_index)
                .await?;
        if indexed == 0 {
            return Ok(());
        }
        // An error (no log table yet, in a database not migrated) counts as a mismatch.
        let in_log: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT entry FROM log.audit_log WHERE seq = $1")
                .bind(indexed - 1)
                .fetch_optional(record_index)
                .await
                .unwrap_or(None);
        if in_log.is_some() && in_log == last_entry {
            return Ok(());
        }
        tracing::warn!(
            indexed,
            "the audit record index does not match the log; indexing the log again"
        );
        sqlx::raw_sql(
            "BEGIN; DELETE FROM audit_resource_index; \
             UPDATE audit_index_head SET indexed = 0, last_entry = NULL WHERE id = 1; COMMIT",
        )
        .execute(record_index)
        .await?;
        Ok(())
    }

    /// Appends the sequence numbers of entries that touched any of the records `records`
    /// appends (a bound value or a subquery): the index's up to its horizon, and past it the
    /// log's rows. The statement reads each file from one snapshot: if the index's is the
    /// newer, it names entries the log's snapshot lacks, which the caller's query of the log
    /// leaves out; if it is the older, the log's rows cover the difference.
    fn push_entries_touching<'q>(
        query: &mut sqlx::QueryBuilder<'q, Sqlite>,
        records: &dyn Fn(&mut sqlx::QueryBuilder<'q, Sqlite>),
    ) {
        query.push("SELECT seq FROM audit_index.audit_resource_index WHERE resource_id IN (");
        records(query);
        query.push(
            ") UNION ALL SELECT l.seq FROM audit_log l, json_each(l.resources) j \
             WHERE l.seq >= (SELECT indexed FROM audit_index.audit_index_head WHERE id = 1) \
             AND j.value IN (",
        );
        records(query);
        query.push(")");
    }

    /// Appends the records `viewer` wrote (see `AuditFilter::visible_to`): the employers its
    /// allowed upserts wrote, read from the log's rows, and the mark of records it wrote.
    fn push_records_changed_by(query: &mut sqlx::QueryBuilder<'_, Sqlite>, viewer: &str) {
        query
            .push("SELECT j.value FROM audit_log l, json_each(l.resources) j WHERE l.is_write = ")
            .push_bind(true)
            .push(" AND l.decision = 'allowed' AND l.method = ")
            .push_bind(crate::audit::EMPLOYER_WRITE_METHOD)
            .push(" AND l.agency = ")
            .push_bind(viewer.to_owned())
            .push(" UNION ALL SELECT ")
            .push_bind(crate::audit::written_by(viewer));
    }

    /// Indexes the records of up to `limit` entries past the index's horizon, in one
    /// transaction of the index file (the log is only read).
    async fn index_records(&self, limit: u32) -> Result<u64, StoreError> {
        let mut tx = self.record_index.begin().await?;
        // A write first, to take the index file's write lock before reading: another process
        // on the same files indexing too makes this wait, where a read turning into a write
        // would fail. (`BEGIN IMMEDIATE` would lock the attached log as well.)
        let indexed: i64 = sqlx::query_scalar(
            "UPDATE audit_index_head SET indexed = indexed WHERE id = 1 RETURNING indexed",
        )
        .fetch_one(&mut *tx)
        .await?;
        let end = indexed + i64::from(limit);
        let last: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, entry FROM log.audit_log WHERE seq >= $1 AND seq < $2 \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(indexed)
        .bind(end)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((last_seq, last_entry)) = last else {
            return Ok(0);
        };
        // In key order, so neighbouring records share page writes. OR IGNORE: a round the
        // index file lost in a crash is done again over rows it may partly hold.
        sqlx::query(
            "INSERT OR IGNORE INTO audit_resource_index (resource_id, seq) \
             SELECT j.value, l.seq FROM log.audit_log l, json_each(l.resources) j \
             WHERE l.seq >= $1 AND l.seq <= $2 ORDER BY 1, 2",
        )
        .bind(indexed)
        .bind(last_seq)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE audit_index_head SET indexed = $1, last_entry = $2 WHERE id = 1")
            .bind(last_seq + 1)
            .bind(last_entry)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((last_seq + 1 - indexed) as u64)
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

    /// Never appends: the single writer connection's write lock is the file's, so the locked
    /// path costs no extra round trips to another process.
    async fn append_at_known_head(&self, _entries: &[PendingEntry]) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Writes log rows numbered from `first_seq` with their records, the tree nodes they
    /// complete and the new head; the record index is filled later (`index_records`). They
    /// are sent together: every statement sent on its own is a round trip to the connection's
    /// thread, made while the append holds the database's write lock. The nodes go as a JSON
    /// array of keys and one blob of their hashes, so the text of the whole depends only on
    /// the number of rows and stays prepared.
    async fn write_log(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        first_seq: u64,
        rows: &[LogRow<'_>],
        nodes: &[(NodeId, Hash)],
        frontier: &Frontier,
    ) -> Result<(), StoreError> {
        let seq = |offset: usize| (first_seq + offset as u64) as i64;
        let records = rows
            .iter()
            .map(|r| serde_json::to_string(&r.resources))
            .collect::<Result<Vec<String>, _>>()
            .map_err(|error| sqlx::Error::Encode(error.into()))?;
        let node_keys =
            serde_json::to_string(&nodes.iter().map(|(node, _)| node.key()).collect::<Vec<_>>())
                .map_err(|error| sqlx::Error::Encode(error.into()))?;
        let node_hashes: Vec<u8> = nodes.iter().flat_map(|(_, hash)| *hash).collect();

        let mut statements = sqlx::QueryBuilder::<Sqlite>::new("");
        for (first, chunk) in (0..rows.len())
            .step_by(LOG_ROWS_PER_STATEMENT)
            .zip(rows.chunks(LOG_ROWS_PER_STATEMENT))
        {
            statements.push(
                "INSERT INTO audit_log (seq, entry, time_us, agency, method, decision, \
                 status_code, is_write, resources) ",
            );
            statements.push_values(
                chunk.iter().zip(&records[first..]).enumerate(),
                |mut row, (offset, (r, records))| {
                    row.push_bind(seq(first + offset))
                        .push_bind(r.entry)
                        .push_bind(r.time_us)
                        .push_bind(r.agency)
                        .push_bind(r.method)
                        .push_bind(r.decision)
                        .push_bind(r.status_code)
                        .push_bind(r.is_write)
                        .push_bind(records.as_str());
                },
            );
            statements.push("; ");
        }
        // json_each numbers the keys from 0 (its `key` column); hash n is bytes 32n+1 to
        // 32n+32 of the blob.
        statements
            .push("INSERT INTO audit_nodes (key, hash) SELECT value, substr(")
            .push_bind(node_hashes)
            .push(", 32 * key + 1, 32) FROM json_each(")
            .push_bind(node_keys)
            .push("); UPDATE audit_head SET size = ")
            .push_bind(frontier.size() as i64)
            .push(", root = ")
            .push_bind(frontier.root().to_vec())
            .push(" WHERE id = 1");
        statements.build().execute(&mut **tx).await?;
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

    /// Queues feed events, or writes them to the feed numbered from `numbered_from` on, with
    /// one multi-row statement.
    async fn write_feed_rows(
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        numbered_from: Option<i64>,
        rows: &[FeedInsert],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(feed_insert(numbered_from.is_some()));
        insert.push_values(rows.iter().enumerate(), |mut row, (position, f)| {
            if let Some(first) = numbered_from {
                row.push_bind(first + position as i64);
            }
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

    /// Whether any event waits to be numbered.
    async fn feed_waiting(&self) -> Result<bool, StoreError> {
        let waiting: Option<i64> = sqlx::query_scalar("SELECT id FROM feed_pending LIMIT 1")
            .fetch_optional(&self.reader)
            .await?;
        Ok(waiting.is_some())
    }

    /// The queued rows of up to about `limit` pending events, oldest first (see
    /// [`sequencing_round`]). The round holds the write lock: no other transaction is under
    /// way, so every row in the queue is committed.
    async fn take_pending_feed(
        &self,
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        limit: u32,
    ) -> Result<(Vec<PendingFeed>, ()), StoreError> {
        let rows: Vec<PendingFeed> = sqlx::query_as(
            "SELECT id, events, bundle IS NOT NULL AS bundled FROM feed_pending ORDER BY id \
             LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut **tx)
        .await?;
        let (round, _) = sequencing_round(rows, limit, |row| row.events);
        Ok((round, ()))
    }

    fn feed_moved(&self, (): ()) {}

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    fn lookups(&self) -> &SqlitePool {
        &self.lookups
    }
}

sql_store_common!(SqliteStore, Sqlite);
sql_store_agencies!(SqliteStore, Sqlite);
sql_store_audit!(SqliteStore, Sqlite);
sql_store_reports!(SqliteStore, Sqlite);
sql_store_statuses!(SqliteStore, Sqlite);
sql_store_feed!(SqliteStore, Sqlite);
sql_store_cases!(SqliteStore, Sqlite);

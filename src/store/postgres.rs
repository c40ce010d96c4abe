//! PostgreSQL backend: the production path. Replicas are stateless and share one database, so
//! every invariant (uniqueness, etags, idempotency) is enforced by the database inside one
//! transaction, never by process memory.

use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use sqlx::{
    PgPool, Postgres,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use super::StoreError;
use super::audit::{FrontierCache, LogRow, append_leaves, numbered_resources};
use super::employer_reads::EmployerReads;
use super::feed::{FEED_COLUMNS, FeedInsert, PendingFeed, feed_insert, sequencing_round};
use super::kept_connections::KeptConnections;
use super::reports::{REPORT_INSERT, ReportInsert};
use super::statuses::{STATUS_INSERT, STATUS_UPSERT_CONFLICT, StatusRow};
use crate::audit::PendingEntry;
use crate::audit::merkle::{Frontier, Hash, NodeId};

/// The statement that writes numbered log rows, their resources, the tree nodes they complete
/// and the new head; the rows are written only if the head update (extended by
/// `$head_condition`) took place.
macro_rules! write_log_statement {
    ($head_condition:literal) => {
        concat!(
            "WITH head AS (UPDATE audit_head SET size = $13, root = $14 WHERE id = 1",
            $head_condition,
            " RETURNING size), \
             log AS (INSERT INTO audit_log (seq, entry, time_us, agency, method, decision, \
             status_code, is_write) SELECT * FROM UNNEST($1::int8[], $2::bytea[], $3::int8[], \
             $4::text[], $5::text[], $6::text[], $7::int4[], $8::bool[]) \
             WHERE EXISTS (SELECT FROM head)), \
             resources AS (INSERT INTO audit_resources (seq, resource_id) \
             SELECT * FROM UNNEST($9::int8[], $10::text[]) WHERE EXISTS (SELECT FROM head)), \
             nodes AS (INSERT INTO audit_nodes (key, hash) \
             SELECT * FROM UNNEST($11::int8[], $12::bytea[]) WHERE EXISTS (SELECT FROM head)) \
             SELECT count(*) FROM head"
        )
    };
}

/// Extends the log whose head the transaction has locked.
const WRITE_LOG: &str = write_log_statement!("");
/// Extends the log if its head is still at size `$15` with root `$16` and no entry is pending.
const WRITE_LOG_AT_KNOWN_HEAD: &str = write_log_statement!(
    " AND size = $15 AND root = $16 \
     AND (SELECT id FROM audit_pending ORDER BY id LIMIT 1) IS NULL"
);

/// Plans without table scans. Run first in the status worker's transactions (see
/// `BULK_WRITE_SETTING`), and in the sequencer's and its poll of the feed queue. The queue's
/// statistics say little about its size: it swings from empty to a status batch's thousands of
/// events between two vacuums, and with a batch's events bundled it was often nearly empty when
/// analysed. Planned from such statistics, the poll and the deletion of moved events scanned the
/// whole table instead of its indexes, and a prepared statement kept that plan until the next
/// vacuum: 30-80 ms a poll instead of 0.05 ms.
const INDEX_SCANS_ONLY: &str = "SET LOCAL enable_seqscan = off";

pub struct PostgresStore {
    pool: PgPool,
    /// Lookups of single employers only.
    lookups: PgPool,
    /// The connection audit batches are appended on, kept from `pool`.
    appending: KeptConnections<Postgres>,
    frontier: FrontierCache,
    feed_start: Mutex<FeedQueuePosition>,
    employer_reads: EmployerReads,
}

/// A place in the feed queue's (transaction id, event id) order. Every pending event before
/// the sequencer's start position has been moved, and none can still arrive there: its
/// transaction id is below the oldest transaction that was running when the position was set.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
struct FeedQueuePosition {
    xid: i64,
    id: i64,
}

impl PostgresStore {
    const BACKEND: &'static str = "postgres";
    // Whether entries are pending, here and in `WRITE_LOG_AT_KNOWN_HEAD`, is asked as "the
    // first pending id" rather than EXISTS: PostgreSQL plans an EXISTS as a scan of the table
    // for any row, which walks every entry the sequencer has deleted since the last vacuum on
    // every append (a tenth of an append's time in a profile); ordered, it is one step into
    // the primary key.
    const LOCK_AUDIT_HEAD: &'static str = "SELECT size, root, \
         (SELECT id FROM audit_pending ORDER BY id LIMIT 1) IS NOT NULL \
         FROM audit_head WHERE id = 1 FOR UPDATE";
    const LOCK_FEED_HEAD: &'static str = "SELECT size FROM feed_head WHERE id = 1 FOR UPDATE";
    // Concurrent report batches for one employer take turns, so versions never collide.
    // A batch's lookups (and the status worker's after it) go by employer id and must use the
    // indexes even while the batch itself fills the tables: statistics gathered before a large
    // first load (or none, inside its still uncommitted transaction) would have the planner
    // scan whole tables per chunk.
    const BULK_WRITE_SETTING: Option<&'static str> = Some(INDEX_SCANS_ONLY);
    // A report write, besides, declares that each report it stores belongs to an employer row
    // it has read and locked, so the database does not look the employer up again (see
    // migrations/postgres/0012_report_employer_check_per_statement.sql).
    const REPORT_WRITE_SETTING: Option<&'static str> = Some(
        "SELECT set_config('enable_seqscan', 'off', true), \
         set_config('sinergi.reports_of_locked_employers', 'on', true)",
    );
    // The status worker takes the queued employers no write holds, without waiting.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const LOCK_EMPLOYERS: &'static str = " FOR UPDATE";
    const MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        // No ping before each use: the pool already pings every connection it takes back
        // after use (and drops it if that fails), and a second round trip per query cost a
        // sixth of GetEmployer's throughput. A connection that broke while idle fails its next
        // query UNAVAILABLE and is dropped.
        let max_connections = max_connections.max(2);
        // A quarter of the connections, in a pool of their own: the lookups batch under load,
        // and the rest stay free for writes, listings and the audit log.
        let lookup_connections = (max_connections / 4).max(1);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections - lookup_connections)
            .test_before_acquire(false)
            .acquire_timeout(acquire_timeout)
            .connect(url)
            .await?;
        // A lookup's statement is always the same shape, but its keys are an array, so
        // PostgreSQL would plan it anew for every execution: planning was two thirds of a
        // lookup's time in the database. One plan serves every array.
        let lookup_options =
            PgConnectOptions::from_str(url)?.options([("plan_cache_mode", "force_generic_plan")]);
        let lookups = PgPoolOptions::new()
            .max_connections(lookup_connections)
            .test_before_acquire(false)
            .acquire_timeout(acquire_timeout)
            .connect_with(lookup_options)
            .await?;
        let employer_reads =
            Self::start_employer_reads(lookups.clone(), lookup_connections as usize);
        Ok(Self {
            appending: KeptConnections::new(pool.clone()),
            pool,
            lookups,
            frontier: FrontierCache::default(),
            feed_start: Mutex::default(),
            employer_reads,
        })
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Starts a sequencer's transaction. Unlike SQLite's, its commit stays synchronous: pending
    /// ids come from a sequence, so replicas commit them out of order, and a round lost in a
    /// crash could be done again in a different order than a checkpoint already published.
    async fn begin_sequencing(&self) -> Result<sqlx::Transaction<'_, Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(INDEX_SCANS_ONLY).execute(&mut *tx).await?;
        Ok(tx)
    }

    /// Appends ` = ANY($n)` matching any of `values`: one array parameter, so the statement is
    /// the same whatever the number of values and PostgreSQL plans it once.
    fn push_in<'q, T>(query: &mut sqlx::QueryBuilder<'q, Postgres>, values: &'q [T])
    where
        T: sqlx::postgres::PgHasArrayType
            + sqlx::Encode<'q, Postgres>
            + sqlx::Type<Postgres>
            + Clone
            + Send
            + 'q,
        Vec<T>: sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>,
    {
        query.push(" = ANY(").push_bind(values.to_vec()).push(")");
    }

    // Multi-row writes bind one array per column and UNNEST them: the statement has the same
    // dozen parameters whatever the number of rows, so PostgreSQL plans it once, where a VALUES
    // list would carry thousands of parameters to parse and plan on every batch.

    /// Appends the sequence numbers of entries that touched any of the records `records`
    /// appends (a bound value or a subquery).
    fn push_entries_touching<'q>(
        query: &mut sqlx::QueryBuilder<'q, Postgres>,
        records: &dyn Fn(&mut sqlx::QueryBuilder<'q, Postgres>),
    ) {
        query.push("SELECT seq FROM audit_resources WHERE resource_id IN (");
        records(query);
        query.push(")");
    }

    /// Appends the records `viewer` wrote (see `AuditFilter::visible_to`): the employers its
    /// allowed upserts wrote, and the mark of records it wrote.
    fn push_records_changed_by(query: &mut sqlx::QueryBuilder<'_, Postgres>, viewer: &str) {
        query
            .push(
                "SELECT w.resource_id FROM audit_resources w JOIN audit_log l ON l.seq = w.seq \
                 WHERE l.is_write = ",
            )
            .push_bind(true)
            .push(" AND l.decision = 'allowed' AND l.method = ")
            .push_bind(crate::audit::EMPLOYER_WRITE_METHOD)
            .push(" AND l.agency = ")
            .push_bind(viewer.to_owned())
            .push(" UNION ALL SELECT CAST(")
            .push_bind(crate::audit::written_by(viewer))
            .push(" AS TEXT)");
    }

    /// Nothing to do: entries' records are indexed as they are appended. PostgreSQL's
    /// concurrent sessions absorb the index's scattered inserts (it measured about twice its
    /// append target with them), where SQLite's single writer could not.
    async fn index_records(&self, _limit: u32) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Writes log rows numbered from `first_seq`, their resources, the tree nodes they
    /// complete and the new head, in one statement: an append holds the tree head for as
    /// long as it takes, so it makes one round trip here instead of four.
    async fn write_log(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        first_seq: u64,
        rows: &[LogRow<'_>],
        nodes: &[(NodeId, Hash)],
        frontier: &Frontier,
    ) -> Result<(), StoreError> {
        Self::log_statement(WRITE_LOG, first_seq, rows, nodes, frontier)
            .fetch_one(&mut **tx)
            .await?;
        Ok(())
    }

    /// Appends `entries` in one statement, committed on its own, if the tree head is still the
    /// one this process last wrote and no write's entry waits to be numbered first; otherwise
    /// writes nothing and answers false. Under steady load one replica appends batch after
    /// batch, and this way holds the head only while the statement runs, not across the four
    /// round trips of a transaction that reads and locks it first.
    async fn append_at_known_head(&self, entries: &[PendingEntry]) -> Result<bool, StoreError> {
        let Some((mut frontier, root)) = self.frontier.latest() else {
            return Ok(false);
        };
        let size = frontier.size();
        let rows: Vec<LogRow<'_>> = entries.iter().map(LogRow::from).collect();
        let nodes = append_leaves(&mut frontier, &rows);
        // Another replica, or this one's sequencer, moved the head meanwhile: the statement
        // waits for its lock, finds the head changed and writes nothing.
        let (mut connection, taken) = self.appending.take().await?;
        let appended = Self::log_statement(WRITE_LOG_AT_KNOWN_HEAD, size, &rows, &nodes, &frontier)
            .bind(size as i64)
            .bind(root.as_slice())
            .fetch_one(&mut *connection)
            .await?;
        self.appending.keep(connection, taken);
        if appended == 0 {
            return Ok(false);
        }
        self.frontier.keep(frontier);
        Ok(true)
    }

    /// `statement` (one of the `WRITE_LOG` statements) with the rows, resources, nodes and
    /// new head bound; it answers how many heads it updated.
    fn log_statement<'q>(
        statement: &'static str,
        first_seq: u64,
        rows: &'q [LogRow<'q>],
        nodes: &'q [(NodeId, Hash)],
        frontier: &Frontier,
    ) -> sqlx::query::QueryScalar<'q, Postgres, i64, sqlx::postgres::PgArguments> {
        let seq = |offset: usize| (first_seq + offset as u64) as i64;
        let (resource_seqs, resource_ids): (Vec<i64>, Vec<&str>) =
            numbered_resources(first_seq, rows).unzip();
        sqlx::query_scalar(statement)
            .bind((0..rows.len()).map(seq).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.entry).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.time_us).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.agency).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.method).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.decision).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.status_code).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.is_write).collect::<Vec<_>>())
            .bind(resource_seqs)
            .bind(resource_ids)
            .bind(nodes.iter().map(|(node, _)| node.key()).collect::<Vec<_>>())
            .bind(
                nodes
                    .iter()
                    .map(|(_, hash)| hash.as_slice())
                    .collect::<Vec<_>>(),
            )
            .bind(frontier.size() as i64)
            .bind(frontier.root().to_vec())
    }

    /// Inserts report rows with one statement.
    async fn write_report_rows(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        rows: &[ReportInsert],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&ReportInsert) -> String| rows.iter().map(f).collect::<Vec<_>>();
        sqlx::query(&format!(
            "{REPORT_INSERT} SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], \
             $4::text[], $5::text[], $6::text[], $7::int8[], $8::uuid[], $9::bool[], \
             $10::text[], $11::timestamptz[], $12::text[], $13::int8[], $14::int8[], \
             $15::text[], $16::text[])"
        ))
        .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.employer_id).collect::<Vec<_>>())
        .bind(column(|r| r.kind.to_owned()))
        .bind(rows.iter().map(|r| r.group).collect::<Vec<_>>())
        .bind(column(|r| r.period.clone()))
        .bind(column(|r| r.series.clone()))
        .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.supersedes).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.superseded).collect::<Vec<_>>())
        .bind(column(|r| r.source_agency.clone()))
        .bind(rows.iter().map(|r| r.submitted_at).collect::<Vec<_>>())
        .bind(column(|r| r.figures.clone()))
        .bind(rows.iter().map(|r| r.workers).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.arrears_amount).collect::<Vec<_>>())
        .bind(column(|r| r.region_code.clone()))
        .bind(column(|r| r.province_code.clone()))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Inserts or replaces status rows with one statement.
    async fn write_status_rows(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        rows: &[StatusRow],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&StatusRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
        let number = |f: fn(&StatusRow) -> i64| rows.iter().map(f).collect::<Vec<_>>();
        sqlx::query(&format!(
            "{STATUS_INSERT} SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bool[], \
             $4::int8[], $5::int8[], $6::int8[], $7::int8[], $8::text[], $9::text[], \
             $10::text[], $11::text[], $12::timestamptz[]){STATUS_UPSERT_CONFLICT}"
        ))
        .bind(rows.iter().map(|s| s.employer_id).collect::<Vec<_>>())
        .bind(column(|s| s.group.to_owned()))
        .bind(rows.iter().map(|s| s.non_compliant).collect::<Vec<_>>())
        .bind(number(|s| s.categories))
        .bind(number(|s| s.gap))
        .bind(number(|s| s.arrears_amount))
        .bind(number(|s| s.priority))
        .bind(column(|s| s.region_code.clone()))
        .bind(column(|s| s.province_code.clone()))
        .bind(
            rows.iter()
                .map(|s| s.size_class.clone())
                .collect::<Vec<_>>(),
        )
        .bind(column(|s| s.detail.clone()))
        .bind(rows.iter().map(|s| s.computed_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Queues feed events, or writes them to the feed numbered from `numbered_from` on, with
    /// one statement.
    async fn write_feed_rows(
        tx: &mut sqlx::Transaction<'_, Postgres>,
        numbered_from: Option<i64>,
        rows: &[FeedInsert],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&FeedInsert) -> &str| rows.iter().map(f).collect::<Vec<_>>();
        let mut query = sqlx::QueryBuilder::<Postgres>::new(feed_insert(numbered_from.is_some()));
        query.push("SELECT ");
        if let Some(first) = numbered_from {
            query.push_bind(first).push(" - 1 + position, ");
        }
        query
            .push(format!("{FEED_COLUMNS} FROM UNNEST("))
            .push_bind(column(|f| f.event_type))
            .push("::text[], ")
            .push_bind(rows.iter().map(|f| f.time_us).collect::<Vec<_>>())
            .push("::int8[]");
        for text in [
            column(|f| &f.employer_id),
            column(|f| &f.region_code),
            column(|f| f.read_scope),
            column(|f| &f.audience),
            column(|f| &f.source_agency),
            column(|f| &f.payload),
        ] {
            query.push(", ").push_bind(text).push("::text[]");
        }
        query.push(format!(
            ") WITH ORDINALITY AS queued ({FEED_COLUMNS}, position)"
        ));
        query.build().execute(&mut **tx).await?;
        Ok(())
    }

    /// The sequencer's start position; a position is always whole, so a panic elsewhere while
    /// it was held leaves nothing half-written.
    fn feed_start(&self) -> MutexGuard<'_, FeedQueuePosition> {
        self.feed_start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether any committed event waits past the start position.
    async fn feed_waiting(&self) -> Result<bool, StoreError> {
        let start = *self.feed_start();
        // A scalar subquery, not EXISTS: PostgreSQL drops the ORDER BY and LIMIT of an EXISTS
        // and, with the queue's statistics from when it was nearly empty, scans the whole
        // table for any row instead, walking every event moved and deleted since the last
        // vacuum (40 ms with 270,000 of them). Ordered, the probe walks the index from the
        // start position on.
        let mut tx = self.pool.begin().await?;
        sqlx::query(INDEX_SCANS_ONLY).execute(&mut *tx).await?;
        let (waiting, oldest_running): (bool, i64) = sqlx::query_as(
            "SELECT (SELECT id FROM feed_pending \
             WHERE (xid, id) >= ($1::int8::text::xid8, $2) ORDER BY xid, id LIMIT 1) IS NOT NULL, \
             pg_snapshot_xmin(pg_current_snapshot())::text::int8",
        )
        .bind(start.xid)
        .bind(start.id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        if oldest_running < start.xid {
            // Transaction ids went back: the database was restored to an earlier point while
            // this process ran. Start over from the queue's beginning.
            tracing::warn!("the database's transaction ids went back; rescanning the feed queue");
            *self.feed_start() = FeedQueuePosition::default();
            return Ok(true);
        }
        Ok(waiting)
    }

    /// The queued rows of up to about `limit` committed pending events from the start position
    /// on (see [`sequencing_round`]), and the position the next round may start at once these
    /// are moved.
    async fn take_pending_feed(
        &self,
        tx: &mut sqlx::Transaction<'_, Postgres>,
        limit: u32,
    ) -> Result<(Vec<PendingFeed>, FeedQueuePosition), StoreError> {
        let start = *self.feed_start();
        // Read before the events: whatever was over by then is visible to the next statement.
        let oldest_running: i64 =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8")
                .fetch_one(&mut **tx)
                .await?;
        let rows: Vec<(i64, PendingFeed)> = sqlx::query_as::<_, (i64, i64, i64, bool)>(
            // Named apart: an output column called `xid` would be what ORDER BY sorts, by value
            // instead of along the index.
            "SELECT xid::text::int8 AS queued_by, id, events, bundle IS NOT NULL FROM feed_pending \
             WHERE (xid, id) >= ($1::int8::text::xid8, $2) ORDER BY xid, id LIMIT $3",
        )
        .bind(start.xid)
        .bind(start.id)
        .bind(i64::from(limit))
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|(xid, id, events, bundled)| {
            (
                xid,
                PendingFeed {
                    id,
                    events,
                    bundled,
                },
            )
        })
        .collect();
        let fetched_all = rows.len() < limit as usize;
        let (round, left_over) = sequencing_round(rows, limit, |(_, row)| row.events);
        let drained = fetched_all && !left_over;
        let next = match round.last() {
            Some(&(xid, PendingFeed { id, .. })) if !drained && xid < oldest_running => {
                FeedQueuePosition { xid, id: id + 1 }
            }
            // Every event of a finished transaction is taken, or the round stopped among those
            // of transactions still running, whose events may yet arrive anywhere.
            _ => FeedQueuePosition {
                xid: oldest_running,
                id: 0,
            },
        };
        Ok((round.into_iter().map(|(_, row)| row).collect(), next))
    }

    /// Records that the events before `next` are moved (called once their round committed).
    fn feed_moved(&self, next: FeedQueuePosition) {
        let mut start = self.feed_start();
        *start = (*start).max(next);
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn lookups(&self) -> &PgPool {
        &self.lookups
    }
}

sql_store_common!(PostgresStore, Postgres);
sql_store_agencies!(PostgresStore, Postgres);
sql_store_audit!(PostgresStore, Postgres);
sql_store_reports!(PostgresStore, Postgres);
sql_store_statuses!(PostgresStore, Postgres);
sql_store_feed!(PostgresStore, Postgres);
sql_store_cases!(PostgresStore, Postgres);

/// A throwaway database on a PostgreSQL server, for test suites and benchmarks that must not
/// touch real data: created under a unique name, dropped (with its connections) by [`drop`].
///
/// [`drop`]: ScratchDatabase::drop
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates `<prefix>_<random>` on the server `admin_url` connects to.
    pub async fn create(admin_url: &str, prefix: &str) -> Result<Self, StoreError> {
        use sqlx::Connection;

        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let server = admin_url
            .split_once('?')
            .map_or(admin_url, |(url, _)| url)
            .rsplit_once('/')
            .map_or(admin_url, |(server, _)| server);
        Ok(Self {
            url: format!("{server}/{name}"),
            admin_url: admin_url.to_owned(),
            name,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, ending any connection still open to it.
    pub async fn drop(self) -> Result<(), StoreError> {
        use sqlx::Connection;

        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await?;
        Ok(())
    }
}

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
use crate::config::DatabaseConfig;

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    const BACKEND: &'static str = "sqlite";
    // Write transactions already hold the write lock (`begin_write`).
    const LOCK_AUDIT_HEAD: &'static str = "SELECT size FROM audit_head WHERE id = 1";
    const LOCK_FEED_HEAD: &'static str = "SELECT size FROM feed_head WHERE id = 1";
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
            .busy_timeout(config.acquire_timeout());
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(config.acquire_timeout())
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(config.sqlite_readers.max(1))
            .acquire_timeout(config.acquire_timeout())
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Starts a write transaction holding SQLite's write lock from the first statement, so a
    /// transaction that reads before it writes waits for another writer (another process on
    /// the same file) instead of failing when it upgrades.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

sql_store_common!(SqliteStore, Sqlite);
sql_store_agencies!(SqliteStore, Sqlite);
sql_store_audit!(SqliteStore, Sqlite);
sql_store_compliance!(SqliteStore, Sqlite);

//! PostgreSQL backend: the production path. Replicas are stateless and share one database, so
//! every invariant (uniqueness, etags, idempotency) is enforced by the database inside one
//! transaction, never by process memory.

use std::time::Duration;

use sqlx::{PgPool, Postgres, migrate::Migrator, postgres::PgPoolOptions};

use super::StoreError;

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    const BACKEND: &'static str = "postgres";
    const LOCK_AUDIT_HEAD: &'static str = "SELECT size FROM audit_head WHERE id = 1 FOR UPDATE";
    const LOCK_FEED_HEAD: &'static str = "SELECT size FROM feed_head WHERE id = 1 FOR UPDATE";
    // Concurrent report batches for one employer take turns, so versions never collide.
    const LOCK_EMPLOYERS: &'static str = " FOR UPDATE";
    const MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }
}

sql_store_common!(PostgresStore, Postgres);
sql_store_agencies!(PostgresStore, Postgres);
sql_store_audit!(PostgresStore, Postgres);
sql_store_compliance!(PostgresStore, Postgres);

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

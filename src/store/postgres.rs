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

    fn reader(&self) -> &PgPool {
        &self.pool
    }
}

sql_store_common!(PostgresStore, Postgres);

//! Connections kept out of the pool between queries.

use std::{
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use sqlx::pool::{Pool, PoolConnection};

/// How long a kept connection may sit unused before it goes back to the pool, which tests it
/// as it takes it back: one that broke meanwhile is found before a query needs it.
const KEEP_IDLE: Duration = Duration::from_secs(5);
/// How long a connection is kept at most: back in the pool, it is closed once older than the
/// pool's limit on a connection's lifetime.
const KEEP_AT_MOST: Duration = Duration::from_secs(60);

/// A connection taken from the pool, with when it was taken and last used.
struct Kept<DB: sqlx::Database> {
    connection: PoolConnection<DB>,
    taken: Instant,
    used: Instant,
}

/// Connections kept between queries by a task that queries all the time, instead of handing
/// each back to the pool, which tests every connection it takes back with a round trip of its
/// own. As many are kept as were in use at once, so a pool shared with other work must be
/// larger than that.
pub(super) struct KeptConnections<DB: sqlx::Database> {
    pool: Pool<DB>,
    idle: Mutex<Vec<Kept<DB>>>,
}

impl<DB: sqlx::Database> KeptConnections<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Self {
            pool,
            idle: Mutex::default(),
        }
    }

    /// The pool's size: how many connections may be kept.
    pub fn capacity(&self) -> u32 {
        self.pool.options().get_max_connections()
    }

    /// A kept connection used lately, or one from the pool.
    pub async fn take(&self) -> Result<(PoolConnection<DB>, Instant), sqlx::Error> {
        loop {
            let next = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match next {
                Some(kept)
                    if kept.used.elapsed() < KEEP_IDLE && kept.taken.elapsed() < KEEP_AT_MOST =>
                {
                    return Ok((kept.connection, kept.taken));
                }
                // Dropped: back to the pool, which tests it.
                Some(_stale) => continue,
                None => return Ok((self.pool.acquire().await?, Instant::now())),
            }
        }
    }

    /// Keeps `connection`, taken from the pool at `taken`, for the next query. A connection
    /// whose query failed is not kept but dropped, so the pool tests it.
    pub fn keep(&self, connection: PoolConnection<DB>, taken: Instant) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Kept {
                connection,
                taken,
                used: Instant::now(),
            });
    }
}

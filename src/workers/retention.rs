//! Retention: every hour, drains the idempotency records older than
//! `database.idempotency_retention_hours` (7 days by default).

use std::{sync::Arc, time::Duration};

use crate::store::Store;

/// Purges idempotency records past their retention, hourly. Every replica runs it; the
/// deletes are idempotent, so they need no coordination.
pub async fn purge_idempotency_keys(store: Arc<dyn Store>, retention: Duration) {
    let mut ticker = tokio::time::interval(Duration::from_secs(3600));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let before = time::OffsetDateTime::now_utc() - retention;
        match store.purge_idempotency_keys(before).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "idempotency records past retention purged"),
            Err(error) => tracing::warn!(%error, "cannot purge idempotency records"),
        }
    }
}

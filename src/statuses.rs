//! The status worker: recomputes the compliance statuses that report batches of more than one
//! chunk left queued (see [`ComplianceStore::submit_reports`]), so a monthly batch of a million
//! reports is not slowed by the status ranking's indexes. A batch queues one entry per chunk of
//! up to 1,000 employers; an employer named in several chunks is recomputed once per chunk,
//! and only the first of those can change its status.
//!
//! Every replica runs workers (two on PostgreSQL, one on SQLite; see `App::serve`). On
//! PostgreSQL all of them share the queue: each takes the oldest entry, and the employers in
//! it, that no other transaction holds (`SKIP LOCKED`).
//!
//! [`ComplianceStore::submit_reports`]: crate::store::ComplianceStore::submit_reports

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::store::Store;

/// The report batches of more than one chunk this replica is writing. The worker waits for
/// them to commit: it would compete with them for the database, and a batch still writing
/// queues more of the same employers (each recomputed once if the worker waits).
#[derive(Clone, Default)]
pub struct LargeBatches(Arc<watch::Sender<usize>>);

impl LargeBatches {
    /// Counts a batch as being written until the returned guard is dropped.
    pub fn writing(&self) -> Writing {
        self.0.send_modify(|count| *count += 1);
        Writing(self.clone())
    }

    async fn none_writing(&self) {
        // The sender lives in `self`, so the receiver cannot see it closed.
        let _ = self.0.subscribe().wait_for(|count| *count == 0).await;
    }
}

/// A large batch being written; see [`LargeBatches::writing`].
pub struct Writing(LargeBatches);

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.0.send_modify(|count| *count -= 1);
    }
}

/// Works through the queue an entry at a time; rests `idle` when the queue is empty or an
/// entry's employers were all held by writes, and while `batches` are being written. Runs until
/// the task is dropped.
pub async fn recompute_queued_statuses(
    store: Arc<dyn Store>,
    batches: LargeBatches,
    idle: Duration,
) {
    loop {
        batches.none_writing().await;
        match store.recompute_queued_statuses().await {
            Ok(Some(recomputed)) if recomputed > 0 => {}
            Ok(_) => tokio::time::sleep(idle).await,
            Err(error) => {
                tracing::warn!(%error, "cannot recompute queued compliance statuses");
                tokio::time::sleep(idle).await;
            }
        }
    }
}

//! The status worker: recomputes the compliance statuses that report batches of more than one
//! chunk left queued (see [`ReportStore::submit_reports`]), so a monthly batch of a million
//! reports is not slowed by the status ranking's indexes, and each employer it names is
//! recomputed once however many of its reports the batch held.
//!
//! A batch queues an entry per chunk; at the start of each pass the worker spreads the entries
//! into a queue of employers, which it goes through in id order.
//!
//! Every replica runs workers (two on PostgreSQL, one on SQLite; see `App::serve`). On
//! PostgreSQL all of them share the queues: each takes the entries and queued employers no
//! other transaction holds (`SKIP LOCKED`).
//!
//! [`ReportStore::submit_reports`]: crate::store::ReportStore::submit_reports

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

use crate::store::Store;

/// Employers recomputed per transaction.
const ROUND: u32 = 1000;

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

/// Works through the queue in employer id order, round after round, and starts over from its
/// beginning at the end (employers queued meanwhile below where it was), spreading the
/// batches' entries first; rests `idle` once a whole pass recomputed nothing, and while
/// `batches` are being written. Runs until the task is dropped.
pub async fn recompute_queued_statuses(
    store: Arc<dyn Store>,
    batches: LargeBatches,
    idle: Duration,
) {
    let mut after: Option<Uuid> = None;
    let mut recomputed_this_pass = false;
    loop {
        batches.none_writing().await;
        if after.is_none() {
            spread_entries(store.as_ref(), &batches).await;
        }
        match store.recompute_queued_statuses(after, ROUND).await {
            Ok(Some(round)) => {
                after = Some(round.last);
                recomputed_this_pass |= round.recomputed > 0;
            }
            Ok(None) => {
                let rest = after.is_none() || !recomputed_this_pass;
                after = None;
                recomputed_this_pass = false;
                if rest {
                    tokio::time::sleep(idle).await;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot recompute queued compliance statuses");
                after = None;
                recomputed_this_pass = false;
                tokio::time::sleep(idle).await;
            }
        }
    }
}

/// Spreads every entry the batches left, before a pass, pausing like the rounds while
/// `batches` are being written; a failure leaves the rest to the next pass.
async fn spread_entries(store: &dyn Store, batches: &LargeBatches) {
    loop {
        batches.none_writing().await;
        match store.spread_status_queue().await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(%error, "cannot spread the queued compliance statuses");
                return;
            }
        }
    }
}

//! Getting entries into the database quickly and in order.
//!
//! [`AuditWriter`] is group commit: concurrent calls hand their entries to one task, which
//! appends everything waiting to the log in one transaction — numbered after the writes'
//! pending entries, with the Merkle tree extended — and wakes all of them when it is durable,
//! so the cost of a commit is shared by every call in the batch. The sequencer
//! (`crate::workers::sequencer`) numbers the pending entries of writes that no group commit
//! took. The store serialises both across replicas on the tree head, so numbers never repeat
//! or skip.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::audit::PendingEntry;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Entries appended by one transaction at most.
const MAX_BATCH: usize = 1024;

type Job = (PendingEntry, oneshot::Sender<Result<(), StoreError>>);

#[derive(Clone)]
pub struct AuditWriter {
    jobs: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
}

impl AuditWriter {
    /// Starts the writer task.
    pub fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (jobs, mut queue) = mpsc::channel::<Job>(4 * MAX_BATCH);
        let batch_metrics = Arc::clone(&metrics);
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
                collect_arriving(&mut queue, &mut batch).await;
                let (entries, waiters): (Vec<PendingEntry>, Vec<_>) = batch.drain(..).unzip();
                let result = store.append_audit(&entries).await;
                batch_metrics.record_audit_batch(entries.len(), result.is_ok());
                if let Err(error) = &result {
                    tracing::error!(%error, entries = entries.len(), "audit entries not stored");
                }
                for waiter in waiters {
                    let _ = waiter.send(match &result {
                        Ok(()) => Ok(()),
                        Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolClosed)),
                    });
                }
            }
        });
        (Self { jobs, metrics }, task)
    }

    /// Appends one entry and returns once it is durable.
    pub async fn append(&self, entry: PendingEntry) -> Result<(), StoreError> {
        let handed_over = std::time::Instant::now();
        let (done, durable) = oneshot::channel();
        self.jobs
            .send((entry, done))
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        let stored = durable
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        self.metrics.record_audit_wait(handed_over.elapsed());
        stored
    }
}

/// Adds to `batch` whatever arrives while other tasks get a turn, until a turn brings nothing.
/// The calls the last commit woke are still turning round when the next batch starts: taking
/// only what has arrived would commit a few of them alone and the rest in the commit after,
/// two syncs where one would do. When nothing more is on its way, one turn is all it costs.
async fn collect_arriving(queue: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        tokio::task::yield_now().await;
        let before = batch.len();
        while batch.len() < MAX_BATCH {
            let Ok(job) = queue.try_recv() else { break };
            batch.push(job);
        }
        if batch.len() == before {
            break;
        }
    }
}

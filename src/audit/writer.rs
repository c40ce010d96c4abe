//! Getting entries into the database quickly and in order.
//!
//! [`AuditWriter`] is group commit: concurrent calls hand their entries to one task, which
//! appends everything waiting to the log in one transaction — numbered after the writes'
//! pending entries, with the Merkle tree extended — and wakes all of them when it is durable,
//! so the cost of a commit is shared by every call in the batch. [`Sequencer`] numbers the
//! pending entries of writes that no group commit took. The store serialises both across
//! replicas on the tree head, so numbers never repeat or skip.

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};

use super::PendingEntry;
use crate::feed::FeedHub;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Entries appended by one transaction at most.
const MAX_BATCH: usize = 1024;
/// Entries sequenced by one transaction at most: small enough that a round never holds the
/// write lock long enough to show in the latency of the calls waiting behind it.
const SEQUENCE_BATCH: u32 = 500;

/// Feed events numbered by one transaction at most; feed rows are cheap to move (no tree).
const FEED_SEQUENCE_BATCH: u32 = 10_000;

/// Entries whose records one round of [`index_audit_records`] indexes at most.
const INDEX_BATCH: u32 = 10_000;
/// How long [`index_audit_records`] rests once it has caught up with the log: searches by
/// record read the entries it has not reached yet straight from the log, so the pause costs
/// them a short scan (a second's worth of entries), never a missed entry.
///
/// A second rather than a tenth: keyed by record, a round's entries land on about as many
/// index pages as the records they touch, and a round writes each page it touches once, so
/// short rounds wrote nearly a page per entry. On SQLite that was about 10 MB/s of index
/// file to sync at its checkpoints, and each of those syncs held the log's own commit (on
/// the same file system, whose journal takes both) for 10-20 ms: the slowest percent of
/// audited calls waited on them.
const INDEX_IDLE: Duration = Duration::from_secs(1);

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

pub struct Sequencer;

impl Sequencer {
    /// Sequences pending audit entries and feed events every `interval` until the task is
    /// dropped, telling `feed` about each new feed head. Working in rounds rather than after
    /// every append keeps batches large and leaves the database's write lock to the calls most
    /// of the time.
    pub async fn run(store: Arc<dyn Store>, interval: Duration, feed: Arc<FeedHub>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            loop {
                match store.sequence_audit(SEQUENCE_BATCH).await {
                    Ok(count) if count == u64::from(SEQUENCE_BATCH) => continue,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "cannot sequence audit entries");
                        break;
                    }
                }
            }
            loop {
                // Like the audit loop: go on only while batches come full, so a steady stream of
                // writes cannot keep this round from ending.
                match store.sequence_feed(FEED_SEQUENCE_BATCH).await {
                    Ok((moved, head)) => {
                        if moved > 0 {
                            feed.advance(head);
                        }
                        if moved < u64::from(FEED_SEQUENCE_BATCH) {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot sequence feed events");
                        break;
                    }
                }
            }
        }
    }
}

/// Keeps the store's record index (which entries touched which record) caught up with the log
/// where the store builds it apart from the append; see
/// [`AuditStore::index_audit_records`](crate::store::AuditStore::index_audit_records).
pub async fn index_audit_records(store: Arc<dyn Store>) {
    loop {
        match store.index_audit_records(INDEX_BATCH).await {
            Ok(indexed) if indexed == u64::from(INDEX_BATCH) => continue,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot index the records of audit entries"),
        }
        tokio::time::sleep(INDEX_IDLE).await;
    }
}

//! The audit record indexer: where the store keeps the index of which entries touched which
//! record apart from the log (SQLite), it drains the log into that index in rounds, resting a
//! second once it has caught up.

use std::{sync::Arc, time::Duration};

use crate::store::Store;

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

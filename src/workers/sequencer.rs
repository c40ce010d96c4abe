//! The sequencer: every `audit.sequence_interval_ms` (100 ms by default) it drains the audit
//! log's pending entries (those of writes no group commit took) into the numbered log, and the
//! feed's pending events into the numbered feed, telling the feed hub of each new head.

use std::{sync::Arc, time::Duration};

use super::feed::FeedHub;
use crate::store::Store;

/// Entries sequenced by one transaction at most: small enough that a round never holds the
/// write lock long enough to show in the latency of the calls waiting behind it.
const SEQUENCE_BATCH: u32 = 500;

/// Feed events numbered by one transaction at most; feed rows are cheap to move (no tree).
const FEED_SEQUENCE_BATCH: u32 = 10_000;

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

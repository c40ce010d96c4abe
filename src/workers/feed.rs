//! Tells feed subscribers when new events are numbered.
//!
//! The feed's cursor is the sequence the sequencer gives events (see `store::compliance`), so it
//! is identical on every replica and a subscriber resumes anywhere by reading the table after
//! its cursor. Subscribers therefore never receive events through memory: they read the table
//! and only wait here for the head to move — moved at once by this replica's sequencer, and by
//! a poll of the database for events numbered by other replicas.
//!
//! The feed has a sequence of its own rather than reusing the audit log's: one write produces
//! several events (a report, the statuses it changes) and most audit entries are reads, so the
//! feed's cursor counts exactly the events there are, and numbering them never touches the
//! Merkle tree.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;

use crate::store::Store;

pub struct FeedHub {
    head: watch::Sender<u64>,
}

impl FeedHub {
    pub fn new(head: u64) -> Arc<Self> {
        Arc::new(Self {
            head: watch::Sender::new(head),
        })
    }

    /// Records a new head; heads only move forward.
    pub fn advance(&self, head: u64) {
        self.head.send_if_modified(|current| {
            let moved = head > *current;
            if moved {
                *current = head;
            }
            moved
        });
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Streams following the feed now.
    pub fn subscribers(&self) -> usize {
        self.head.receiver_count()
    }

    /// Polls the database's head every `interval` until the task is dropped.
    pub async fn follow(self: Arc<Self>, store: Arc<dyn Store>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match store.feed_head().await {
                Ok(head) => self.advance(head),
                Err(error) => tracing::warn!(%error, "cannot read the feed's head"),
            }
        }
    }
}

//! The background workers every replica runs beside the calls it serves, each draining one
//! queue or table on its own schedule (each file says which and how often), and the guard that
//! ties a worker's life to the server that started it.

pub mod audit_index;
pub mod audit_writer;
pub mod feed;
pub mod retention;
pub mod sequencer;
pub mod statuses;

/// Aborts the task when dropped, so a background loop ends with its owner however the owner
/// ends (returned, failed or dropped).
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

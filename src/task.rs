//! Background tasks tied to the lifetime of what started them.

/// Aborts the task when dropped, so a background loop ends with its owner however the owner
/// ends (returned, failed or dropped).
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

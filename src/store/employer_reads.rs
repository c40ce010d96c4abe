//! Reads of single employers that arrive together share one query.
//!
//! Most calls read one employer (to answer it, or to check the caller's region before a
//! write). A query of its own per call costs a round trip to the database — to PostgreSQL's
//! server, or to the thread a SQLite connection runs on — and the pool tests the connection
//! with another one when it takes it back; under load those round trips, not the lookups, were
//! most of a read's cost. One task hands every key waiting at a given moment to a single query,
//! with up to `concurrency` such queries in flight: under light load a read goes alone and at
//! once, under heavy load the reads that arrive while queries run gather into the next one.
//!
//! A read still sees every write committed before it was asked for: its query starts after the
//! read joined the queue, so its snapshot is taken later still.

use std::{future::Future, sync::Arc};

use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use super::{EmployerRow, StoreError};
use crate::domain::employer::{Employer, EmployerKey};

/// Keys one query looks up at most.
const MAX_BATCH: usize = 256;

type Answer = Result<Option<Employer>, StoreError>;
/// A read waiting for its query: the key, and where its answer goes.
type Read = (EmployerKey, oneshot::Sender<Answer>);

/// The keys of one query, by the column each is looked up in.
#[derive(Debug, Default)]
pub(super) struct EmployerKeys {
    pub ids: Vec<Uuid>,
    pub npwps: Vec<String>,
    pub nibs: Vec<String>,
}

impl EmployerKeys {
    fn add(&mut self, key: &EmployerKey) {
        match key {
            EmployerKey::Id(id) => self.ids.push(*id),
            EmployerKey::Npwp(npwp) => self.npwps.push(npwp.as_str().to_owned()),
            EmployerKey::Nib(nib) => self.nibs.push(nib.as_str().to_owned()),
        }
    }
}

fn row_has_key(row: &EmployerRow, key: &EmployerKey) -> bool {
    match key {
        EmployerKey::Id(id) => row.id == *id,
        EmployerKey::Npwp(npwp) => row.npwp == npwp.as_str(),
        EmployerKey::Nib(nib) => row.nib.as_deref() == Some(nib.as_str()),
    }
}

/// A failed query's error for each read that shared it: the same kind (so an outage still
/// answers `UNAVAILABLE`), its cause in the message. The cause itself is logged once.
fn shared_failure(error: &StoreError) -> StoreError {
    let cause = || std::io::Error::other(error.to_string());
    match error {
        StoreError::Unavailable(_) => StoreError::Unavailable(sqlx::Error::Io(cause())),
        StoreError::Corrupt(detail) => StoreError::Corrupt(detail.clone()),
        _ => StoreError::Internal(sqlx::Error::Io(cause())),
    }
}

pub(super) struct EmployerReads {
    requests: mpsc::Sender<Read>,
}

impl EmployerReads {
    /// Starts the task that gathers reads and runs `fetch` (the rows matching any of the keys)
    /// for them, at most `concurrency` at a time. It ends when the `EmployerReads` is dropped.
    pub fn start<F, Fut>(concurrency: usize, fetch: F) -> Self
    where
        F: Fn(EmployerKeys) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<EmployerRow>, StoreError>> + Send + 'static,
    {
        let (requests, mut queue) = mpsc::channel(4 * MAX_BATCH);
        let fetch = Arc::new(fetch);
        tokio::spawn(async move {
            let in_flight = Arc::new(Semaphore::new(concurrency.max(1)));
            let mut batch: Vec<Read> = Vec::new();
            // The permit comes first: while every query is busy the reads wait in the queue,
            // and the next query takes all of them.
            while let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await {
                if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
                    return;
                }
                let reads = std::mem::take(&mut batch);
                let fetch = Arc::clone(&fetch);
                tokio::spawn(async move {
                    let mut keys = EmployerKeys::default();
                    for (key, _) in &reads {
                        keys.add(key);
                    }
                    let fetched = fetch(keys).await;
                    drop(permit);
                    answer(reads, fetched);
                });
            }
        });
        Self { requests }
    }

    /// The employer with `key`, if there is one.
    pub async fn find(&self, key: &EmployerKey) -> Answer {
        let gone = || StoreError::Unavailable(sqlx::Error::PoolClosed);
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((key.clone(), reply))
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Gives each read the row with its key, converted on its own: a row that cannot be read
/// fails only the reads of that employer.
fn answer(reads: Vec<Read>, fetched: Result<Vec<EmployerRow>, StoreError>) {
    match fetched {
        Ok(rows) => {
            for (key, reply) in reads {
                let found = rows
                    .iter()
                    .find(|row| row_has_key(row, &key))
                    .map(|row| Employer::try_from(row.clone()))
                    .transpose();
                // The caller may have gone (a cancelled call); nobody is left to tell.
                let _ = reply.send(found);
            }
        }
        Err(error) => {
            tracing::warn!(%error, reads = reads.len(), "employer lookup failed");
            for (_, reply) in reads {
                let _ = reply.send(Err(shared_failure(&error)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::identifiers::Npwp;

    fn row(id: Uuid, npwp: &str) -> EmployerRow {
        EmployerRow {
            id,
            npwp: npwp.to_owned(),
            nib: None,
            bpjs_tk_npp: "12345678".to_owned(),
            bpjs_kes_code: None,
            name: "PT Contoh".to_owned(),
            address: None,
            region_code: "31.71".to_owned(),
            kbli: None,
            size_class: None,
            workforce_declared: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            revision: 1,
        }
    }

    /// A resident's NIK (Jakarta Pusat, born 15 January 1990) with serial `n`, as an NPWP.
    fn npwp_of(n: u128) -> String {
        format!("317101150190{n:04}")
    }

    /// Reads that arrive while the only query runs are answered together by the next one,
    /// each with its own employer (or none).
    #[tokio::test]
    async fn reads_waiting_behind_a_query_share_the_next_one() {
        let stored: Vec<EmployerRow> = (1..=10u128)
            .map(|n| row(Uuid::from_u128(n), &npwp_of(n)))
            .collect();
        let (queries, mut seen) = mpsc::unbounded_channel::<EmployerKeys>();
        let gate = Arc::new(Semaphore::new(0));
        let table = stored.clone();
        let query_gate = Arc::clone(&gate);
        let reads = Arc::new(EmployerReads::start(1, move |keys: EmployerKeys| {
            let rows: Vec<EmployerRow> = table
                .iter()
                .filter(|row| keys.ids.contains(&row.id) || keys.npwps.contains(&row.npwp))
                .cloned()
                .collect();
            let _ = queries.send(keys);
            let gate = Arc::clone(&query_gate);
            async move {
                gate.acquire()
                    .await
                    .map_err(|_| StoreError::NotFound("gate"))?
                    .forget();
                Ok(rows)
            }
        }));

        let first = tokio::spawn({
            let reads = Arc::clone(&reads);
            async move { reads.find(&EmployerKey::Id(Uuid::from_u128(1))).await }
        });
        let first_query = seen.recv().await.expect("the first read is queried");
        assert_eq!(first_query.ids, vec![Uuid::from_u128(1)]);

        let mut keys: Vec<EmployerKey> = (2..=5u128)
            .map(|n| EmployerKey::Id(Uuid::from_u128(n)))
            .collect();
        keys.push(EmployerKey::Npwp(
            Npwp::parse(&npwp_of(8)).expect("valid NPWP"),
        ));
        keys.push(EmployerKey::Id(Uuid::from_u128(99)));
        let waiting: Vec<_> = keys
            .iter()
            .cloned()
            .map(|key| {
                let reads = Arc::clone(&reads);
                tokio::spawn(async move { reads.find(&key).await })
            })
            .collect();
        while reads.requests.max_capacity() - reads.requests.capacity() < keys.len() {
            tokio::task::yield_now().await;
        }
        // Enough for every query, so a read that went alone would still be answered.
        gate.add_permits(keys.len() + 1);

        let found = first.await.expect("joined").expect("answered");
        assert_eq!(found.map(|employer| employer.id), Some(Uuid::from_u128(1)));
        let second_query = seen.recv().await.expect("the waiting reads are queried");
        assert_eq!(second_query.ids.len(), 5);
        assert_eq!(second_query.npwps.len(), 1);
        let mut answers = Vec::new();
        for read in waiting {
            answers.push(read.await.expect("joined").expect("answered").map(|e| e.id));
        }
        assert_eq!(
            answers,
            vec![
                Some(Uuid::from_u128(2)),
                Some(Uuid::from_u128(3)),
                Some(Uuid::from_u128(4)),
                Some(Uuid::from_u128(5)),
                Some(Uuid::from_u128(8)),
                None,
            ]
        );
    }
}

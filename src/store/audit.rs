//! The [`AuditStore`](super::AuditStore) implementation shared by both backends, instantiated by
//! `sql_store_audit!(StoreType, DatabaseType)`. The store type provides
//! `LOCK_AUDIT_HEAD`, the statement that reads the tree head (size, root, whether entries are
//! pending) and, on PostgreSQL, locks it so only one replica extends the log at a time (SQLite
//! write transactions hold the file's write lock), `append_at_known_head`, an append that
//! skips reading and locking the head where the backend can (false when it did not append),
//! and `begin_sequencing`, the transaction a sequencer round runs in, `push_entries_touching`
//! and `push_records_changed_by`, the subqueries searches by record are made of, and
//! `index_records`, which brings a record index built apart from the append up to date.

use crate::audit::PendingEntry;
use crate::audit::merkle::{Frontier, Hash, NodeId, leaf_hash};

/// The log's right edge as this process last committed it. An append starts from it when the
/// head is still the one it left (same size and root: nobody else extended the log meanwhile)
/// instead of reading the edge's nodes back.
#[derive(Default)]
pub struct FrontierCache(std::sync::Mutex<Option<(Frontier, Hash)>>);

impl FrontierCache {
    pub(super) fn at(&self, size: u64, root: &Hash) -> Option<Frontier> {
        self.latest()
            .filter(|(frontier, cached_root)| frontier.size() == size && cached_root == root)
            .map(|(frontier, _)| frontier)
    }

    /// The edge as this process last committed it, with its root.
    pub(super) fn latest(&self) -> Option<(Frontier, Hash)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Remembers `frontier` once the transaction that wrote it has committed.
    pub(super) fn keep(&self, frontier: Frontier) {
        let root = frontier.root();
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((frontier, root));
    }
}

/// The tree head's root hash as stored.
/// Hashes of tree nodes by node.
pub(super) type NodeHashes = std::collections::HashMap<NodeId, Hash>;

pub(super) fn stored_root(root: Vec<u8>) -> Result<Hash, super::StoreError> {
    root.try_into()
        .map_err(|_| super::StoreError::Corrupt("audit root".into()))
}

/// The tree head as a transaction that is about to extend the log locked it.
pub(super) struct LockedHead {
    pub size: u64,
    pub root: Hash,
    pub pending: Vec<PendingRow>,
}

/// Pending entries an append takes into the log with its own: bounded, so a backlog of write
/// entries is left to the sequencer rather than making one call wait for all of it.
pub(super) const PENDING_TAKEN_BY_APPEND: u32 = 500;

/// An entry written with its data change, waiting to be numbered.
#[derive(sqlx::FromRow)]
pub(super) struct PendingRow {
    pub id: i64,
    pub entry: Vec<u8>,
    pub time_us: i64,
    pub agency: String,
    pub method: String,
    pub decision: String,
    pub status_code: i32,
    pub is_write: bool,
    /// Space-separated.
    pub resources: String,
}

/// An entry as the log stores it.
pub(super) struct LogRow<'a> {
    pub entry: &'a [u8],
    pub time_us: i64,
    pub agency: &'a str,
    pub method: &'a str,
    pub decision: &'a str,
    pub status_code: i32,
    pub is_write: bool,
    pub resources: Vec<&'a str>,
}

/// Extends `frontier` with a leaf per row, in order; the tree nodes the leaves complete.
pub(super) fn append_leaves(frontier: &mut Frontier, rows: &[LogRow<'_>]) -> Vec<(NodeId, Hash)> {
    let mut nodes = Vec::with_capacity(rows.len() * 2);
    for row in rows {
        nodes.extend(frontier.append(leaf_hash(row.entry)));
    }
    nodes
}

/// Each row's resources as (sequence number, resource id), the rows numbered from `first_seq`.
pub(super) fn numbered_resources<'a>(
    first_seq: u64,
    rows: &'a [LogRow<'a>],
) -> impl Iterator<Item = (i64, &'a str)> + 'a {
    rows.iter().zip(first_seq..).flat_map(|(row, seq)| {
        let seq = seq as i64;
        row.resources.iter().map(move |id| (seq, *id))
    })
}

impl<'a> From<&'a PendingRow> for LogRow<'a> {
    fn from(row: &'a PendingRow) -> Self {
        Self {
            entry: &row.entry,
            time_us: row.time_us,
            agency: &row.agency,
            method: &row.method,
            decision: &row.decision,
            status_code: row.status_code,
            is_write: row.is_write,
            resources: row.resources.split_whitespace().collect(),
        }
    }
}

impl<'a> From<&'a PendingEntry> for LogRow<'a> {
    fn from(entry: &'a PendingEntry) -> Self {
        Self {
            entry: &entry.bytes,
            time_us: entry.time_us,
            agency: &entry.agency,
            method: &entry.method,
            decision: entry.decision,
            status_code: entry.status_code,
            is_write: entry.is_write,
            resources: entry.resources.iter().map(String::as_str).collect(),
        }
    }
}

macro_rules! sql_store_audit {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Appends pending entries inside `tx` with one multi-row insert.
            async fn insert_audit_entries(
                tx: &mut sqlx::Transaction<'_, $db>,
                entries: &[$crate::audit::PendingEntry],
            ) -> Result<(), $crate::store::StoreError> {
                if entries.is_empty() {
                    return Ok(());
                }
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO audit_pending (entry, time_us, agency, method, decision, \
                     status_code, is_write, resources) ",
                );
                query.push_values(entries, |mut row, entry| {
                    row.push_bind(entry.bytes.as_slice())
                        .push_bind(entry.time_us)
                        .push_bind(entry.agency.as_str())
                        .push_bind(entry.method.as_str())
                        .push_bind(entry.decision)
                        .push_bind(entry.status_code)
                        .push_bind(entry.is_write)
                        .push_bind(entry.resources.join(" "));
                });
                query.build().execute(&mut **tx).await?;
                Ok(())
            }
        }

        impl $store {
            /// Numbers the pending entries `head` took, then `entries`, after the entries
            /// already in the log, and commits `tx` (which holds the tree head): the entries
            /// with their searchable columns and resources, the tree nodes they complete, the
            /// new head, and the pending rows gone.
            async fn commit_to_log(
                &self,
                mut tx: sqlx::Transaction<'_, $db>,
                head: &$crate::store::audit::LockedHead,
                entries: &[$crate::audit::PendingEntry],
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::audit::merkle::Frontier;
                use $crate::store::StoreError;
                use $crate::store::audit::LogRow;

                let rows: Vec<LogRow<'_>> = head
                    .pending
                    .iter()
                    .map(LogRow::from)
                    .chain(entries.iter().map(LogRow::from))
                    .collect();
                let size = head.size;
                let mut frontier = match self.frontier.at(size, &head.root) {
                    Some(frontier) => frontier,
                    None => {
                        let stored = Self::fetch_nodes(&mut tx, &Frontier::nodes(size)).await?;
                        Frontier::load(size, &stored).ok_or_else(|| {
                            StoreError::Corrupt(format!("audit tree frontier at size {size}"))
                        })?
                    }
                };
                let nodes = $crate::store::audit::append_leaves(&mut frontier, &rows);

                Self::write_log(&mut tx, size, &rows, &nodes, &frontier).await?;
                Self::drop_pending(&mut tx, &head.pending).await?;
                tx.commit().await?;
                self.frontier.keep(frontier);
                Ok(())
            }

            /// Takes the tree head and up to `limit` pending entries (the writes' entries, in
            /// id order) inside `tx`; they stay pending until [`Self::drop_pending`].
            async fn lock_head(
                tx: &mut sqlx::Transaction<'_, $db>,
                limit: u32,
            ) -> Result<$crate::store::audit::LockedHead, $crate::store::StoreError> {
                let (size, root, waiting): (i64, Vec<u8>, bool) =
                    sqlx::query_as(Self::LOCK_AUDIT_HEAD)
                        .fetch_one(&mut **tx)
                        .await?;
                let root = $crate::store::audit::stored_root(root)?;
                let pending = if waiting {
                    sqlx::query_as(
                        "SELECT id, entry, time_us, agency, method, decision, status_code, \
                         is_write, resources FROM audit_pending ORDER BY id LIMIT $1",
                    )
                    .bind(i64::from(limit))
                    .fetch_all(&mut **tx)
                    .await?
                } else {
                    Vec::new()
                };
                Ok($crate::store::audit::LockedHead {
                    size: size.max(0) as u64,
                    root,
                    pending,
                })
            }

            async fn drop_pending(
                tx: &mut sqlx::Transaction<'_, $db>,
                pending: &[$crate::store::audit::PendingRow],
            ) -> Result<(), $crate::store::StoreError> {
                if pending.is_empty() {
                    return Ok(());
                }
                let mut delete =
                    sqlx::QueryBuilder::<$db>::new("DELETE FROM audit_pending WHERE id IN (");
                let mut ids = delete.separated(", ");
                for row in pending {
                    ids.push_bind(row.id);
                }
                delete.push(")");
                delete.build().execute(&mut **tx).await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::AuditStore for $store {
            async fn append_audit(
                &self,
                entries: &[$crate::audit::PendingEntry],
            ) -> Result<(), $crate::store::StoreError> {
                // The entries go straight into the log, after the writes' entries waiting for
                // the sequencer: one transaction instead of a pending row now and a sequencer
                // round later, and the log keeps the order in which calls were recorded.
                if self.append_at_known_head(entries).await? {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                let head =
                    Self::lock_head(&mut tx, $crate::store::audit::PENDING_TAKEN_BY_APPEND).await?;
                self.commit_to_log(tx, &head, entries).await
            }

            async fn sequence_audit(&self, limit: u32) -> Result<u64, $crate::store::StoreError> {
                // Most rounds find nothing to do: find that out without taking the lock.
                let waiting: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM audit_pending ORDER BY id LIMIT 1")
                        .fetch_optional(self.reader())
                        .await?;
                if waiting.is_none() {
                    return Ok(0);
                }
                let mut tx = self.begin_sequencing().await?;
                let head = Self::lock_head(&mut tx, limit).await?;
                if head.pending.is_empty() {
                    return Ok(0);
                }
                self.commit_to_log(tx, &head, &[]).await?;
                Ok(head.pending.len() as u64)
            }

            async fn index_audit_records(
                &self,
                limit: u32,
            ) -> Result<u64, $crate::store::StoreError> {
                self.index_records(limit).await
            }

            async fn audit_head(
                &self,
            ) -> Result<(u64, $crate::audit::merkle::Hash), $crate::store::StoreError> {
                let (size, root): (i64, Vec<u8>) =
                    sqlx::query_as("SELECT size, root FROM audit_head WHERE id = 1")
                        .fetch_one(self.reader())
                        .await?;
                Ok((size as u64, $crate::store::audit::stored_root(root)?))
            }

            async fn audit_nodes(
                &self,
                nodes: &[$crate::audit::merkle::NodeId],
            ) -> Result<$crate::store::audit::NodeHashes, $crate::store::StoreError> {
                let mut tx = self.reader().begin().await?;
                let found = Self::fetch_nodes(&mut tx, nodes).await?;
                tx.commit().await?;
                Ok(found)
            }

            async fn audit_entries(
                &self,
                start: u64,
                end: u64,
            ) -> Result<Vec<(u64, Vec<u8>)>, $crate::store::StoreError> {
                let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT seq, entry FROM audit_log WHERE seq >= $1 AND seq < $2 ORDER BY seq",
                )
                .bind(start as i64)
                .bind(end as i64)
                .fetch_all(self.reader())
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(seq, entry)| (seq as u64, entry))
                    .collect())
            }

            async fn list_audit_events(
                &self,
                filter: &$crate::store::AuditFilter,
                after: Option<u64>,
                limit: u32,
            ) -> Result<Vec<(u64, Vec<u8>)>, $crate::store::StoreError> {
                let mut query =
                    sqlx::QueryBuilder::<$db>::new("SELECT seq, entry FROM audit_log WHERE 1 = 1");
                if let Some(agency) = &filter.agency {
                    query.push(" AND agency = ").push_bind(agency.clone());
                }
                if let Some(method) = &filter.method {
                    query.push(" AND method = ").push_bind(method.clone());
                }
                if let Some(resource) = &filter.resource_id {
                    query.push(" AND seq IN (");
                    Self::push_entries_touching(&mut query, &|records| {
                        records.push_bind(resource.clone());
                    });
                    query.push(")");
                }
                if let Some(start) = filter.start_us {
                    query.push(" AND time_us >= ").push_bind(start);
                }
                if let Some(end) = filter.end_us {
                    query.push(" AND time_us < ").push_bind(end);
                }
                if let Some(decision) = filter.decision {
                    query.push(" AND decision = ").push_bind(decision);
                }
                if let Some(viewer) = &filter.visible_to {
                    // The viewer's own calls, and calls that touched records it changed.
                    query
                        .push(" AND (agency = ")
                        .push_bind(viewer.clone())
                        .push(" OR seq IN (");
                    Self::push_entries_touching(&mut query, &|records| {
                        Self::push_records_changed_by(records, viewer)
                    });
                    query.push("))");
                }
                if let Some(after) = after {
                    query.push(" AND seq > ").push_bind(after as i64);
                }
                query
                    .push(" ORDER BY seq LIMIT ")
                    .push_bind(i64::from(limit));
                let rows: Vec<(i64, Vec<u8>)> =
                    query.build_query_as().fetch_all(self.reader()).await?;
                Ok(rows
                    .into_iter()
                    .map(|(seq, entry)| (seq as u64, entry))
                    .collect())
            }
        }

        impl $store {
            async fn fetch_nodes(
                tx: &mut sqlx::Transaction<'_, $db>,
                nodes: &[$crate::audit::merkle::NodeId],
            ) -> Result<$crate::store::audit::NodeHashes, $crate::store::StoreError> {
                let wanted: std::collections::HashMap<i64, $crate::audit::merkle::NodeId> =
                    nodes.iter().map(|node| (node.key(), *node)).collect();
                let mut found = std::collections::HashMap::with_capacity(nodes.len());
                for chunk in nodes.chunks(500) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "SELECT key, hash FROM audit_nodes WHERE key IN (",
                    );
                    let mut keys = query.separated(", ");
                    for node in chunk {
                        keys.push_bind(node.key());
                    }
                    query.push(")");
                    let rows: Vec<(i64, Vec<u8>)> =
                        query.build_query_as().fetch_all(&mut **tx).await?;
                    for (key, hash) in rows {
                        let corrupt =
                            || $crate::store::StoreError::Corrupt(format!("audit node {key}"));
                        let node = wanted.get(&key).ok_or_else(corrupt)?;
                        found.insert(*node, hash.try_into().map_err(|_| corrupt())?);
                    }
                }
                Ok(found)
            }
        }
    };
}

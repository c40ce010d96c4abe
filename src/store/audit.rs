//! The [`AuditStore`](super::AuditStore) implementation shared by both backends, instantiated by
//! `sql_store_audit!(StoreType, DatabaseType)`. The store type provides
//! `LOCK_AUDIT_HEAD`, the statement that reads the tree head and, on PostgreSQL, locks it so
//! only one replica sequences at a time (SQLite write transactions hold the file's write lock).

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

        #[async_trait::async_trait]
        impl $crate::store::AuditStore for $store {
            async fn append_audit(
                &self,
                entries: &[$crate::audit::PendingEntry],
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                Self::insert_audit_entries(&mut tx, entries).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn sequence_audit(&self, limit: u32) -> Result<u64, $crate::store::StoreError> {
                use $crate::audit::merkle::{Frontier, Hash, NodeId, leaf_hash};
                use $crate::store::StoreError;

                // Most rounds find nothing to do: find that out without taking the lock.
                let waiting: Option<i64> = sqlx::query_scalar("SELECT id FROM audit_pending ORDER BY id LIMIT 1")
                    .fetch_optional(self.reader())
                    .await?;
                if waiting.is_none() {
                    return Ok(0);
                }
                let mut tx = self.begin_write().await?;
                let size: i64 = sqlx::query_scalar(Self::LOCK_AUDIT_HEAD)
                    .fetch_one(&mut *tx)
                    .await?;
                let pending: Vec<(i64, Vec<u8>, i64, String, String, String, i32, bool, String)> =
                    sqlx::query_as(
                        "SELECT id, entry, time_us, agency, method, decision, status_code, \
                         is_write, resources FROM audit_pending ORDER BY id LIMIT $1",
                    )
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                if pending.is_empty() {
                    return Ok(0);
                }

                let size = size as u64;
                let frontier_nodes = Frontier::nodes(size);
                let stored = Self::fetch_nodes(&mut tx, &frontier_nodes).await?;
                let mut frontier = Frontier::load(size, &stored).ok_or_else(|| {
                    StoreError::Corrupt(format!("audit tree frontier at size {size}"))
                })?;
                let mut nodes: Vec<(NodeId, Hash)> = Vec::with_capacity(pending.len() * 2);
                for (_, entry, ..) in &pending {
                    nodes.extend(frontier.append(leaf_hash(entry)));
                }

                let mut log = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO audit_log (seq, entry, time_us, agency, method, decision, \
                     status_code, is_write) ",
                );
                log.push_values(pending.iter().enumerate(), |mut row, (offset, p)| {
                    row.push_bind((size + offset as u64) as i64)
                        .push_bind(p.1.as_slice())
                        .push_bind(p.2)
                        .push_bind(p.3.as_str())
                        .push_bind(p.4.as_str())
                        .push_bind(p.5.as_str())
                        .push_bind(p.6)
                        .push_bind(p.7);
                });
                log.build().execute(&mut *tx).await?;

                let resources: Vec<(i64, &str)> = pending
                    .iter()
                    .enumerate()
                    .flat_map(|(offset, p)| {
                        let seq = (size + offset as u64) as i64;
                        p.8.split_whitespace().map(move |id| (seq, id))
                    })
                    .collect();
                for chunk in resources.chunks(4000) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO audit_resources (seq, resource_id) ",
                    );
                    query.push_values(chunk, |mut row, (seq, id)| {
                        row.push_bind(*seq).push_bind(*id);
                    });
                    query.build().execute(&mut *tx).await?;
                }

                for chunk in nodes.chunks(4000) {
                    let mut query =
                        sqlx::QueryBuilder::<$db>::new("INSERT INTO audit_nodes (key, hash) ");
                    query.push_values(chunk, |mut row, (node, hash)| {
                        row.push_bind(node.key()).push_bind(hash.to_vec());
                    });
                    query.build().execute(&mut *tx).await?;
                }

                let mut delete =
                    sqlx::QueryBuilder::<$db>::new("DELETE FROM audit_pending WHERE id IN (");
                let mut ids = delete.separated(", ");
                for (id, ..) in &pending {
                    ids.push_bind(*id);
                }
                delete.push(")");
                delete.build().execute(&mut *tx).await?;

                sqlx::query("UPDATE audit_head SET size = $1, root = $2 WHERE id = 1")
                    .bind(frontier.size() as i64)
                    .bind(frontier.root().to_vec())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(pending.len() as u64)
            }

            async fn audit_head(
                &self,
            ) -> Result<(u64, $crate::audit::merkle::Hash), $crate::store::StoreError> {
                let (size, root): (i64, Vec<u8>) =
                    sqlx::query_as("SELECT size, root FROM audit_head WHERE id = 1")
                        .fetch_one(self.reader())
                        .await?;
                let root = root
                    .try_into()
                    .map_err(|_| $crate::store::StoreError::Corrupt("audit root".into()))?;
                Ok((size as u64, root))
            }

            async fn audit_nodes(
                &self,
                nodes: &[$crate::audit::merkle::NodeId],
            ) -> Result<
                std::collections::HashMap<$crate::audit::merkle::NodeId, $crate::audit::merkle::Hash>,
                $crate::store::StoreError,
            > {
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
                Ok(rows.into_iter().map(|(seq, entry)| (seq as u64, entry)).collect())
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
                    query
                        .push(" AND seq IN (SELECT seq FROM audit_resources WHERE resource_id = ")
                        .push_bind(resource.clone())
                        .push(")");
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
                        .push(
                            " OR seq IN (SELECT r.seq FROM audit_resources r WHERE r.resource_id IN \
                             (SELECT w.resource_id FROM audit_resources w JOIN audit_log l \
                             ON l.seq = w.seq WHERE l.is_write = ",
                        )
                        .push_bind(true)
                        .push(" AND l.decision = 'allowed' AND l.agency = ")
                        .push_bind(viewer.clone())
                        .push(")))");
                }
                if let Some(after) = after {
                    query.push(" AND seq > ").push_bind(after as i64);
                }
                query.push(" ORDER BY seq LIMIT ").push_bind(i64::from(limit));
                let rows: Vec<(i64, Vec<u8>)> = query.build_query_as().fetch_all(self.reader()).await?;
                Ok(rows.into_iter().map(|(seq, entry)| (seq as u64, entry)).collect())
            }
        }

        impl $store {
            async fn fetch_nodes(
                tx: &mut sqlx::Transaction<'_, $db>,
                nodes: &[$crate::audit::merkle::NodeId],
            ) -> Result<
                std::collections::HashMap<$crate::audit::merkle::NodeId, $crate::audit::merkle::Hash>,
                $crate::store::StoreError,
            > {
                use $crate::audit::merkle::NodeId;
                let mut found = std::collections::HashMap::with_capacity(nodes.len());
                for chunk in nodes.chunks(500) {
                    let mut query =
                        sqlx::QueryBuilder::<$db>::new("SELECT key, hash FROM audit_nodes WHERE key IN (");
                    let mut keys = query.separated(", ");
                    for node in chunk {
                        keys.push_bind(node.key());
                    }
                    query.push(")");
                    let rows: Vec<(i64, Vec<u8>)> = query.build_query_as().fetch_all(&mut **tx).await?;
                    for (key, hash) in rows {
                        let hash = hash.try_into().map_err(|_| {
                            $crate::store::StoreError::Corrupt(format!("audit node {key}"))
                        })?;
                        found.insert(NodeId::from_key(key), hash);
                    }
                }
                Ok(found)
            }
        }
    };
}

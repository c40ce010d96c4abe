//! `sinergi.v1.AuditService`: reading the audit log and proving it has not been rewritten.

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};

use super::{cursor_of, page_size_of, principal, split_page};
use crate::audit::{checkpoint, decision_name, merkle};
use crate::auth::Authenticator;
use crate::domain::scope::Scope;
use crate::error::ApiError;
use crate::proto::{self, audit_service_server::AuditService};
use crate::store::{AuditFilter, Store, StoreError};

/// Entries returned by one GetEntries call at most.
pub const MAX_ENTRIES_PER_CALL: u64 = 1000;

pub struct AuditApi {
    store: Arc<dyn Store>,
    authenticator: Arc<Authenticator>,
    origin: String,
}

impl AuditApi {
    pub fn new(store: Arc<dyn Store>, authenticator: Arc<Authenticator>, origin: String) -> Self {
        Self {
            store,
            authenticator,
            origin,
        }
    }

    /// The tree size a request names: 0 means the current size, anything larger is refused.
    async fn tree_size(&self, requested: u64, field: &str) -> Result<u64, ApiError> {
        let (size, _) = self.store.audit_head().await?;
        match requested {
            0 => Ok(size),
            requested if requested <= size => Ok(requested),
            requested => Err(ApiError::invalid(
                field,
                format!("the log holds {size} entries, not {requested}"),
            )),
        }
    }
}

fn micros(at: &prost_types::Timestamp) -> i64 {
    at.seconds * 1_000_000 + i64::from(at.nanos) / 1_000
}

fn missing_nodes() -> ApiError {
    ApiError::Store(StoreError::Corrupt("audit tree nodes missing".into()))
}

fn hashes(proof: Vec<merkle::Hash>) -> Vec<Vec<u8>> {
    proof.into_iter().map(|hash| hash.to_vec()).collect()
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_events(
        &self,
        request: Request<proto::ListEventsRequest>,
    ) -> Result<Response<proto::ListEventsResponse>, Status> {
        let principal = principal(&request)?;
        let visible_to = match principal.require(Scope::AuditRead) {
            Ok(_) => None,
            Err(_) => Some(principal.agency_id().as_str().to_owned()),
        };
        let request = request.into_inner();
        // No identifier holds a control character, and PostgreSQL cannot even compare text
        // holding NUL: such a filter is bad input, not a query.
        let text = |field: &str, value: &str| {
            if value.chars().any(char::is_control) {
                return Err(ApiError::invalid(field, "may not hold control characters"));
            }
            Ok(Some(value.trim().to_owned()).filter(|v| !v.is_empty()))
        };
        let decision = match proto::Decision::try_from(request.decision) {
            Ok(proto::Decision::Unspecified) => None,
            Ok(decision) => Some(decision_name(decision)),
            Err(_) => return Err(ApiError::invalid("decision", "not a decision").into()),
        };
        let filter = AuditFilter {
            agency: text("agency_id", &request.agency_id)?,
            method: text("method", &request.method)?,
            resource_id: text("resource_id", &request.resource_id)?,
            start_us: request.start_time.as_ref().map(micros),
            end_us: request.end_time.as_ref().map(micros),
            decision,
            visible_to,
        };
        let size = page_size_of(request.page_size)?;
        let fingerprint = format!("{filter:?}");
        let after: Option<u64> = cursor_of(&request.page_token, &fingerprint)?;
        let rows = self
            .store
            .list_audit_events(&filter, after, size + 1)
            .await
            .map_err(ApiError::from)?;
        let (rows, next_page_token) = split_page(rows, size, &fingerprint, |(seq, _)| *seq);
        let events = rows
            .into_iter()
            .map(|(index, bytes)| {
                proto::AuditEntry::decode(bytes.as_slice())
                    .map(|mut entry| {
                        // A token id is its holder's to know: a caller without audit.read
                        // sees the calls of other agencies on its records without theirs.
                        if filter
                            .visible_to
                            .as_ref()
                            .is_some_and(|viewer| *viewer != entry.agency_id)
                        {
                            entry.subject.clear();
                        }
                        proto::AuditEvent {
                            index,
                            entry: Some(entry),
                        }
                    })
                    .map_err(|_| {
                        ApiError::Store(StoreError::Corrupt(format!("audit entry {index}")))
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Response::new(proto::ListEventsResponse {
            events,
            next_page_token,
        }))
    }

    async fn get_checkpoint(
        &self,
        request: Request<proto::GetCheckpointRequest>,
    ) -> Result<Response<proto::GetCheckpointResponse>, Status> {
        principal(&request)?;
        let (size, root) = self.store.audit_head().await.map_err(ApiError::from)?;
        let key = self
            .authenticator
            .current_ed25519()
            .ok_or_else(|| Status::internal("internal error"))?;
        Ok(Response::new(proto::GetCheckpointResponse {
            checkpoint: checkpoint::sign(&self.origin, size, &root, key),
            tree_size: size,
            root_hash: root.to_vec(),
            verifier_key: checkpoint::verifier_key(&self.origin, &key.verifying_key()),
        }))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<proto::GetInclusionProofRequest>,
    ) -> Result<Response<proto::GetInclusionProofResponse>, Status> {
        principal(&request)?;
        let request = request.into_inner();
        let size = self.tree_size(request.tree_size, "tree_size").await?;
        if request.index >= size {
            return Err(
                ApiError::invalid("index", format!("must be below the tree size {size}")).into(),
            );
        }
        let nodes = self
            .store
            .audit_nodes(&merkle::inclusion_nodes(request.index, size))
            .await
            .map_err(ApiError::from)?;
        let proof =
            merkle::inclusion_proof(request.index, size, &nodes).ok_or_else(missing_nodes)?;
        Ok(Response::new(proto::GetInclusionProofResponse {
            index: request.index,
            tree_size: size,
            proof: hashes(proof),
        }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<proto::GetConsistencyProofRequest>,
    ) -> Result<Response<proto::GetConsistencyProofResponse>, Status> {
        principal(&request)?;
        let request = request.into_inner();
        let new_size = self.tree_size(request.new_size, "new_size").await?;
        if request.old_size == 0 || request.old_size > new_size {
            return Err(ApiError::invalid("old_size", format!("must be 1 to {new_size}")).into());
        }
        let nodes = self
            .store
            .audit_nodes(&merkle::consistency_nodes(request.old_size, new_size))
            .await
            .map_err(ApiError::from)?;
        let proof = merkle::consistency_proof(request.old_size, new_size, &nodes)
            .ok_or_else(missing_nodes)?;
        Ok(Response::new(proto::GetConsistencyProofResponse {
            old_size: request.old_size,
            new_size,
            proof: hashes(proof),
        }))
    }

    async fn get_entries(
        &self,
        request: Request<proto::GetEntriesRequest>,
    ) -> Result<Response<proto::GetEntriesResponse>, Status> {
        principal(&request)?.require(Scope::AuditRead)?;
        let request = request.into_inner();
        let (size, _) = self.store.audit_head().await.map_err(ApiError::from)?;
        if request.start >= request.end || request.end > size {
            return Err(ApiError::invalid(
                "end",
                format!("give start < end <= {size}, the current tree size"),
            )
            .into());
        }
        let end = request.end.min(request.start + MAX_ENTRIES_PER_CALL);
        let entries = self
            .store
            .audit_entries(request.start, end)
            .await
            .map_err(ApiError::from)?;
        // Entries stop at the first gap: a missing entry is data loss, never silently skipped.
        let contiguous: Vec<Vec<u8>> = entries
            .into_iter()
            .zip(request.start..)
            .take_while(|((seq, _), expected)| seq == expected)
            .map(|((_, bytes), _)| bytes)
            .collect();
        if contiguous.is_empty() {
            tracing::error!(index = request.start, "audit entry missing");
            return Err(Status::data_loss(format!(
                "entry {} is missing",
                request.start
            )));
        }
        Ok(Response::new(proto::GetEntriesResponse {
            start: request.start,
            entries: contiguous,
        }))
    }
}

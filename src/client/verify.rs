//! Checking a running log from the outside, as any agency can: a signed checkpoint against the
//! one it saved before (the log only grew), and optionally every entry against the signed root,
//! naming the first entry that does not belong.

use std::path::Path;

use tonic::transport::Channel;

use super::BearerToken;
use crate::audit::{
    checkpoint::{self, Checkpoint},
    merkle::{self, Frontier, Hash},
};
use crate::proto::{self, audit_service_client::AuditServiceClient};

type Client =
    AuditServiceClient<tonic::service::interceptor::InterceptedService<Channel, BearerToken>>;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the server refused: {}", .0.message())]
    Call(#[from] tonic::Status),
    #[error("cannot read or write {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    /// The log does not match what it signed or what was saved: tampering or corruption.
    #[error("{0}")]
    Failed(String),
}

fn failed(message: impl Into<String>) -> VerifyError {
    VerifyError::Failed(message.into())
}

fn to_hashes(proof: Vec<Vec<u8>>) -> Result<Vec<Hash>, VerifyError> {
    proof
        .into_iter()
        .map(|hash| {
            hash.try_into()
                .map_err(|_| failed("a proof hash is not 32 bytes"))
        })
        .collect()
}

/// What one verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub checkpoint: Checkpoint,
    pub previous_size: Option<u64>,
    pub entries_checked: u64,
}

/// Fetches the current checkpoint and checks it: its signature (with `verifier_key`, else the
/// key pinned beside `saved`, else the server's own on first use), its consistency with the
/// checkpoint saved in `saved` (if any, checked under the key pinned with it),
/// and — when `all_entries` — every entry against its root. Saves the new checkpoint (and the
/// key next to it, `<saved>.key`) once everything holds.
pub async fn verify_server(
    client: &mut Client,
    saved: &Path,
    verifier_key: Option<&str>,
    all_entries: bool,
) -> Result<Verified, VerifyError> {
    let current = client
        .get_checkpoint(proto::GetCheckpointRequest {})
        .await?
        .into_inner();
    let key_file = saved.with_extension("key");
    let pinned = read_optional(&key_file)?.map(|key| key.trim().to_owned());
    // The key new checkpoints must carry: the one given (after a rotation, learned out of
    // band), else the pinned one, else the server's own on first use.
    let key = verifier_key
        .map(|key| key.trim().to_owned())
        .or_else(|| pinned.clone())
        .unwrap_or_else(|| current.verifier_key.clone());
    if key != current.verifier_key.trim() {
        return Err(failed(
            "the server now signs with a different key than the one trusted; verify the new key \
             out of band and pass it as --verifier-key",
        ));
    }
    let now = checkpoint::verify(&current.checkpoint, &key).map_err(failed)?;

    // The saved checkpoint was signed, and checked, under the key pinned at the time: after a
    // rotation that is the previous key, and the consistency proof below links its history to
    // the new key's checkpoints.
    let saved_key = pinned.as_deref().unwrap_or(&key);
    let previous = match read_optional(saved)? {
        None => None,
        Some(note) => Some(
            checkpoint::verify(&note, saved_key)
                .map_err(|e| failed(format!("saved checkpoint: {e}")))?,
        ),
    };
    if let Some(previous) = &previous {
        if previous.origin != now.origin {
            return Err(failed("the saved checkpoint is of another log"));
        }
        if previous.size > now.size {
            return Err(failed(format!(
                "the log shrank from {} to {} entries",
                previous.size, now.size
            )));
        }
        if previous.size > 0 && previous.size < now.size {
            let proof = client
                .get_consistency_proof(proto::GetConsistencyProofRequest {
                    old_size: previous.size,
                    new_size: now.size,
                })
                .await?
                .into_inner()
                .proof;
            if !merkle::verify_consistency(
                previous.size,
                now.size,
                &previous.root,
                &now.root,
                &to_hashes(proof)?,
            ) {
                return Err(failed(format!(
                    "the log was rewritten: entries before {} no longer match the saved checkpoint",
                    previous.size
                )));
            }
        } else if previous.size == now.size && previous.root != now.root {
            return Err(failed("the log was rewritten: same size, different root"));
        }
    }

    let entries_checked = if all_entries {
        check_entries(client, &now).await?;
        now.size
    } else {
        0
    };
    write(saved, &current.checkpoint)?;
    write(&key_file, &key)?;
    Ok(Verified {
        previous_size: previous.map(|p| p.size),
        checkpoint: now,
        entries_checked,
    })
}

/// Fetches every entry the checkpoint covers and checks them against its root.
async fn check_entries(client: &mut Client, signed: &Checkpoint) -> Result<(), VerifyError> {
    let mut entries: Vec<Vec<u8>> = Vec::new();
    while (entries.len() as u64) < signed.size {
        let start = entries.len() as u64;
        let page = match client
            .get_entries(proto::GetEntriesRequest {
                start,
                end: signed.size,
            })
            .await
        {
            Err(status) if status.code() == tonic::Code::DataLoss => {
                proto::GetEntriesResponse::default()
            }
            other => other?.into_inner(),
        };
        if page.entries.is_empty() {
            return Err(failed(format!(
                "entry {start} is missing: first bad index {start}"
            )));
        }
        entries.extend(page.entries);
    }
    check_against(&entries, signed, Some(client)).await
}

/// Checks `entries` against the signed root. On a mismatch, with a server to ask for
/// consistency proofs, finds the first entry that does not belong.
pub async fn check_against(
    entries: &[Vec<u8>],
    signed: &Checkpoint,
    client: Option<&mut Client>,
) -> Result<(), VerifyError> {
    if entries.len() as u64 != signed.size {
        return Err(failed(format!(
            "{} entries for a checkpoint of {}: first bad index {}",
            entries.len(),
            signed.size,
            entries.len().min(signed.size as usize)
        )));
    }
    let mut frontier = Frontier::default();
    // prefix_roots[k] is the root of the first k entries.
    let mut prefix_roots = vec![frontier.root()];
    for entry in entries {
        frontier.append(merkle::leaf_hash(entry));
        prefix_roots.push(frontier.root());
    }
    if frontier.root() == signed.root {
        return Ok(());
    }
    let Some(client) = client else {
        return Err(failed(
            "the entries do not reproduce the signed root (verify against the server to locate the first bad entry)",
        ));
    };
    // The first k entries are intact when their root is consistent with the signed root, and
    // every prefix of an intact prefix is intact: bisect for the longest.
    let (mut good, mut bad) = (0u64, signed.size);
    while bad > good + 1 {
        let middle = good + (bad - good) / 2;
        let proof = client
            .get_consistency_proof(proto::GetConsistencyProofRequest {
                old_size: middle,
                new_size: signed.size,
            })
            .await?
            .into_inner()
            .proof;
        let intact = merkle::verify_consistency(
            middle,
            signed.size,
            &prefix_roots[middle as usize],
            &signed.root,
            &to_hashes(proof)?,
        );
        if intact {
            good = middle;
        } else {
            bad = middle;
        }
    }
    Err(failed(format!(
        "the entries do not reproduce the signed root: first bad index {good}"
    )))
}

fn read_optional(path: &Path) -> Result<Option<String>, VerifyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(VerifyError::File {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn write(path: &Path, text: &str) -> Result<(), VerifyError> {
    std::fs::write(path, text).map_err(|source| VerifyError::File {
        path: path.display().to_string(),
        source,
    })
}

//! `sinergi audit`: checkpoints, exports, and verifying that the log was only ever appended to.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use sinergi::proto;

use super::remote::RemoteArgs;

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Print the current signed checkpoint.
    Checkpoint {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Verify the log. With --checkpoint: fetch the current checkpoint, check its signature and
    /// that the log only grew since the checkpoint saved in the file, then save the new one.
    /// With --entries: recompute the root from an export and check it against the export's
    /// checkpoint (asking the server, when credentials are given, to locate a bad entry).
    Verify {
        #[command(flatten)]
        remote: RemoteArgs,
        /// File holding the last verified checkpoint (created on first use; the server's key is
        /// pinned beside it in <file>.key).
        #[arg(long, required_unless_present = "entries")]
        checkpoint: Option<PathBuf>,
        /// Also fetch every entry and check it against the signed root.
        #[arg(long)]
        all_entries: bool,
        /// An export written by `sinergi audit export` to verify instead.
        #[arg(long, conflicts_with_all = ["checkpoint", "all_entries"])]
        entries: Option<PathBuf>,
        /// The note verifier key to trust (`<name>+<id>+<key>`); otherwise the pinned one, or
        /// the server's on first use. After the server's key was rotated, pass the new key
        /// (learned out of band): the saved checkpoint is still checked under the old one.
        #[arg(long)]
        verifier_key: Option<String>,
    },
    /// Write the current checkpoint and every entry it covers to a file (JSON lines).
    Export {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        out: PathBuf,
    },
}

/// One line of an audit export after the first.
#[derive(serde::Serialize, serde::Deserialize)]
struct ExportedEntry {
    index: u64,
    entry: String,
}

/// The first line of an audit export.
#[derive(serde::Serialize, serde::Deserialize)]
struct ExportedCheckpoint {
    checkpoint: String,
    verifier_key: String,
}

fn verification_failed(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("audit log verification FAILED: {error}")
}

pub(crate) async fn audit(command: AuditCommand) -> anyhow::Result<()> {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use sinergi::proto::audit_service_client::AuditServiceClient;
    use sinergi::{audit::checkpoint, client::verify};

    match command {
        AuditCommand::Checkpoint { remote } => {
            let mut client = AuditServiceClient::new(remote.connect(None).await?);
            let current = client
                .get_checkpoint(proto::GetCheckpointRequest {})
                .await?
                .into_inner();
            print!("{}", current.checkpoint);
            eprintln!("verifier key: {}", current.verifier_key);
        }
        AuditCommand::Verify {
            remote,
            checkpoint: Some(saved),
            all_entries,
            verifier_key,
            ..
        } => {
            let mut client = AuditServiceClient::new(remote.connect(None).await?);
            let verified =
                verify::verify_server(&mut client, &saved, verifier_key.as_deref(), all_entries)
                    .await
                    .map_err(verification_failed)?;
            let previous = verified.previous_size.map_or(String::new(), |size| {
                format!(", consistent with the saved checkpoint of {size}")
            });
            let recomputed = if all_entries {
                format!(", all {} entries recomputed", verified.entries_checked)
            } else {
                String::new()
            };
            println!(
                "audit log verified: {} entries, root {}{previous}{recomputed}",
                verified.checkpoint.size,
                STANDARD.encode(verified.checkpoint.root),
            );
        }
        AuditCommand::Verify {
            remote,
            entries: Some(file),
            verifier_key,
            ..
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let mut lines = text.lines();
            let head: ExportedCheckpoint =
                serde_json::from_str(lines.next().unwrap_or_default())
                    .context("the export does not start with its checkpoint")?;
            let key = verifier_key.unwrap_or(head.verifier_key);
            let signed = checkpoint::verify(&head.checkpoint, &key).map_err(verification_failed)?;
            let mut entries = Vec::new();
            for (expected, line) in lines.enumerate() {
                let exported: ExportedEntry = serde_json::from_str(line)
                    .with_context(|| format!("line {} of the export", expected + 2))?;
                if exported.index != expected as u64 {
                    return Err(verification_failed(format!(
                        "entry {expected} is missing: first bad index {expected}"
                    )));
                }
                entries.push(
                    STANDARD
                        .decode(&exported.entry)
                        .with_context(|| format!("entry {expected} is not base64"))?,
                );
            }
            let mut client = if remote.has_credentials() {
                Some(AuditServiceClient::new(remote.connect(None).await?))
            } else {
                None
            };
            verify::check_against(&entries, &signed, client.as_mut())
                .await
                .map_err(verification_failed)?;
            println!(
                "audit export verified: {} entries reproduce the signed root",
                entries.len()
            );
        }
        AuditCommand::Verify { .. } => anyhow::bail!("give --checkpoint or --entries"),
        AuditCommand::Export { remote, out } => {
            let mut client = AuditServiceClient::new(remote.connect(None).await?);
            let current = client
                .get_checkpoint(proto::GetCheckpointRequest {})
                .await?
                .into_inner();
            let mut lines = vec![serde_json::to_string(&ExportedCheckpoint {
                checkpoint: current.checkpoint,
                verifier_key: current.verifier_key,
            })?];
            let mut next = 0;
            while next < current.tree_size {
                let page = client
                    .get_entries(proto::GetEntriesRequest {
                        start: next,
                        end: current.tree_size,
                    })
                    .await?
                    .into_inner();
                for entry in page.entries {
                    lines.push(serde_json::to_string(&ExportedEntry {
                        index: next,
                        entry: STANDARD.encode(entry),
                    })?);
                    next += 1;
                }
            }
            std::fs::write(&out, lines.join("\n") + "\n")
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("exported {next} entries to {}", out.display());
        }
    }
    Ok(())
}

//! The audit log: one entry for every call, allowed or not.
//!
//! The audit layer (`crate::server::audit_layer`) opens a [`CallAudit`] for each call and,
//! when the call is over, appends its
//! entry through the group-commit writer (`crate::workers::audit_writer`) and waits until it is durable before the response
//! leaves — or answers UNAVAILABLE if it cannot be. A handler that changes data instead puts
//! the entry into its own transaction ([`CallAudit::entry`] + [`CallAudit::mark_recorded`]),
//! so no change exists without its record. A group commit gives its entries their place in
//! the RFC 6962 tree ([`merkle`]) at once, after the pending entries of writes; the sequencer
//! (`crate::workers::sequencer`) numbers pending entries no group commit came to take.
//! [`checkpoint`] signs the tree's head; `crate::client::verify` checks a log from outside.

pub mod checkpoint;
pub mod merkle;

use std::sync::{Arc, Mutex};

use prost::Message;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::proto;

/// The agency recorded for calls without valid credentials.
pub const ANONYMOUS: &str = "anonymous";

/// An entry ready to be stored: its canonical bytes and the columns it is searched by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    pub bytes: Vec<u8>,
    pub time_us: i64,
    pub agency: String,
    pub method: String,
    pub decision: &'static str,
    pub status_code: i32,
    pub is_write: bool,
    pub resources: Vec<String>,
}

impl PendingEntry {
    /// The stored form of `entry`: its canonical bytes and the columns it is searched by.
    pub fn from_entry(entry: &proto::AuditEntry) -> Self {
        Self {
            bytes: entry.encode_to_vec(),
            time_us: entry.time_unix_micros,
            agency: entry.agency_id.clone(),
            method: entry.method.clone(),
            decision: decision_name(entry.decision()),
            status_code: entry.status_code,
            is_write: !entry.request_sha256.is_empty(),
            resources: entry.resource_ids.clone(),
        }
    }
}

/// The method whose allowed calls write employers: the records an agency wrote include the
/// employers those calls of its touched.
pub const EMPLOYER_WRITE_METHOD: &str = "/sinergi.v1.EmployerService/UpsertEmployer";

/// The record id a call touches when it reads records `agency` wrote (reports, cases and
/// their steps), so that `agency` finds the call among those on its records.
pub fn written_by(agency: &str) -> String {
    format!("written-by:{agency}")
}

/// The decision recorded for a gRPC status code.
pub fn decision_of(code: i32) -> proto::Decision {
    use tonic::Code;
    match Code::from_i32(code) {
        Code::Ok | Code::NotFound | Code::AlreadyExists | Code::Aborted => proto::Decision::Allowed,
        Code::Unauthenticated | Code::PermissionDenied => proto::Decision::Denied,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            proto::Decision::Invalid
        }
        _ => proto::Decision::Error,
    }
}

pub fn decision_name(decision: proto::Decision) -> &'static str {
    match decision {
        proto::Decision::Allowed => "allowed",
        proto::Decision::Denied => "denied",
        proto::Decision::Invalid => "invalid",
        proto::Decision::Error | proto::Decision::Unspecified => "error",
    }
}

#[derive(Debug, Default)]
struct CallState {
    agency: Option<String>,
    subject: String,
    purpose: String,
    request_id: String,
    resources: Vec<String>,
    recorded: bool,
}

/// What the audit log will say about one call, filled in as the call proceeds: the layer knows
/// the method, time and peer, authentication adds the caller, handlers add the records touched.
#[derive(Debug, Clone)]
pub struct CallAudit {
    method: String,
    peer: String,
    started: OffsetDateTime,
    state: Arc<Mutex<CallState>>,
}

impl CallAudit {
    pub fn new(method: &str, peer: String, purpose: &str, request_id: &str) -> Self {
        Self {
            method: method.to_owned(),
            peer,
            started: OffsetDateTime::now_utc(),
            state: Arc::new(Mutex::new(CallState {
                purpose: purpose.to_owned(),
                request_id: request_id.to_owned(),
                ..Default::default()
            })),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CallState> {
        // A panic while holding this lock cannot leave the plain data inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records who is calling; a purpose in the token wins over the `x-purpose` metadata.
    pub fn identify(&self, agency: &str, subject: &str, purpose: Option<&str>) {
        let mut state = self.state();
        state.agency = Some(agency.to_owned());
        state.subject = subject.to_owned();
        if let Some(purpose) = purpose {
            state.purpose = purpose.to_owned();
        }
    }

    /// The purpose the call declared (token claim or `x-purpose`), empty when none.
    pub fn purpose(&self) -> String {
        self.state().purpose.clone()
    }

    /// Records a record the call touched.
    pub fn touch(&self, resource_id: impl Into<String>) {
        let resource_id = resource_id.into();
        let mut state = self.state();
        if !state.resources.contains(&resource_id) {
            state.resources.push(resource_id);
        }
    }

    /// Records that the call read records `agency` wrote.
    pub fn read_records_of(&self, agency: &str) {
        self.touch(written_by(agency));
    }

    /// Records the request id a write carried in its message.
    pub fn set_request_id(&self, request_id: &str) {
        if !request_id.is_empty() {
            self.state().request_id = request_id.to_owned();
        }
    }

    /// The entry for this call ending with `status_code`. `request_sha256` is the digest of a
    /// successful change's request message ([`digest`]) and `detail` what it changed.
    pub fn entry(
        &self,
        status_code: i32,
        request_sha256: Option<[u8; 32]>,
        detail: Option<String>,
    ) -> PendingEntry {
        let state = self.state();
        let entry = proto::AuditEntry {
            time_unix_micros: (self.started.unix_timestamp_nanos() / 1_000) as i64,
            agency_id: state.agency.clone().unwrap_or_else(|| ANONYMOUS.to_owned()),
            subject: state.subject.clone(),
            method: self.method.clone(),
            decision: decision_of(status_code).into(),
            status_code,
            purpose: state.purpose.clone(),
            request_id: state.request_id.clone(),
            resource_ids: state.resources.clone(),
            peer: self.peer.clone(),
            request_sha256: request_sha256.map(|d| d.to_vec()).unwrap_or_default(),
            detail: detail.unwrap_or_default(),
        };
        PendingEntry::from_entry(&entry)
    }

    /// Says the call's entry was committed with its change, so the layer adds no other.
    pub fn mark_recorded(&self) {
        self.state().recorded = true;
    }

    pub fn is_recorded(&self) -> bool {
        self.state().recorded
    }
}

/// The digest of a request message recorded with a write: SHA-256 of its protobuf encoding.
pub fn digest(message: &impl Message) -> [u8; 32] {
    Sha256::digest(message.encode_to_vec()).into()
}

//! gRPC services: thin adapters between the protobuf contract and the domain. Each handler
//! converts the request, calls the store, converts the answer and lets `crate::error` produce
//! the status.

pub mod agency_admin;
pub mod audit;
pub mod auth;
pub mod compliance;
pub mod convert;
pub mod employer;
pub mod feed;

use crate::auth::{AuthError, principal::Principal};
use crate::error::ApiError;

/// The audit record the audit layer opened for the call.
pub fn call_audit<T>(request: &tonic::Request<T>) -> crate::audit::CallAudit {
    request
        .extensions()
        .get::<crate::audit::CallAudit>()
        .cloned()
        // Only a service mounted without the middleware stack gets here.
        .unwrap_or_else(|| crate::audit::CallAudit::new("unknown", String::new(), "", ""))
}

/// The caller the authentication layer attached to the request.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<Principal, ApiError> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or(ApiError::Auth(AuthError::Unauthenticated(
            "no credentials on the call",
        )))
}

/// The encoded descriptors of `proto/sinergi/v1`, served through reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/sinergi_descriptor.bin"));

/// Returns one page of `items` (fetched with one extra row to learn whether more exist) and the
/// token for the next, built from the last item kept.
pub fn split_page<T, C: serde::Serialize>(
    mut items: Vec<T>,
    page_size: u32,
    fingerprint: &str,
    cursor_of: impl Fn(&T) -> C,
) -> (Vec<T>, String) {
    let page_size = page_size as usize;
    if items.len() <= page_size {
        return (items, String::new());
    }
    items.truncate(page_size);
    let token = items
        .last()
        .map(|last| crate::domain::paging::encode_token(fingerprint, &cursor_of(last)))
        .unwrap_or_default();
    (items, token)
}

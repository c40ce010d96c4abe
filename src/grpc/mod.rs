//! gRPC services: thin adapters between the protobuf contract and the domain. Each handler
//! converts the request, calls the store, converts the answer and lets `crate::error` produce
//! the status. A service's file (`employer.rs`) has its messages' conversions beside it
//! (`employer/convert.rs`); [`convert`] holds the few that every service uses, [`cases`] what
//! the inspection, sanction and referral services share, and [`codec`] how requests are decoded.

pub mod agency_admin;
pub mod audit;
pub mod auth;
pub mod cases;
pub mod codec;
pub mod compliance;
pub mod convert;
pub mod employer;
pub mod feed;
pub mod inspection;
pub mod referral;
pub mod sanction;

use crate::auth::{AuthError, principal::Principal};
use crate::domain::agency::AgencyId;
use crate::domain::paging::{decode_token, page_size};
use crate::domain::region::RegionCode;
use crate::domain::scope::{OutsideGrant, RegionScope, Scope};
use crate::error::ApiError;
use crate::store::IdempotencyKey;

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

/// What a read starts from: the caller, the call's audit record, the scope it reads under and
/// where the caller's grant of that scope lets it read, and the request.
pub struct ReadCall<T> {
    pub principal: Principal,
    pub audit: crate::audit::CallAudit,
    pub scope: Scope,
    pub readable: RegionScope,
    pub message: T,
}

/// Opens a read that needs `scope`.
pub fn read_call<T>(request: tonic::Request<T>, scope: Scope) -> Result<ReadCall<T>, ApiError> {
    let principal = principal(&request)?;
    let audit = call_audit(&request);
    let readable = principal.require(scope)?;
    Ok(ReadCall {
        principal,
        audit,
        scope,
        readable,
        message: request.into_inner(),
    })
}

/// What every idempotent write starts from: the caller, the call's audit record, where the
/// caller may write, and the request with its digest and idempotency key.
pub struct WriteCall<T> {
    pub principal: Principal,
    pub audit: crate::audit::CallAudit,
    pub writable: RegionScope,
    pub message: T,
    pub request_sha256: [u8; 32],
    pub idempotency: Option<IdempotencyKey>,
}

/// Opens a write that needs `scope`, named `method` in idempotency records; `request_id` picks
/// the request's `request_id` field.
pub fn write_call<T: prost::Message>(
    request: tonic::Request<T>,
    scope: Scope,
    method: &'static str,
    request_id: fn(&T) -> &str,
) -> Result<WriteCall<T>, ApiError> {
    let ReadCall {
        principal,
        audit,
        readable: writable,
        message,
        ..
    } = read_call(request, scope)?;
    audit.set_request_id(request_id(&message).trim());
    let request_sha256 = crate::audit::digest(&message);
    let idempotency = idempotency_key(
        principal.agency_id(),
        request_id(&message),
        method,
        request_sha256,
    )?;
    Ok(WriteCall {
        request_sha256,
        principal,
        audit,
        writable,
        message,
        idempotency,
    })
}

pub const REQUEST_ID_MAX_CHARS: usize = 64;

/// The idempotency key of a write, if the caller sent a `request_id`: the digest of what it
/// asked for binds the key to that request. Keys are per agency, so agencies cannot collide
/// with (or read) each other's results.
pub fn idempotency_key(
    caller: &AgencyId,
    request_id: &str,
    method: &'static str,
    request_sha256: [u8; 32],
) -> Result<Option<IdempotencyKey>, ApiError> {
    let request_id = request_id.trim();
    if request_id.is_empty() {
        return Ok(None);
    }
    if request_id.chars().count() > REQUEST_ID_MAX_CHARS
        || request_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ApiError::invalid(
            "request_id",
            format!("a request_id is at most {REQUEST_ID_MAX_CHARS} characters with no spaces"),
        ));
    }
    Ok(Some(IdempotencyKey {
        caller: caller.as_str().to_owned(),
        request_id: request_id.to_owned(),
        method,
        request_digest: request_sha256.to_vec(),
    }))
}

/// The regions a listing is limited to by the caller's grant, given the region it asked for.
pub fn within_grant(
    readable: &RegionScope,
    requested: Option<&RegionCode>,
    scope: Scope,
) -> Result<Option<Vec<RegionCode>>, ApiError> {
    readable.narrow(requested).map_err(|OutsideGrant| {
        let region = requested.map_or_else(String::new, |r| r.as_str().to_owned());
        ApiError::from(AuthError::PermissionDenied(format!(
            "the caller's `{scope}` grant does not cover region {region}"
        )))
    })
}

/// Refuses a read of a record in `region_code` that the caller's `scope` grants do not cover.
pub fn check_readable(
    readable: &RegionScope,
    scope: Scope,
    region_code: &str,
) -> Result<(), ApiError> {
    if RegionCode::parse(region_code).is_ok_and(|region| readable.allows(&region)) {
        return Ok(());
    }
    Err(AuthError::PermissionDenied(format!(
        "the caller's `{scope}` grant does not cover this employer's region"
    ))
    .into())
}

pub fn page_size_of(requested: i32) -> Result<u32, ApiError> {
    page_size(requested).map_err(|description| ApiError::invalid("page_size", description))
}

pub fn cursor_of<C: serde::de::DeserializeOwned>(
    token: &str,
    fingerprint: &str,
) -> Result<Option<C>, ApiError> {
    decode_token(token, fingerprint)
        .map_err(|description| ApiError::invalid("page_token", description))
}

/// The encoded descriptors of `proto/sinergi/v1`, served through reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/sinergi_descriptor.bin"));

/// A method this server answers, as its HTTP/2 path names it.
pub struct ServedMethod {
    /// `/package.Service/Method`.
    pub path: String,
    /// Whether the request is a stream of messages rather than exactly one.
    pub client_streaming: bool,
}

/// Every method of the contract, and of the standard health and reflection services.
pub fn served_methods() -> Vec<ServedMethod> {
    let standard = [
        ("/grpc.health.v1.Health/Check", false),
        ("/grpc.health.v1.Health/Watch", false),
        (
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            true,
        ),
        (
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            true,
        ),
    ];
    let mut methods: Vec<ServedMethod> = standard
        .into_iter()
        .map(|(path, client_streaming)| ServedMethod {
            path: path.to_owned(),
            client_streaming,
        })
        .collect();
    // The set is compiled in by build.rs from the same files as the services, so it decodes.
    let set = <prost_types::FileDescriptorSet as prost::Message>::decode(FILE_DESCRIPTOR_SET)
        .unwrap_or_default();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                methods.push(ServedMethod {
                    path: format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    client_streaming: method.client_streaming(),
                });
            }
        }
    }
    methods
}

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

//! The one place where errors become gRPC statuses.
//!
//! Handlers return [`ApiError`]; its conversion to [`tonic::Status`] decides the code, the
//! message a caller sees and the structured details (AIP-193: `google.rpc.ErrorInfo` with a
//! stable `reason`, `google.rpc.BadRequest` field violations). Internal causes are logged here
//! with their full chain and replaced by a generic message, so nothing about the database or
//! the code reaches a client.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::AuthError;
use crate::domain::ValidationError;
use crate::domain::agency::ScopeNotAllowedForKind;
use crate::domain::cases::{PreconditionError, StepError};
use crate::domain::scope::Scope;
use crate::store::StoreError;

/// The `domain` of every `google.rpc.ErrorInfo` this service sends.
pub const ERROR_DOMAIN: &str = "sinergi";

// A status travels in HTTP/2 trailers, and clients on their defaults refuse trailers past 8 KiB
// (grpc-java; grpc-core from 8 KiB on, always past 16 KiB) and then never learn what was wrong.
// So every status stays within about 5 KiB however much the caller got wrong: a short message
// (sent percent-encoded, and again inside the details), and the details (sent in base64, 4/3 of
// their size) with as many field violations as fit in a fixed budget, the ErrorInfo counting
// them all. The bounds are in bytes of UTF-8, since that is what the trailers carry.
const MAX_MESSAGE_BYTES: usize = 200;
const MAX_FIELD_BYTES: usize = 120;
const MAX_DESCRIPTION_BYTES: usize = 240;
const VIOLATIONS_BUDGET_BYTES: usize = 3_000;
/// What each listed violation costs beyond its text in the encoded BadRequest.
const VIOLATION_OVERHEAD_BYTES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(AuthError),
    /// A step of a case that its lifecycle or its rules do not allow now.
    #[error(transparent)]
    Step(StepError),
    /// A grant of a scope outside the agency kind's row.
    #[error(transparent)]
    ScopeNotAllowed(#[from] ScopeNotAllowedForKind),
    /// A feed subscriber stopped reading for too long; it resumes after `resume_after`.
    #[error("the subscriber fell behind")]
    SubscriberTooSlow { resume_after: u64 },
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Store(store) => Self::Store(store),
            other => Self::Auth(other),
        }
    }
}

impl From<StepError> for ApiError {
    fn from(error: StepError) -> Self {
        match error {
            StepError::Invalid(invalid) => Self::Invalid(invalid),
            StepError::NotYourStep(message) => Self::Auth(AuthError::PermissionDenied(message)),
            other => Self::Step(other),
        }
    }
}

impl From<PreconditionError> for ApiError {
    fn from(error: PreconditionError) -> Self {
        Self::Step(StepError::Precondition(error))
    }
}

impl ApiError {
    /// A single invalid request field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::Invalid(ValidationError::single(field, description))
    }
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<ValidationError> for Status {
    fn from(error: ValidationError) -> Self {
        ApiError::from(error).into()
    }
}

/// Why a call is refused before it reaches a service: the server protecting itself rather than
/// anything wrong with the call. Each tells the caller when a retry can succeed
/// (`google.rpc.RetryInfo`), which the HTTP door also sends as `Retry-After`.
#[derive(Debug, thiserror::Error)]
pub enum Overload {
    #[error("the server is at capacity; retry with backoff")]
    AtCapacity,
    #[error("agency {agency} is over its rate of calls; retry with backoff")]
    AgencyRate {
        agency: String,
        retry_after: Duration,
    },
    #[error("too many token requests from this address; an access token lasts minutes, reuse it")]
    TokenRequestRate { retry_after: Duration },
    #[error("the database is unreachable; retry with backoff")]
    DatabaseDown,
    #[error("the audit log cannot record this call; retry with backoff")]
    AuditUnavailable,
}

/// How soon a retry may find room when nothing more precise is known: about the time a
/// call takes to be served, and the time the health check takes to see a database again.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

impl From<Overload> for Status {
    fn from(overload: Overload) -> Self {
        let (code, reason, retry_after, metadata) = match &overload {
            Overload::AtCapacity => (
                Code::ResourceExhausted,
                "AT_CAPACITY",
                DEFAULT_RETRY_AFTER,
                HashMap::new(),
            ),
            Overload::AgencyRate {
                agency,
                retry_after,
            } => (
                Code::ResourceExhausted,
                "AGENCY_RATE_EXCEEDED",
                *retry_after,
                HashMap::from([("agency_id".to_owned(), agency.clone())]),
            ),
            Overload::TokenRequestRate { retry_after } => (
                Code::ResourceExhausted,
                "TOKEN_REQUEST_RATE_EXCEEDED",
                *retry_after,
                HashMap::new(),
            ),
            Overload::DatabaseDown => (
                Code::Unavailable,
                "DATABASE_UNAVAILABLE",
                DEFAULT_RETRY_AFTER,
                HashMap::new(),
            ),
            Overload::AuditUnavailable => (
                Code::Unavailable,
                "AUDIT_UNAVAILABLE",
                DEFAULT_RETRY_AFTER,
                HashMap::new(),
            ),
        };
        let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
        details.set_retry_info(Some(retry_after));
        Status::with_error_details(code, overload.to_string(), details)
    }
}

/// `text` cut to at most `max_bytes` bytes at a character boundary, marked `…` where cut.
fn bounded(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let ellipsis = '…';
    let mut end = max_bytes - ellipsis.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

fn with_info(
    code: Code,
    message: String,
    reason: &str,
    metadata: HashMap<String, String>,
) -> Status {
    Status::with_error_details(
        code,
        bounded(&message, MAX_MESSAGE_BYTES),
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// INVALID_ARGUMENT naming as many of the violations as fit, and counting all of them.
fn invalid_argument(invalid: &ValidationError) -> Status {
    let mut details = ErrorDetails::new();
    let mut budget = VIOLATIONS_BUDGET_BYTES;
    let mut listed = 0;
    for violation in &invalid.violations {
        let field = bounded(&violation.field, MAX_FIELD_BYTES);
        let description = bounded(&violation.description, MAX_DESCRIPTION_BYTES);
        let cost = field.len() + description.len() + VIOLATION_OVERHEAD_BYTES;
        if cost > budget {
            break;
        }
        budget -= cost;
        details.add_bad_request_violation(field, description);
        listed += 1;
    }
    details.set_error_info(
        "INVALID_ARGUMENT",
        ERROR_DOMAIN,
        HashMap::from([
            ("violation_count".to_owned(), invalid.total.to_string()),
            ("violations_listed".to_owned(), listed.to_string()),
        ]),
    );
    Status::with_error_details(
        Code::InvalidArgument,
        bounded(&invalid.to_string(), MAX_MESSAGE_BYTES),
        details,
    )
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Invalid(invalid) => invalid_argument(&invalid),
            ApiError::Auth(AuthError::Unauthenticated(reason)) => {
                tracing::debug!(reason, "unauthenticated");
                let mut status = with_info(
                    Code::Unauthenticated,
                    "missing or invalid credentials".into(),
                    "UNAUTHENTICATED",
                    HashMap::new(),
                );
                status.metadata_mut().insert(
                    "www-authenticate",
                    tonic::metadata::MetadataValue::from_static("Bearer"),
                );
                status
            }
            ApiError::Auth(AuthError::PermissionDenied(message)) => with_info(
                Code::PermissionDenied,
                message,
                "PERMISSION_DENIED",
                HashMap::new(),
            ),
            ApiError::Auth(AuthError::Store(error)) => ApiError::Store(error).into(),
            ApiError::SubscriberTooSlow { resume_after } => with_info(
                Code::ResourceExhausted,
                format!(
                    "the stream was not read for too long; resume with after_cursor = \
                     {resume_after}"
                ),
                "SUBSCRIBER_TOO_SLOW",
                HashMap::from([("resume_after".into(), resume_after.to_string())]),
            ),
            ApiError::ScopeNotAllowed(refused) => with_info(
                Code::FailedPrecondition,
                refused.to_string(),
                "SCOPE_NOT_ALLOWED_FOR_KIND",
                HashMap::from([
                    ("kind".into(), refused.kind.as_str().into()),
                    ("scope".into(), refused.scope.as_str().into()),
                    (
                        "allowed_scopes".into(),
                        Scope::join(refused.kind.allowed_scopes()),
                    ),
                ]),
            ),
            ApiError::Step(StepError::Transition(refused)) => with_info(
                Code::FailedPrecondition,
                refused.to_string(),
                "INVALID_TRANSITION",
                HashMap::from([
                    ("status".into(), refused.status.into()),
                    ("allowed_next_steps".into(), refused.allowed.join(",")),
                ]),
            ),
            ApiError::Step(other) => with_info(
                Code::FailedPrecondition,
                other.to_string(),
                "PRECONDITION_NOT_MET",
                HashMap::new(),
            ),
            ApiError::Store(StoreError::NotFound(what)) => with_info(
                Code::NotFound,
                format!("{what} not found"),
                "NOT_FOUND",
                HashMap::from([("resource".into(), what.into())]),
            ),
            ApiError::Store(StoreError::Duplicate {
                resource,
                field,
                holder,
            }) => {
                let mut metadata = HashMap::from([("field".to_owned(), field.to_owned())]);
                let message = match holder {
                    Some(holder) => {
                        let message =
                            format!("{field} is already registered to {resource} {holder}");
                        metadata.insert(format!("{resource}_id"), holder);
                        message
                    }
                    None => format!("this {field} is already registered to a {resource}"),
                };
                with_info(
                    Code::AlreadyExists,
                    message,
                    "DUPLICATE_IDENTIFIER",
                    metadata,
                )
            }
            ApiError::Store(StoreError::EtagMismatch { current }) => with_info(
                Code::Aborted,
                "the record changed since it was read; read it again and retry".into(),
                "ETAG_MISMATCH",
                HashMap::from([("current_etag".into(), current)]),
            ),
            ApiError::Store(StoreError::RequestIdReused) => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(
                    "request_id",
                    "this request_id was already used for a different request",
                );
                details.set_error_info("REQUEST_ID_REUSED", ERROR_DOMAIN, HashMap::new());
                Status::with_error_details(
                    Code::InvalidArgument,
                    "request_id was already used for a different request",
                    details,
                )
            }
            ApiError::Store(StoreError::OutsideRegion(region)) => with_info(
                Code::PermissionDenied,
                format!("the record lies in region {region}, outside the caller's grant"),
                "PERMISSION_DENIED",
                HashMap::new(),
            ),
            ApiError::Store(StoreError::UnknownEmployer { index }) => {
                ApiError::invalid(format!("items[{index}].employer_id"), "no such employer").into()
            }
            ApiError::Store(StoreError::ItemOutsideRegion { index, region }) => with_info(
                Code::PermissionDenied,
                format!(
                    "item {index}: the employer lies in region {region}, outside the caller's grant"
                ),
                "PERMISSION_DENIED",
                HashMap::new(),
            ),
            ApiError::Store(StoreError::AdminExists) => with_info(
                Code::FailedPrecondition,
                "an administrator agency already exists".into(),
                "ADMIN_EXISTS",
                HashMap::new(),
            ),
            ApiError::Store(error @ StoreError::Unavailable(_)) => {
                tracing::warn!(error = %error_chain(&error), "database unavailable");
                with_info(
                    Code::Unavailable,
                    "the service is temporarily unavailable; retry with backoff".into(),
                    "BACKEND_UNAVAILABLE",
                    HashMap::new(),
                )
            }
            ApiError::Store(error @ (StoreError::Internal(_) | StoreError::Corrupt(_))) => {
                tracing::error!(error = %error_chain(&error), "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// An error with all of its causes, for the log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::agency::AgencyKind;
    use crate::domain::cases::TransitionError;
    use crate::domain::validation::FieldViolation;

    /// What grpc-core and grpc-java count against their metadata limits: each header's name
    /// and value, plus 32 bytes.
    fn trailer_bytes(status: Status) -> usize {
        status
            .into_http::<tonic::body::Body>()
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 32)
            .sum()
    }

    /// The largest status of every kind this service sends, with caller-controlled text as
    /// large as a 4 MiB request can make it, fits the 8 KiB a default client accepts.
    #[test]
    fn every_error_fits_in_the_trailers_of_a_default_client() {
        let huge = "é".repeat(1 << 20);
        let long = "é".repeat(2048);
        let violation = |index: usize| FieldViolation {
            field: format!("items[{index}].{long}"),
            description: format!("`{long}` is not a Kemendagri region code"),
        };
        let many = ValidationError::first_of((0..1_000).map(violation).collect(), 1_000_000);
        let errors: Vec<ApiError> = vec![
            ApiError::Invalid(many),
            ApiError::invalid("region.code", format!("`{huge}` is not a region")),
            ApiError::Auth(AuthError::Unauthenticated(
                "assertion signature or claims invalid",
            )),
            ApiError::Auth(AuthError::PermissionDenied(huge.clone())),
            ApiError::ScopeNotAllowed(ScopeNotAllowedForKind {
                kind: AgencyKind::Admin,
                scope: Scope::ReportsWrite,
            }),
            ApiError::SubscriberTooSlow {
                resume_after: u64::MAX,
            },
            ApiError::Step(StepError::Transition(TransitionError {
                case: "referral",
                status: "SKK_RECEIVED",
                attempted: "RECORD_UNDERTAKING",
                allowed: vec!["ISSUE_SOMASI"; 50],
            })),
            ApiError::Step(StepError::Precondition(PreconditionError(huge.clone()))),
            ApiError::Store(StoreError::NotFound("employer")),
            ApiError::Store(StoreError::Duplicate {
                resource: "employer",
                field: "npwp",
                holder: Some(uuid::Uuid::max().to_string()),
            }),
            ApiError::Store(StoreError::EtagMismatch {
                current: format!("r{}", i64::MAX),
            }),
            ApiError::Store(StoreError::RequestIdReused),
            ApiError::Store(StoreError::OutsideRegion("33.75".into())),
            ApiError::Store(StoreError::UnknownEmployer { index: u64::MAX }),
            ApiError::Store(StoreError::ItemOutsideRegion {
                index: u64::MAX,
                region: "33.75".into(),
            }),
            ApiError::Store(StoreError::AdminExists),
            ApiError::Store(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
            ApiError::Store(StoreError::Internal(sqlx::Error::PoolClosed)),
            ApiError::Store(StoreError::Corrupt(huge.clone())),
        ];
        for error in errors {
            let described = format!("{error:?}").chars().take(80).collect::<String>();
            let size = trailer_bytes(Status::from(error));
            assert!(size <= 6 * 1024, "{described}: {size} bytes of trailers");
        }
    }

    #[test]
    fn a_long_list_of_violations_is_counted_and_named_by_its_first() {
        let violations: Vec<FieldViolation> = (0..150)
            .map(|index| FieldViolation {
                field: format!("items[{index}].report.period"),
                description: "a month is written YYYY-MM".into(),
            })
            .collect();
        let status = Status::from(ApiError::Invalid(ValidationError::of(violations)));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "150 fields invalid; first: items[0].report.period: a month is written YYYY-MM"
        );
        let details = status.get_error_details();
        let listed = details
            .bad_request()
            .expect("BadRequest")
            .field_violations
            .len();
        assert!((40..150).contains(&listed), "{listed} listed");
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(info.metadata["violation_count"], "150");
        assert_eq!(info.metadata["violations_listed"], listed.to_string());
        assert_eq!(bounded("ééé", 5), "é…");
    }
}

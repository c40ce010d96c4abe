//! The one place where errors become gRPC statuses.
//!
//! Handlers return [`ApiError`]; its conversion to [`tonic::Status`] decides the code, the
//! message a caller sees and the structured details (AIP-193: `google.rpc.ErrorInfo` with a
//! stable `reason`, `google.rpc.BadRequest` field violations). Internal causes are logged here
//! with their full chain and replaced by a generic message, so nothing about the database or
//! the code reaches a client.

use std::collections::HashMap;

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

fn with_info(
    code: Code,
    message: String,
    reason: &str,
    metadata: HashMap<String, String>,
) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Invalid(invalid) => {
                let mut details = ErrorDetails::new();
                for violation in &invalid.violations {
                    details.add_bad_request_violation(&violation.field, &violation.description);
                }
                details.set_error_info("INVALID_ARGUMENT", ERROR_DOMAIN, HashMap::new());
                Status::with_error_details(Code::InvalidArgument, invalid.to_string(), details)
            }
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

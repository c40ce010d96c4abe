//! Collects every problem with a request instead of stopping at the first, so a caller can fix
//! all of them in one round trip.

use std::fmt;

/// One invalid field: its path in the request (`employer.npwp`) and what is wrong with it, in
/// words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// A request that breaks one or more rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// The violations found, or the first of them when there were too many to keep.
    pub violations: Vec<FieldViolation>,
    /// How many were found in all; at least `violations.len()`.
    pub total: usize,
}

impl ValidationError {
    pub fn single(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::of(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    pub fn of(violations: Vec<FieldViolation>) -> Self {
        let total = violations.len();
        Self { violations, total }
    }

    /// The first `violations` of `total` found (a long batch stops listing them).
    pub fn first_of(violations: Vec<FieldViolation>, total: usize) -> Self {
        let total = total.max(violations.len());
        Self { violations, total }
    }
}

/// One line whatever the number of violations: the only one, or how many there are and the
/// first, so that the message stays short where the caller's status line must fit.
impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.total, self.violations.first()) {
            (_, None) => f.write_str("the request is invalid"),
            (1, Some(only)) => write!(f, "{}: {}", only.field, only.description),
            (total, Some(first)) => write!(
                f,
                "{total} fields invalid; first: {}: {}",
                first.field, first.description
            ),
        }
    }
}

/// Accumulates violations while a request is checked field by field.
#[derive(Debug, Default)]
pub struct Violations {
    found: Vec<FieldViolation>,
}

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the outcome of one field's check and hands back the valid value, if any.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(description) => {
                self.add(field, description);
                None
            }
        }
    }

    pub fn add(&mut self, field: &str, description: impl Into<String>) {
        self.found.push(FieldViolation {
            field: field.to_owned(),
            description: description.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Succeeds only when no violation was recorded.
    pub fn finish(self) -> Result<(), ValidationError> {
        if self.found.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }

    pub fn into_error(self) -> ValidationError {
        ValidationError::of(self.found)
    }
}

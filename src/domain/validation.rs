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
    pub violations: Vec<FieldViolation>,
}

impl ValidationError {
    pub fn single(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            violations: vec![FieldViolation {
                field: field.into(),
                description: description.into(),
            }],
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect();
        f.write_str(&parts.join("; "))
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
        ValidationError {
            violations: self.found,
        }
    }
}

//! Validated domain types and the rules they enforce. Nothing here knows about gRPC or SQL, so the
//! rules can be read, tested and reused without either.

pub mod agency;
pub mod case_record;
pub mod cases;
pub mod compliance;
pub mod employer;
pub mod feed;
pub mod identifiers;
pub mod inspection;
pub mod paging;
pub mod referral;
pub mod region;
pub mod sanction;
pub mod scope;
pub mod validation;

pub use validation::{FieldViolation, ValidationError, Violations};

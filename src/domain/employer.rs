//! The employer registry's rules: what a valid employer record is, and how employers are found.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::identifiers::{Kbli, Nib, Npp, Npwp};
use super::region::RegionCode;
use super::validation::{ValidationError, Violations};

pub const NAME_MAX_CHARS: usize = 200;
pub const ADDRESS_MAX_CHARS: usize = 500;
pub const BPJS_KES_CODE_MAX_CHARS: usize = 32;
pub const NPP_MAX_COUNT: usize = 100;
pub const SEARCH_QUERY_MIN_CHARS: usize = 2;
pub const SEARCH_QUERY_MAX_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SizeClass {
    Micro,
    Small,
    Medium,
    Large,
}

impl SizeClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Micro => "micro",
            Self::Small => "small",
            Self::Medium => "medium",
            Self::Large => "large",
        }
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        [Self::Micro, Self::Small, Self::Medium, Self::Large]
            .into_iter()
            .find(|class| class.as_str() == text)
    }
}

/// An employer as a caller submits it, before any rule is checked. Absent optional text is empty.
#[derive(Debug, Clone, Default)]
pub struct EmployerSubmission {
    pub id: String,
    pub npwp: String,
    pub nib: String,
    pub bpjs_tk_npp: Vec<String>,
    pub bpjs_kes_code: String,
    pub name: String,
    pub address: String,
    pub region_code: String,
    pub kbli: String,
    pub size_class: Option<SizeClass>,
    pub workforce_declared: Option<u32>,
}

/// The caller-controlled part of an employer record, every rule checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmployerFields {
    pub npwp: Npwp,
    pub nib: Option<Nib>,
    pub bpjs_tk_npp: Vec<Npp>,
    pub bpjs_kes_code: Option<String>,
    pub name: String,
    pub address: Option<String>,
    pub region: RegionCode,
    pub kbli: Option<Kbli>,
    pub size_class: Option<SizeClass>,
    pub workforce_declared: Option<u32>,
}

/// A valid employer write: which record (if the caller named one) and its new fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmployerDraft {
    pub id: Option<Uuid>,
    pub fields: EmployerFields,
}

impl EmployerSubmission {
    /// Checks every field; violations are reported under `prefix` (`employer.npwp`).
    pub fn validate(self, prefix: &str) -> Result<EmployerDraft, ValidationError> {
        let mut violations = Violations::new();
        let path = |field: &str| format!("{prefix}.{field}");

        let id = if self.id.trim().is_empty() {
            None
        } else {
            violations.check(&path("id"), parse_uuid(&self.id))
        };
        let npwp = violations.check(&path("npwp"), Npwp::parse(&self.npwp));
        let nib =
            optional(&self.nib).and_then(|nib| violations.check(&path("nib"), Nib::parse(nib)));

        if self.bpjs_tk_npp.len() > NPP_MAX_COUNT {
            violations.add(
                &path("bpjs_tk_npp"),
                format!("at most {NPP_MAX_COUNT} NPP numbers may be given"),
            );
        }
        let mut bpjs_tk_npp: Vec<Npp> = Vec::new();
        for (index, npp) in self.bpjs_tk_npp.iter().enumerate() {
            if let Some(npp) = violations.check(
                &format!("{}[{index}]", path("bpjs_tk_npp")),
                Npp::parse(npp),
            ) && !bpjs_tk_npp.contains(&npp)
            {
                bpjs_tk_npp.push(npp);
            }
        }

        let bpjs_kes_code = optional(&self.bpjs_kes_code).and_then(|code| {
            violations.check(
                &path("bpjs_kes_code"),
                bounded_text(
                    code,
                    BPJS_KES_CODE_MAX_CHARS,
                    "a BPJS Kesehatan employer code",
                ),
            )
        });
        let name = violations.check(&path("name"), employer_name(&self.name));
        let address = optional(&self.address).and_then(|address| {
            violations.check(
                &path("address"),
                bounded_text(address, ADDRESS_MAX_CHARS, "an address"),
            )
        });
        let region = violations.check(
            &path("region.code"),
            RegionCode::parse_regency(&self.region_code),
        );
        let kbli = optional(&self.kbli)
            .and_then(|kbli| violations.check(&path("kbli"), Kbli::parse(kbli)));

        match (npwp, name, region) {
            (Some(npwp), Some(name), Some(region)) if violations.is_empty() => Ok(EmployerDraft {
                id,
                fields: EmployerFields {
                    npwp,
                    nib,
                    bpjs_tk_npp,
                    bpjs_kes_code,
                    name,
                    address,
                    region,
                    kbli,
                    size_class: self.size_class,
                    workforce_declared: self.workforce_declared,
                },
            }),
            _ => Err(violations.into_error()),
        }
    }
}

/// Text the caller may leave empty: `None` when it is blank.
fn optional(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.is_empty()).then_some(text)
}

fn parse_uuid(text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text.trim())
        .map_err(|_| "an id is a UUID such as `0192f3a4-5b6c-7d8e-9f01-23456789abcd`".to_owned())
}

/// Free text of at most `max_chars` characters with no control characters.
fn bounded_text(text: &str, max_chars: usize, what: &str) -> Result<String, String> {
    let text = text.trim();
    if text.chars().count() > max_chars {
        return Err(format!("{what} is at most {max_chars} characters"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(format!("{what} may not contain control characters"));
    }
    Ok(text.to_owned())
}

fn employer_name(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("an employer name is required".into());
    }
    bounded_text(text, NAME_MAX_CHARS, "an employer name").and_then(|name| {
        if name.contains('\n') {
            Err("an employer name is a single line".into())
        } else {
            Ok(name)
        }
    })
}

/// A stored employer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Employer {
    pub id: Uuid,
    pub npwp: String,
    pub nib: Option<String>,
    pub bpjs_tk_npp: Vec<String>,
    pub bpjs_kes_code: Option<String>,
    pub name: String,
    pub address: Option<String>,
    pub region_code: String,
    pub kbli: Option<String>,
    pub size_class: Option<SizeClass>,
    pub workforce_declared: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Incremented by every write; the etag is derived from it.
    pub revision: i64,
}

impl Employer {
    pub fn etag(&self) -> String {
        etag_of(self.revision)
    }
}

pub fn etag_of(revision: i64) -> String {
    format!("r{revision}")
}

/// How a single employer is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmployerKey {
    Id(Uuid),
    Npwp(Npwp),
    Nib(Nib),
}

impl EmployerKey {
    pub fn parse_id(text: &str) -> Result<Self, String> {
        parse_uuid(text).map(Self::Id)
    }
}

/// Filters of a registry listing; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmployerFilter {
    pub region: Option<RegionCode>,
    pub size_class: Option<SizeClass>,
    pub kbli: Option<Kbli>,
    /// The regions the caller may see, when its grants limit it.
    pub within: Option<Vec<RegionCode>>,
}

impl EmployerFilter {
    /// A stable description of the caller's filter, bound into page tokens so a token cannot
    /// be replayed against a different filter. `within` is left out: it follows the caller's
    /// grants, which may change between pages without invalidating the position.
    pub fn fingerprint(&self) -> String {
        format!(
            "list|{}|{}|{}",
            self.region.as_ref().map_or("", |r| r.as_str()),
            self.size_class.map_or("", SizeClass::as_str),
            self.kbli.as_ref().map_or("", |k| k.as_str()),
        )
    }
}

/// A case-insensitive name search, already folded to lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameQuery(String);

impl NameQuery {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let chars = text.chars().count();
        if !(SEARCH_QUERY_MIN_CHARS..=SEARCH_QUERY_MAX_CHARS).contains(&chars) {
            return Err(format!(
                "a search query is {SEARCH_QUERY_MIN_CHARS} to {SEARCH_QUERY_MAX_CHARS} characters"
            ));
        }
        Ok(Self(fold_name(text)))
    }

    pub fn folded(&self) -> &str {
        &self.0
    }

    pub fn fingerprint(&self) -> String {
        format!("search|{}", self.0)
    }
}

/// The form names are compared in: lower case, inner white space collapsed.
pub fn fold_name(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> EmployerSubmission {
        EmployerSubmission {
            npwp: "01.234.567.4-901.000".into(),
            nib: "1234567890123".into(),
            bpjs_tk_npp: vec!["12345678".into(), "12345678".into()],
            name: "  PT Batik Pesisir  ".into(),
            region_code: "33.75".into(),
            kbli: "13134".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_submission_is_normalised() {
        let draft = valid().validate("employer").unwrap();
        assert_eq!(draft.id, None);
        assert_eq!(draft.fields.npwp.as_str(), "0012345674901000");
        assert_eq!(draft.fields.name, "PT Batik Pesisir");
        assert_eq!(draft.fields.bpjs_tk_npp.len(), 1, "duplicates removed");
        assert_eq!(draft.fields.nib.unwrap().as_str(), "1234567890123");
    }

    #[test]
    fn every_violation_is_reported_with_its_field() {
        let submission = EmployerSubmission {
            id: "not-a-uuid".into(),
            npwp: "012345672901000".into(),
            nib: "123".into(),
            bpjs_tk_npp: vec!["1".into()],
            name: " ".into(),
            region_code: "33".into(),
            kbli: "1".into(),
            ..Default::default()
        };
        let error = submission.validate("employer").unwrap_err();
        let fields: Vec<&str> = error.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "employer.id",
                "employer.npwp",
                "employer.nib",
                "employer.bpjs_tk_npp[0]",
                "employer.name",
                "employer.region.code",
                "employer.kbli",
            ]
        );
    }

    #[test]
    fn names_are_bounded() {
        let long = EmployerSubmission {
            name: "x".repeat(NAME_MAX_CHARS + 1),
            ..valid()
        };
        assert!(long.validate("employer").is_err());
        let exact = EmployerSubmission {
            name: "é".repeat(NAME_MAX_CHARS),
            ..valid()
        };
        assert!(exact.validate("employer").is_ok());
    }

    #[test]
    fn search_queries_fold_case_and_space() {
        assert_eq!(
            NameQuery::parse(" Batik  PESISIR ").unwrap().folded(),
            "batik pesisir"
        );
        assert!(NameQuery::parse("a").is_err());
    }
}

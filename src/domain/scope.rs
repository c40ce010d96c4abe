//! The fixed scope vocabulary and what a caller's grants allow.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::region::RegionCode;

/// A right an agency can be granted. Every RPC that needs one checks it; nothing is allowed by
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    EmployersRead,
    EmployersWrite,
    ReportsWrite,
    ComplianceRead,
    InspectionsRead,
    InspectionsWrite,
    SanctionsRead,
    SanctionsWrite,
    SanctionsCheck,
    ReferralsRead,
    ReferralsCreate,
    ReferralsProgress,
    FeedRead,
    CoverageRead,
    AuditRead,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 16] = [
        Self::EmployersRead,
        Self::EmployersWrite,
        Self::ReportsWrite,
        Self::ComplianceRead,
        Self::InspectionsRead,
        Self::InspectionsWrite,
        Self::SanctionsRead,
        Self::SanctionsWrite,
        Self::SanctionsCheck,
        Self::ReferralsRead,
        Self::ReferralsCreate,
        Self::ReferralsProgress,
        Self::FeedRead,
        Self::CoverageRead,
        Self::AuditRead,
        Self::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmployersRead => "employers.read",
            Self::EmployersWrite => "employers.write",
            Self::ReportsWrite => "reports.write",
            Self::ComplianceRead => "compliance.read",
            Self::InspectionsRead => "inspections.read",
            Self::InspectionsWrite => "inspections.write",
            Self::SanctionsRead => "sanctions.read",
            Self::SanctionsWrite => "sanctions.write",
            Self::SanctionsCheck => "sanctions.check",
            Self::ReferralsRead => "referrals.read",
            Self::ReferralsCreate => "referrals.create",
            Self::ReferralsProgress => "referrals.progress",
            Self::FeedRead => "feed.read",
            Self::CoverageRead => "coverage.read",
            Self::AuditRead => "audit.read",
            Self::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| {
                format!("`{text}` is not a scope; see the vocabulary in agency_admin.proto")
            })
    }

    /// Parses a space-separated scope list (the OAuth `scope` claim).
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        let mut scopes: Vec<Self> = text
            .split_whitespace()
            .map(Self::parse)
            .collect::<Result<_, _>>()?;
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }

    pub fn join(scopes: &[Self]) -> String {
        scopes
            .iter()
            .map(|scope| scope.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A social-security programme, as grants may be limited to some.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Programme {
    Jkn,
    Jkk,
    Jkm,
    Jht,
    Jp,
    Jkp,
}

impl Programme {
    pub const ALL: [Programme; 6] = [
        Self::Jkn,
        Self::Jkk,
        Self::Jkm,
        Self::Jht,
        Self::Jp,
        Self::Jkp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jkn => "JKN",
            Self::Jkk => "JKK",
            Self::Jkm => "JKM",
            Self::Jht => "JHT",
            Self::Jp => "JP",
            Self::Jkp => "JKP",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// A region asked for lies wholly outside the caller's grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the region lies outside the caller's grant")]
pub struct OutsideGrant;

/// Which regions a permitted call may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionScope {
    /// Every region: at least one grant for the scope has no region limit.
    All,
    /// Only these regions (provinces cover their regencies and cities). Never empty.
    Only(Vec<RegionCode>),
}

impl RegionScope {
    pub fn allows(&self, region: &RegionCode) -> bool {
        match self {
            Self::All => true,
            Self::Only(allowed) => allowed.iter().any(|grant| grant.contains(region)),
        }
    }

    /// The regions a listing must be limited to, given the region the caller asked for:
    /// `Ok(None)` means no limit.
    pub fn narrow(
        &self,
        requested: Option<&RegionCode>,
    ) -> Result<Option<Vec<RegionCode>>, OutsideGrant> {
        match (self, requested) {
            (Self::All, _) => Ok(None),
            (Self::Only(_), Some(region)) if self.allows(region) => Ok(None),
            (Self::Only(allowed), Some(region)) => {
                // A province asked for by a caller who holds some of its regencies: the
                // listing is those regencies.
                let inside: Vec<RegionCode> = allowed
                    .iter()
                    .filter(|grant| region.contains(grant))
                    .cloned()
                    .collect();
                if inside.is_empty() {
                    Err(OutsideGrant)
                } else {
                    Ok(Some(inside))
                }
            }
            (Self::Only(allowed), None) => Ok(Some(allowed.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(code: &str) -> RegionCode {
        RegionCode::parse(code).unwrap()
    }

    #[test]
    fn the_vocabulary_round_trips() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Ok(scope));
        }
        assert!(Scope::parse("employers.delete").is_err());
        assert_eq!(
            Scope::parse_list("employers.write  admin employers.write").unwrap(),
            [Scope::EmployersWrite, Scope::Admin]
        );
    }

    #[test]
    fn region_scopes_allow_and_narrow() {
        let batang = RegionScope::Only(vec![region("33.25")]);
        assert!(batang.allows(&region("33.25")));
        assert!(!batang.allows(&region("33.26")));
        assert!(!batang.allows(&region("33")));
        assert_eq!(batang.narrow(Some(&region("33.25"))), Ok(None));
        assert_eq!(
            batang.narrow(Some(&region("33"))),
            Ok(Some(vec![region("33.25")]))
        );
        assert_eq!(batang.narrow(Some(&region("36"))), Err(OutsideGrant));
        assert_eq!(batang.narrow(None), Ok(Some(vec![region("33.25")])));
        assert_eq!(RegionScope::All.narrow(None), Ok(None));

        let central_java = RegionScope::Only(vec![region("33")]);
        assert!(central_java.allows(&region("33.75")));
        assert_eq!(central_java.narrow(Some(&region("33.75"))), Ok(None));
    }
}

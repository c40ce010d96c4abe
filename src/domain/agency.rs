//! Agencies, their keys and their grants: who may call, and what each may do.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::region::RegionCode;
use super::scope::Scope;

pub const AGENCY_ID_MIN_CHARS: usize = 3;
pub const AGENCY_ID_MAX_CHARS: usize = 63;
pub const DISPLAY_NAME_MAX_CHARS: usize = 200;

/// An agency's stable id, e.g. `bpjs-kes-pekalongan`: lower-case letters, digits and hyphens,
/// starting with a letter. The narrow alphabet keeps ids safe in logs, URLs and JWT claims.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AgencyId(String);

impl AgencyId {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let valid_chars = text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if (AGENCY_ID_MIN_CHARS..=AGENCY_ID_MAX_CHARS).contains(&text.len())
            && valid_chars
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && !text.ends_with('-')
        {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "an agency id is {AGENCY_ID_MIN_CHARS} to {AGENCY_ID_MAX_CHARS} lower-case \
                 letters, digits and hyphens starting with a letter, e.g. `bpjs-kes-pekalongan`"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AgencyKind {
    Disnaker,
    DisnakertransProvinsi,
    BpjsKesehatan,
    BpjsKetenagakerjaan,
    Kejaksaan,
    LicensingOffice,
    Forum,
    Admin,
}

impl AgencyKind {
    pub const ALL: [AgencyKind; 8] = [
        Self::Disnaker,
        Self::DisnakertransProvinsi,
        Self::BpjsKesehatan,
        Self::BpjsKetenagakerjaan,
        Self::Kejaksaan,
        Self::LicensingOffice,
        Self::Forum,
        Self::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disnaker => "disnaker",
            Self::DisnakertransProvinsi => "disnakertrans_provinsi",
            Self::BpjsKesehatan => "bpjs_kesehatan",
            Self::BpjsKetenagakerjaan => "bpjs_ketenagakerjaan",
            Self::Kejaksaan => "kejaksaan",
            Self::LicensingOffice => "licensing_office",
            Self::Forum => "forum",
            Self::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The scopes an agency of this kind may hold: a grant of any other scope is refused, and
    /// one stored before this rule is not honoured. Each row follows who writes and who reads
    /// what under the cooperation agreements; `AgencyKind` in `agency_admin.proto` publishes
    /// the same table.
    pub fn allowed_scopes(self) -> &'static [Scope] {
        use Scope::*;
        match self {
            // District manpower offices keep the registry, file the workforce (WLKP) and layoff
            // (PHK) reports, and read what every party reads: statuses, sanctions, coverage, the
            // feed. Inspections belong to the province, referrals to BPJS and the Kejari.
            Self::Disnaker => &[
                EmployersRead,
                EmployersWrite,
                ReportsWrite,
                ComplianceRead,
                SanctionsRead,
                FeedRead,
                CoverageRead,
                AuditRead,
            ],
            // Provincial labour inspectors open and progress inspections, and read referrals
            // to follow the cases their findings lead to; they file no reports.
            Self::DisnakertransProvinsi => &[
                EmployersRead,
                ComplianceRead,
                InspectionsRead,
                InspectionsWrite,
                SanctionsRead,
                ReferralsRead,
                FeedRead,
                CoverageRead,
                AuditRead,
            ],
            // Each BPJS records its own employer numbers, files its registration reports,
            // takes the administrative sanction steps, reads the inspections, and opens
            // referrals under the SKK it issues (but never moves them: the Kejari does).
            Self::BpjsKesehatan | Self::BpjsKetenagakerjaan => &[
                EmployersRead,
                EmployersWrite,
                ReportsWrite,
                ComplianceRead,
                InspectionsRead,
                SanctionsRead,
                SanctionsWrite,
                ReferralsRead,
                ReferralsCreate,
                FeedRead,
                CoverageRead,
                AuditRead,
            ],
            // A Kejari works the referrals addressed to it, and reads what a case file needs:
            // the employer, its status now, its inspections and sanctions.
            Self::Kejaksaan => &[
                EmployersRead,
                ComplianceRead,
                InspectionsRead,
                SanctionsRead,
                ReferralsRead,
                ReferralsProgress,
                FeedRead,
                CoverageRead,
                AuditRead,
            ],
            // A licensing office imposes and lifts TMP2T on BPJS's request (the sanction
            // lifecycle lets it take those steps only), and its counter asks whether services
            // are withheld from one employer; it reads the tracks it acts on, and the
            // aggregates everyone may read.
            Self::LicensingOffice => &[SanctionsCheck, SanctionsRead, SanctionsWrite, CoverageRead],
            // The Perjaka forum monitors compliance from aggregates and sees no employer:
            // coverage figures and referral statistics (`referrals.read` admits a forum to
            // GetReferralStats only; the referrals themselves are refused to its kind).
            Self::Forum => &[CoverageRead, ReferralsRead],
            // Administrators manage access and read everything to support the parties; the
            // records themselves are written by the agencies that own them.
            Self::Admin => &[
                EmployersRead,
                ComplianceRead,
                InspectionsRead,
                SanctionsRead,
                SanctionsCheck,
                ReferralsRead,
                FeedRead,
                CoverageRead,
                AuditRead,
                Admin,
            ],
        }
    }

    pub fn may_hold(self, scope: Scope) -> bool {
        self.allowed_scopes().contains(&scope)
    }
}

/// A grant of a scope that the agency's kind may not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "an agency of kind {} may not hold scope {scope}; it may hold: {}",
    kind.as_str(),
    Scope::join(kind.allowed_scopes())
)]
pub struct ScopeNotAllowedForKind {
    pub kind: AgencyKind,
    pub scope: Scope,
}

impl AgencyKind {
    /// Refuses a grant of `scope` to an agency of this kind when its row does not list it.
    pub fn check_grant(self, scope: Scope) -> Result<(), ScopeNotAllowedForKind> {
        if self.may_hold(scope) {
            Ok(())
        } else {
            Err(ScopeNotAllowedForKind { kind: self, scope })
        }
    }
}

/// A registered agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    pub id: AgencyId,
    pub kind: AgencyKind,
    pub display_name: String,
    pub home_region: Option<RegionCode>,
    pub created_at: OffsetDateTime,
    pub disabled_at: Option<OffsetDateTime>,
}

/// A new agency, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgency {
    pub id: AgencyId,
    pub kind: AgencyKind,
    pub display_name: String,
    pub home_region: Option<RegionCode>,
}

pub fn display_name(text: &str) -> Result<String, String> {
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > DISPLAY_NAME_MAX_CHARS || text.chars().any(char::is_control) {
        Err(format!(
            "a display name is 1 to {DISPLAY_NAME_MAX_CHARS} characters on one line"
        ))
    } else {
        Ok(text.to_owned())
    }
}

/// Signature algorithms agencies may sign client assertions with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// Ed25519 (RFC 8037).
    EdDsa,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl KeyAlgorithm {
    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "EdDSA" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }
}

/// A registered public key of an agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyKey {
    pub agency_id: AgencyId,
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    /// The public JWK as canonical JSON (only the members that define the key).
    pub public_jwk: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A stored grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: Uuid,
    pub agency_id: AgencyId,
    pub scope: super::scope::Scope,
    pub regions: Vec<RegionCode>,
    pub programmes: Vec<super::scope::Programme>,
    pub expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub granted_by: AgencyId,
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_by: Option<AgencyId>,
}

impl Grant {
    /// Whether the grant is in force at `now`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| now < expiry)
    }
}

/// A new grant, checked. Its id is chosen before it is stored, so the audit entry of the call
/// that creates it can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    pub id: Uuid,
    pub agency_id: AgencyId,
    pub scope: super::scope::Scope,
    pub regions: Vec<RegionCode>,
    pub programmes: Vec<super::scope::Programme>,
    pub expires_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agency_ids_are_narrow_slugs() {
        for good in ["bpjs-kes-pekalongan", "kejari-batang", "adm", "a1-b2"] {
            assert!(AgencyId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "", "ab", "Bpjs", "1abc", "abc-", "a_b_c", "../etc", "a'; drop", "ab c",
        ] {
            assert!(AgencyId::parse(bad).is_err(), "{bad}");
        }
        assert!(AgencyId::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn every_kind_may_hold_some_scopes_and_only_administrators_administer() {
        for kind in AgencyKind::ALL {
            assert!(!kind.allowed_scopes().is_empty(), "{kind:?}");
            assert_eq!(
                kind.may_hold(Scope::Admin),
                kind == AgencyKind::Admin,
                "{kind:?}"
            );
        }
        assert_eq!(
            AgencyKind::Forum.check_grant(Scope::EmployersRead),
            Err(ScopeNotAllowedForKind {
                kind: AgencyKind::Forum,
                scope: Scope::EmployersRead
            })
        );
        assert!(AgencyKind::Forum.check_grant(Scope::CoverageRead).is_ok());
    }

    #[test]
    fn kinds_round_trip() {
        for kind in AgencyKind::ALL {
            assert_eq!(AgencyKind::parse(kind.as_str()), Some(kind));
        }
    }
}

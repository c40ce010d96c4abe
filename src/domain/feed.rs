//! Events of the change feed and who may read them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::agency::AgencyKind;
use super::compliance::{ComplianceStatus, Figures, Report};
use super::employer::Employer;
use super::inspection::Inspection;
use super::referral::Referral;
use super::sanction::SanctionTrack;
use super::scope::Scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FeedEventType {
    EmployerUpserted,
    ReportSubmitted,
    ReportSuperseded,
    StatusChanged,
    InspectionChanged,
    SanctionChanged,
    ReferralChanged,
}

impl FeedEventType {
    pub const ALL: [FeedEventType; 7] = [
        Self::EmployerUpserted,
        Self::ReportSubmitted,
        Self::ReportSuperseded,
        Self::StatusChanged,
        Self::InspectionChanged,
        Self::SanctionChanged,
        Self::ReferralChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmployerUpserted => "employer_upserted",
            Self::ReportSubmitted => "report_submitted",
            Self::ReportSuperseded => "report_superseded",
            Self::StatusChanged => "status_changed",
            Self::InspectionChanged => "inspection_changed",
            Self::SanctionChanged => "sanction_changed",
            Self::ReferralChanged => "referral_changed",
        }
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// The changed record an event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedPayload {
    Employer(Employer),
    Report(Report),
    Status(ComplianceStatus),
    Inspection(Inspection),
    Sanction(SanctionTrack),
    Referral(Referral),
}

/// Agencies that may read layoff reports: the Disnaker offices that receive them, and both
/// BPJS, for whom the report is the proof that laid-off workers keep their cover.
const LAYOFF_AUDIENCE: [AgencyKind; 4] = [
    AgencyKind::Disnaker,
    AgencyKind::BpjsKesehatan,
    AgencyKind::BpjsKetenagakerjaan,
    AgencyKind::Admin,
];

/// Agency kinds that read every referral in their regions; the referral's own BPJS agency and
/// Kejari are named on each event.
pub const REFERRAL_READERS: [AgencyKind; 2] =
    [AgencyKind::DisnakertransProvinsi, AgencyKind::Admin];

/// Whether an agency of `kind` may read `report` at all (before scopes and regions).
pub fn report_audience(report: &Report) -> &'static [AgencyKind] {
    match report.figures {
        Figures::Layoff { .. } => &LAYOFF_AUDIENCE,
        _ => &[],
    }
}

/// One committed change. `seq` is 0 until the sequencer gives the event its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    pub seq: u64,
    pub event_type: FeedEventType,
    pub time_us: i64,
    pub employer_id: Uuid,
    pub region_code: String,
    /// The scope a reader needs besides `feed.read`.
    pub read_scope: Scope,
    /// The agency kinds the event is limited to; empty: any (unless `parties` names some).
    pub audience: Vec<AgencyKind>,
    /// Agencies that may read the event besides `audience`, whatever the regions of their
    /// grants: the parties to a case.
    pub parties: Vec<String>,
    pub source_agency: String,
    pub payload: FeedPayload,
}

impl FeedEvent {
    pub fn new(
        event_type: FeedEventType,
        time_us: i64,
        region_code: &str,
        source_agency: &str,
        payload: FeedPayload,
    ) -> Self {
        let mut parties = Vec::new();
        let (employer_id, read_scope, audience) = match &payload {
            FeedPayload::Employer(employer) => (employer.id, Scope::EmployersRead, vec![]),
            FeedPayload::Report(report) => (
                report.employer_id,
                Scope::ComplianceRead,
                report_audience(report).to_vec(),
            ),
            FeedPayload::Status(status) => (status.employer_id, Scope::ComplianceRead, vec![]),
            FeedPayload::Inspection(inspection) => {
                (inspection.employer_id, Scope::InspectionsRead, vec![])
            }
            FeedPayload::Sanction(track) => (track.employer_id, Scope::SanctionsRead, vec![]),
            FeedPayload::Referral(referral) => {
                parties = vec![referral.bpjs_agency.clone(), referral.kejari_agency.clone()];
                (
                    referral.employer_id,
                    Scope::ReferralsRead,
                    REFERRAL_READERS.to_vec(),
                )
            }
        };
        Self {
            seq: 0,
            event_type,
            time_us,
            employer_id,
            region_code: region_code.to_owned(),
            read_scope,
            audience,
            parties,
            source_agency: source_agency.to_owned(),
            payload,
        }
    }
}

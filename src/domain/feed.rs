//! Events of the change feed and who may read them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::agency::AgencyKind;
use super::compliance::{ComplianceStatus, Figures, Report};
use super::employer::Employer;
use super::scope::Scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FeedEventType {
    EmployerUpserted,
    ReportSubmitted,
    ReportSuperseded,
    StatusChanged,
}

impl FeedEventType {
    pub const ALL: [FeedEventType; 4] = [
        Self::EmployerUpserted,
        Self::ReportSubmitted,
        Self::ReportSuperseded,
        Self::StatusChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmployerUpserted => "employer_upserted",
            Self::ReportSubmitted => "report_submitted",
            Self::ReportSuperseded => "report_superseded",
            Self::StatusChanged => "status_changed",
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
}

/// Agencies that may read layoff reports: the Disnaker offices that receive them, and both
/// BPJS, for whom the report is the proof that laid-off workers keep their cover.
const LAYOFF_AUDIENCE: [AgencyKind; 4] = [
    AgencyKind::Disnaker,
    AgencyKind::BpjsKesehatan,
    AgencyKind::BpjsKetenagakerjaan,
    AgencyKind::Admin,
];

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
    /// The agency kinds the event is limited to; empty: any.
    pub audience: Vec<AgencyKind>,
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
        let (employer_id, read_scope, audience) = match &payload {
            FeedPayload::Employer(employer) => (employer.id, Scope::EmployersRead, vec![]),
            FeedPayload::Report(report) => (
                report.employer_id,
                Scope::ComplianceRead,
                report_audience(report).to_vec(),
            ),
            FeedPayload::Status(status) => (status.employer_id, Scope::ComplianceRead, vec![]),
        };
        Self {
            seq: 0,
            event_type,
            time_us,
            employer_id,
            region_code: region_code.to_owned(),
            read_scope,
            audience,
            source_agency: source_agency.to_owned(),
            payload,
        }
    }
}

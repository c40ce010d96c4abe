//! Labour inspections (lifecycle B of the domain notes): inspection, nota pemeriksaan I and II,
//! the employer's responses, and the outcome.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::agency::{AgencyId, AgencyKind};
use super::cases::{
    Case, CaseFacets, CaseStep, NextStep, PreconditionError, StepError, StepTaken, Subject,
    any_date, case_fields, check_party, checked_step, day_text, document_ref, effective_date,
    named_enum, note,
};
use super::compliance::ComplianceStatus;
use super::{ValidationError, Violations};

named_enum!(
    /// Where an inspection stands.
    InspectionStatus {
        Open => "OPEN",
        NotaI => "NOTA_I",
        NotaII => "NOTA_II",
        Closed => "CLOSED",
    }
);

named_enum!(
    /// A step of an inspection.
    InspectionStep {
        IssueNotaI => "ISSUE_NOTA_I",
        RecordResponse => "RECORD_RESPONSE",
        IssueNotaII => "ISSUE_NOTA_II",
        Close => "CLOSE",
    }
);

named_enum!(
    /// How an inspection ended.
    InspectionOutcome {
        Complied => "COMPLIED",
        RecommendedForSanction => "RECOMMENDED_FOR_SANCTION",
        ReferredToInvestigators => "REFERRED_TO_INVESTIGATORS",
    }
);

/// The history's first step.
pub const OPEN_STEP: &str = "OPEN";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspection {
    pub id: Uuid,
    pub employer_id: Uuid,
    pub region_code: String,
    pub inspecting_agency: String,
    pub joint_agency: Option<String>,
    pub triggering_finding: Option<ComplianceStatus>,
    pub status: InspectionStatus,
    pub outcome: Option<InspectionOutcome>,
    /// The current nota's response date while no response is recorded.
    #[serde(with = "day_text::option")]
    pub response_due: Option<Date>,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    pub history: Vec<CaseStep>,
    pub revision: i64,
}

/// A step as asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRequest {
    pub step: InspectionStep,
    pub taken: StepTaken,
    pub response_due: Option<Date>,
    pub outcome: Option<InspectionOutcome>,
}

/// The fields of an AdvanceInspection request.
pub struct StepFields<'a> {
    pub step: Option<InspectionStep>,
    pub effective_date: &'a str,
    pub response_due: &'a str,
    pub outcome: Option<InspectionOutcome>,
    pub note: &'a str,
    pub document_ref: &'a str,
}

impl StepFields<'_> {
    pub fn validate(&self, today: Date) -> Result<StepRequest, ValidationError> {
        let mut violations = Violations::new();
        if self.step.is_none() {
            violations.add("step", "a step is required");
        }
        let effective_on =
            violations.check("effective_date", effective_date(self.effective_date, today));
        let response_due = if self.response_due.trim().is_empty() {
            None
        } else {
            violations.check("response_due", any_date(self.response_due))
        };
        let note = violations.check("note", note(self.note));
        let document = violations.check("document_ref", document_ref(self.document_ref));
        let is_nota = matches!(
            self.step,
            Some(InspectionStep::IssueNotaI | InspectionStep::IssueNotaII)
        );
        if is_nota {
            match (response_due, effective_on) {
                (None, _) => violations.add("response_due", "a nota needs its response date"),
                (Some(due), Some(on)) if due <= on => {
                    violations.add("response_due", "the response date falls after the nota's")
                }
                _ => {}
            }
            if document.as_deref().is_some_and(str::is_empty) {
                violations.add("document_ref", "a nota needs its number");
            }
        }
        if self.step == Some(InspectionStep::Close) && self.outcome.is_none() {
            violations.add("outcome", "closing needs an outcome");
        }
        violations.finish()?;
        let (step, taken) = checked_step(self.step, effective_on, note, document)?;
        Ok(StepRequest {
            step,
            taken,
            response_due: if is_nota { response_due } else { None },
            outcome: self.outcome,
        })
    }
}

impl Inspection {
    pub fn open(
        subject: Subject<'_>,
        inspector: &AgencyId,
        joint_agency: Option<&AgencyId>,
        triggering_finding: Option<ComplianceStatus>,
        note: String,
        now: OffsetDateTime,
        opened_on: Date,
    ) -> Self {
        Self {
            id: subject.id,
            employer_id: subject.employer_id,
            region_code: subject.region_code.to_owned(),
            inspecting_agency: inspector.to_string(),
            joint_agency: joint_agency.map(ToString::to_string),
            triggering_finding,
            status: InspectionStatus::Open,
            outcome: None,
            response_due: None,
            opened_at: now,
            closed_at: None,
            history: vec![CaseStep::taken(
                OPEN_STEP,
                InspectionStatus::Open.as_str(),
                inspector,
                now,
                StepTaken {
                    effective_on: opened_on,
                    note,
                    document_ref: String::new(),
                },
            )],
            revision: 1,
        }
    }

    /// Whether a response to the current nota was recorded.
    fn responded(&self) -> bool {
        self.history
            .last()
            .is_some_and(|last| last.step == InspectionStep::RecordResponse.as_str())
    }

    /// The steps allowed now, given the date a step would take effect.
    pub fn allowed_steps(&self, on: Date) -> Vec<InspectionStep> {
        use InspectionStep::*;
        let waiting = !self.responded();
        match self.status {
            InspectionStatus::Open => vec![IssueNotaI, Close],
            InspectionStatus::NotaI => {
                let mut steps = Vec::new();
                if waiting {
                    steps.push(RecordResponse);
                }
                if !waiting || self.response_due.is_none_or(|due| on > due) {
                    steps.push(IssueNotaII);
                }
                steps.push(Close);
                steps
            }
            InspectionStatus::NotaII if waiting => vec![RecordResponse, Close],
            InspectionStatus::NotaII => vec![Close],
            InspectionStatus::Closed => vec![],
        }
    }

    pub fn advance(
        &mut self,
        actor: &AgencyId,
        kind: AgencyKind,
        request: StepRequest,
        now: OffsetDateTime,
    ) -> Result<(), StepError> {
        check_party(
            actor,
            kind,
            &self.inspecting_agency,
            AgencyKind::DisnakertransProvinsi,
            "the office conducting this inspection",
        )?;
        NextStep::on(
            self,
            "inspection",
            self.status.as_str(),
            request.step.as_str(),
            self.allowed_steps(request.taken.effective_on)
                .iter()
                .map(|s| s.as_str()),
            &request.taken,
        )
        .check()?;
        let status = match request.step {
            InspectionStep::IssueNotaI => InspectionStatus::NotaI,
            InspectionStep::IssueNotaII => InspectionStatus::NotaII,
            InspectionStep::RecordResponse => self.status,
            InspectionStep::Close => {
                let outcome = request.outcome.unwrap_or(InspectionOutcome::Complied);
                if outcome != InspectionOutcome::Complied && self.status != InspectionStatus::NotaII
                {
                    return Err(PreconditionError(format!(
                        "{} follows nota pemeriksaan II; only COMPLIED closes an inspection \
                         before it",
                        outcome.as_str()
                    ))
                    .into());
                }
                self.outcome = Some(outcome);
                self.closed_at = Some(now);
                InspectionStatus::Closed
            }
        };
        self.response_due = request.response_due;
        self.status = status;
        self.history.push(CaseStep::taken(
            request.step.as_str(),
            status.as_str(),
            actor,
            now,
            request.taken,
        ));
        Ok(())
    }

    pub fn is_overdue(&self, today: Date) -> bool {
        self.status != InspectionStatus::Closed && self.response_due.is_some_and(|due| due < today)
    }
}

impl Case for Inspection {
    case_fields!();

    fn steps(&self) -> Box<dyn Iterator<Item = &CaseStep> + '_> {
        Box::new(self.history.iter())
    }

    fn facets(&self) -> CaseFacets {
        CaseFacets {
            owner_agency: self.inspecting_agency.clone(),
            counterpart_agency: self.joint_agency.clone(),
            programme_group: None,
            reference: None,
            status: self.status.as_str(),
            is_open: self.closed_at.is_none(),
            opened_at: self.opened_at,
            closed_at: self.closed_at,
            due_on: self.response_due,
            amount_recovered: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn request(step: InspectionStep, on: Date, due: Option<Date>) -> StepRequest {
        StepRequest {
            step,
            taken: StepTaken {
                effective_on: on,
                note: String::new(),
                document_ref: "N/1".into(),
            },
            response_due: due,
            outcome: Some(InspectionOutcome::RecommendedForSanction),
        }
    }

    #[test]
    fn nota_ii_follows_a_response_or_the_due_date() {
        let office = AgencyId::parse("disnakertrans-jateng").unwrap();
        let kind = AgencyKind::DisnakertransProvinsi;
        let now = datetime!(2026-11-20 0:00 UTC);
        let mut inspection = Inspection::open(
            Subject {
                id: Uuid::nil(),
                employer_id: Uuid::nil(),
                region_code: "33.26",
            },
            &office,
            None,
            None,
            String::new(),
            now,
            date!(2026 - 10 - 1),
        );
        let early_close = inspection.advance(
            &office,
            kind,
            request(InspectionStep::Close, date!(2026 - 10 - 1), None),
            now,
        );
        assert!(matches!(early_close, Err(StepError::Precondition(_))));
        inspection
            .advance(
                &office,
                kind,
                request(
                    InspectionStep::IssueNotaI,
                    date!(2026 - 10 - 1),
                    Some(date!(2026 - 10 - 15)),
                ),
                now,
            )
            .unwrap();
        assert!(inspection.is_overdue(date!(2026 - 10 - 16)));
        let too_soon = inspection.advance(
            &office,
            kind,
            request(
                InspectionStep::IssueNotaII,
                date!(2026 - 10 - 10),
                Some(date!(2026 - 10 - 24)),
            ),
            now,
        );
        assert!(
            matches!(too_soon, Err(StepError::Transition(_))),
            "{too_soon:?}"
        );
        inspection
            .advance(
                &office,
                kind,
                request(
                    InspectionStep::IssueNotaII,
                    date!(2026 - 10 - 16),
                    Some(date!(2026 - 10 - 30)),
                ),
                now,
            )
            .unwrap();
        inspection
            .advance(
                &office,
                kind,
                request(InspectionStep::RecordResponse, date!(2026 - 10 - 20), None),
                now,
            )
            .unwrap();
        assert!(!inspection.is_overdue(date!(2026 - 11 - 1)));
        inspection
            .advance(
                &office,
                kind,
                request(InspectionStep::Close, date!(2026 - 11 - 1), None),
                now,
            )
            .unwrap();
        assert_eq!(inspection.status, InspectionStatus::Closed);
        assert_eq!(
            inspection.outcome,
            Some(InspectionOutcome::RecommendedForSanction)
        );
        let other = AgencyId::parse("disnakertrans-banten").unwrap();
        assert!(matches!(
            inspection.advance(
                &other,
                kind,
                request(InspectionStep::Close, date!(2026 - 11 - 1), None),
                now
            ),
            Err(StepError::NotYourStep(_))
        ));
    }
}

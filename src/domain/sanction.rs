//! Administrative sanctions (lifecycle A of the domain notes, PP 86/2013): written warnings and a
//! fine from BPJS, then TMP2T imposed and lifted by a licensing office at BPJS's request.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::agency::{AgencyId, AgencyKind};
use super::cases::{
    Case, CaseFacets, CaseStep, NextStep, PreconditionError, StepError, StepTaken, Subject,
    add_working_days, case_fields, checked_step, day_text, document_ref, effective_date,
    named_enum, note,
};
use super::compliance::{Category, ComplianceStatus, ProgrammeGroup};
use super::{ValidationError, Violations};

/// How long a written warning runs, in working days (PP 86/2013 art. 6: at most 10).
pub const WARNING_PERIOD_WORKING_DAYS: u32 = 10;

named_enum!(
    /// Where a sanction track stands.
    SanctionStatus {
        Warning1 => "WARNING_1",
        Warning2 => "WARNING_2",
        Fine => "FINE",
        Tmp2tRequested => "TMP2T_REQUESTED",
        Tmp2tActive => "TMP2T_ACTIVE",
        RevocationRequested => "REVOCATION_REQUESTED",
        Lifted => "LIFTED",
        ClosedComplied => "CLOSED_COMPLIED",
    }
);

named_enum!(
    /// A step of a track.
    SanctionStep {
        Warning1 => "WARNING_1",
        Warning2 => "WARNING_2",
        Fine => "FINE",
        RequestTmp2t => "REQUEST_TMP2T",
        ActivateTmp2t => "ACTIVATE_TMP2T",
        RequestRevocation => "REQUEST_REVOCATION",
        LiftTmp2t => "LIFT_TMP2T",
    }
);

named_enum!(
    /// A public service TMP2T withholds (PP 86/2013 art. 9).
    WithheldService {
        BusinessLicence => "BUSINESS_LICENCE",
        Tender => "TENDER",
        ForeignWorkerLicence => "FOREIGN_WORKER_LICENCE",
        OutsourcingLicence => "OUTSOURCING_LICENCE",
        BuildingPermit => "BUILDING_PERMIT",
    }
);

impl SanctionStatus {
    pub fn allowed_steps(self) -> &'static [SanctionStep] {
        use SanctionStep::*;
        match self {
            Self::Warning1 => &[Warning2, RequestRevocation],
            Self::Warning2 => &[Fine, RequestRevocation],
            Self::Fine => &[RequestTmp2t, RequestRevocation],
            Self::Tmp2tRequested => &[ActivateTmp2t, RequestRevocation],
            Self::Tmp2tActive => &[RequestRevocation],
            Self::RevocationRequested => &[LiftTmp2t],
            Self::Lifted | Self::ClosedComplied => &[],
        }
    }

    pub fn is_open(self) -> bool {
        !self.allowed_steps().is_empty()
    }

    /// Whether services are withheld: from activation until the licensing office lifts TMP2T.
    pub fn withholds(self) -> bool {
        matches!(self, Self::Tmp2tActive | Self::RevocationRequested)
    }
}

impl SanctionStep {
    /// Steps a licensing office takes; BPJS takes the others.
    pub fn is_licensing_step(self) -> bool {
        matches!(self, Self::ActivateTmp2t | Self::LiftTmp2t)
    }
}

/// A step with the compliance status that justified it (BPJS steps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SanctionStepRecord {
    pub step: CaseStep,
    pub justified_by: Option<ComplianceStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SanctionTrack {
    pub id: Uuid,
    pub employer_id: Uuid,
    pub region_code: String,
    pub group: ProgrammeGroup,
    pub bpjs_agency: String,
    pub status: SanctionStatus,
    pub fine_amount: u64,
    pub withheld: Vec<WithheldService>,
    #[serde(with = "day_text::option")]
    pub warning_period_end: Option<Date>,
    pub licensing_agency: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    pub history: Vec<SanctionStepRecord>,
    pub revision: i64,
}

/// A step as asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRequest {
    pub step: SanctionStep,
    pub taken: StepTaken,
    pub fine_amount: u64,
    pub services: Vec<WithheldService>,
}

/// The fields of a TakeSanctionStep request.
pub struct StepFields<'a> {
    pub step: Option<SanctionStep>,
    pub effective_date: &'a str,
    pub document_ref: &'a str,
    pub note: &'a str,
    pub fine_amount: u64,
    pub services: Vec<Option<WithheldService>>,
}

impl StepFields<'_> {
    pub fn validate(&self, today: Date) -> Result<StepRequest, ValidationError> {
        let mut violations = Violations::new();
        if self.step.is_none() {
            violations.add("step", "a step is required");
        }
        let effective_on =
            violations.check("effective_date", effective_date(self.effective_date, today));
        let document = violations.check("document_ref", document_ref(self.document_ref));
        if document.as_deref().is_some_and(str::is_empty) {
            violations.add("document_ref", "the letter or decision number is required");
        }
        let note = violations.check("note", note(self.note));
        let mut services = Vec::new();
        for (index, service) in self.services.iter().enumerate() {
            match service {
                Some(service) if !services.contains(service) => services.push(*service),
                Some(_) => {}
                None => violations.add(&format!("withheld_services[{index}]"), "not a service"),
            }
        }
        match self.step {
            Some(SanctionStep::Fine) if self.fine_amount == 0 => {
                violations.add("fine_amount", "a fine is more than 0 rupiah");
            }
            Some(SanctionStep::RequestTmp2t) if self.services.is_empty() => {
                violations.add("withheld_services", "TMP2T withholds at least one service");
            }
            _ => {}
        }
        violations.finish()?;
        let (step, taken) = checked_step(self.step, effective_on, note, document)?;
        Ok(StepRequest {
            step,
            taken,
            fine_amount: self.fine_amount,
            services,
        })
    }
}

fn is_compliant(status: Option<&ComplianceStatus>) -> bool {
    status.is_some_and(|s| s.categories == [Category::Compliant])
}

fn non_compliant(
    status: Option<&ComplianceStatus>,
    group: ProgrammeGroup,
) -> Result<ComplianceStatus, PreconditionError> {
    status
        .filter(|s| s.is_non_compliant())
        .cloned()
        .ok_or_else(|| {
            PreconditionError(format!(
                "a sanction needs the employer to be non-compliant in {}; it is not now",
                group.as_str()
            ))
        })
}

impl SanctionTrack {
    /// Opens a track with written warning 1, by `bpjs`, an agency running `group`.
    pub fn open(
        subject: Subject<'_>,
        group: ProgrammeGroup,
        bpjs: &AgencyId,
        request: StepRequest,
        status_now: Option<&ComplianceStatus>,
        now: OffsetDateTime,
    ) -> Result<Self, StepError> {
        if request.step != SanctionStep::Warning1 {
            return Err(PreconditionError(
                "a sanction track opens with WARNING_1; later steps name the track".into(),
            )
            .into());
        }
        let justified_by = non_compliant(status_now, group)?;
        let status = SanctionStatus::Warning1;
        Ok(Self {
            id: subject.id,
            employer_id: subject.employer_id,
            region_code: subject.region_code.to_owned(),
            group,
            bpjs_agency: bpjs.to_string(),
            status,
            fine_amount: 0,
            withheld: Vec::new(),
            warning_period_end: Some(add_working_days(
                request.taken.effective_on,
                WARNING_PERIOD_WORKING_DAYS,
            )),
            licensing_agency: None,
            opened_at: now,
            closed_at: None,
            history: vec![SanctionStepRecord {
                step: CaseStep::taken(
                    request.step.as_str(),
                    status.as_str(),
                    bpjs,
                    now,
                    request.taken,
                ),
                justified_by: Some(justified_by),
            }],
            revision: 1,
        })
    }

    /// Takes `request` as `actor`, an agency of `kind`, with the employer's current status in
    /// the track's group.
    pub fn advance(
        &mut self,
        actor: &AgencyId,
        kind: AgencyKind,
        request: StepRequest,
        status_now: Option<&ComplianceStatus>,
        now: OffsetDateTime,
    ) -> Result<(), StepError> {
        let party_ok = if request.step.is_licensing_step() {
            kind == AgencyKind::LicensingOffice
        } else {
            kind == self.group.operator()
        };
        if !party_ok {
            let party = if request.step.is_licensing_step() {
                "a licensing office"
            } else {
                self.group.operator().as_str()
            };
            return Err(StepError::NotYourStep(format!(
                "{} is taken by {party}",
                request.step.as_str()
            )));
        }
        NextStep::on(
            self,
            "sanction track",
            self.status.as_str(),
            request.step.as_str(),
            self.status.allowed_steps().iter().map(|s| s.as_str()),
            &request.taken,
        )
        .check()?;
        if matches!(request.step, SanctionStep::Warning2 | SanctionStep::Fine)
            && let Some(end) = self.warning_period_end
            && request.taken.effective_on <= end
        {
            return Err(PreconditionError(format!(
                "the current warning runs until {end}; the next step may be dated from the day \
                 after"
            ))
            .into());
        }

        let mut justified_by = None;
        let status = match request.step {
            SanctionStep::Warning1 => SanctionStatus::Warning1,
            SanctionStep::Warning2 => {
                justified_by = Some(non_compliant(status_now, self.group)?);
                self.warning_period_end = Some(add_working_days(
                    request.taken.effective_on,
                    WARNING_PERIOD_WORKING_DAYS,
                ));
                SanctionStatus::Warning2
            }
            SanctionStep::Fine => {
                justified_by = Some(non_compliant(status_now, self.group)?);
                self.warning_period_end = None;
                self.fine_amount = request.fine_amount;
                SanctionStatus::Fine
            }
            SanctionStep::RequestTmp2t => {
                justified_by = Some(non_compliant(status_now, self.group)?);
                self.withheld = request.services.clone();
                SanctionStatus::Tmp2tRequested
            }
            SanctionStep::ActivateTmp2t => {
                self.licensing_agency = Some(actor.to_string());
                SanctionStatus::Tmp2tActive
            }
            SanctionStep::RequestRevocation => {
                if !is_compliant(status_now) {
                    return Err(PreconditionError(format!(
                        "revocation needs the employer to be COMPLIANT in {}",
                        self.group.as_str()
                    ))
                    .into());
                }
                justified_by = status_now.cloned();
                self.warning_period_end = None;
                if self.status == SanctionStatus::Tmp2tActive {
                    SanctionStatus::RevocationRequested
                } else {
                    SanctionStatus::ClosedComplied
                }
            }
            SanctionStep::LiftTmp2t => SanctionStatus::Lifted,
        };
        if !status.is_open() {
            self.closed_at = Some(now);
        }
        self.status = status;
        self.history.push(SanctionStepRecord {
            step: CaseStep::taken(
                request.step.as_str(),
                status.as_str(),
                actor,
                now,
                request.taken,
            ),
            justified_by,
        });
        Ok(())
    }
}

impl Case for SanctionTrack {
    case_fields!();

    fn steps(&self) -> Box<dyn Iterator<Item = &CaseStep> + '_> {
        Box::new(self.history.iter().map(|record| &record.step))
    }

    fn facets(&self) -> CaseFacets {
        CaseFacets {
            owner_agency: self.bpjs_agency.clone(),
            counterpart_agency: self.licensing_agency.clone(),
            programme_group: Some(self.group),
            reference: None,
            status: self.status.as_str(),
            is_open: self.status.is_open(),
            opened_at: self.opened_at,
            closed_at: self.closed_at,
            due_on: self.warning_period_end,
            amount_recovered: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn status(categories: Vec<Category>) -> ComplianceStatus {
        ComplianceStatus {
            employer_id: Uuid::nil(),
            group: ProgrammeGroup::Jkn,
            categories,
            workers_reported: Some(1500),
            workers_registered: Some(1000),
            gap: 500,
            arrears_amount: 0,
            arrears_months: 0,
            missing_programmes: vec![],
            priority_score: 0,
            derived_from: vec![],
            flags: vec![],
            rules_version: "test".into(),
            computed_at: datetime!(2026-10-01 0:00 UTC),
        }
    }

    fn subject() -> Subject<'static> {
        Subject {
            id: Uuid::nil(),
            employer_id: Uuid::nil(),
            region_code: "33.26",
        }
    }

    fn request(step: SanctionStep, on: Date) -> StepRequest {
        StepRequest {
            step,
            taken: StepTaken {
                effective_on: on,
                note: String::new(),
                document_ref: "B/1".into(),
            },
            fine_amount: 1000,
            services: vec![WithheldService::BusinessLicence],
        }
    }

    #[test]
    fn the_order_of_pp_86_2013_is_kept() {
        let bpjs = AgencyId::parse("bpjs-kes-pekalongan").unwrap();
        let office = AgencyId::parse("dpmptsp-pekalongan").unwrap();
        let gap = status(vec![Category::PdsTk]);
        let now = datetime!(2026-11-20 0:00 UTC);
        let w1 = date!(2026 - 10 - 1);
        let mut track = SanctionTrack::open(
            subject(),
            ProgrammeGroup::Jkn,
            &bpjs,
            request(SanctionStep::Warning1, w1),
            Some(&gap),
            now,
        )
        .unwrap();
        assert_eq!(track.warning_period_end, Some(date!(2026 - 10 - 15)));
        let kes = AgencyKind::BpjsKesehatan;

        // Warning 2 dated inside warning 1's period is refused; the day after is fine.
        let early = track.advance(
            &bpjs,
            kes,
            request(SanctionStep::Warning2, date!(2026 - 10 - 15)),
            Some(&gap),
            now,
        );
        assert!(
            matches!(early, Err(StepError::Precondition(_))),
            "{early:?}"
        );
        let skipped = track.advance(
            &bpjs,
            kes,
            request(SanctionStep::Fine, date!(2026 - 10 - 20)),
            Some(&gap),
            now,
        );
        assert!(
            matches!(skipped, Err(StepError::Transition(_))),
            "{skipped:?}"
        );
        track
            .advance(
                &bpjs,
                kes,
                request(SanctionStep::Warning2, date!(2026 - 10 - 16)),
                Some(&gap),
                now,
            )
            .unwrap();
        track
            .advance(
                &bpjs,
                kes,
                request(SanctionStep::Fine, date!(2026 - 11 - 2)),
                Some(&gap),
                now,
            )
            .unwrap();
        track
            .advance(
                &bpjs,
                kes,
                request(SanctionStep::RequestTmp2t, date!(2026 - 11 - 3)),
                Some(&gap),
                now,
            )
            .unwrap();

        // Only a licensing office activates.
        let by_bpjs = track.advance(
            &bpjs,
            kes,
            request(SanctionStep::ActivateTmp2t, date!(2026 - 11 - 4)),
            None,
            now,
        );
        assert!(matches!(by_bpjs, Err(StepError::NotYourStep(_))));
        track
            .advance(
                &office,
                AgencyKind::LicensingOffice,
                request(SanctionStep::ActivateTmp2t, date!(2026 - 11 - 4)),
                None,
                now,
            )
            .unwrap();
        assert!(track.status.withholds());

        // Revocation waits for compliance, then the office lifts.
        let still_gap = track.advance(
            &bpjs,
            kes,
            request(SanctionStep::RequestRevocation, date!(2026 - 11 - 10)),
            Some(&gap),
            now,
        );
        assert!(matches!(still_gap, Err(StepError::Precondition(_))));
        let compliant = status(vec![Category::Compliant]);
        track
            .advance(
                &bpjs,
                kes,
                request(SanctionStep::RequestRevocation, date!(2026 - 11 - 10)),
                Some(&compliant),
                now,
            )
            .unwrap();
        assert_eq!(track.status, SanctionStatus::RevocationRequested);
        assert!(track.status.withholds());
        track
            .advance(
                &office,
                AgencyKind::LicensingOffice,
                request(SanctionStep::LiftTmp2t, date!(2026 - 11 - 11)),
                None,
                now,
            )
            .unwrap();
        assert_eq!(track.status, SanctionStatus::Lifted);
        assert!(!track.status.withholds());
        assert_eq!(track.closed_at, Some(now));
        assert_eq!(track.history.len(), 7);
    }

    #[test]
    fn a_track_needs_non_compliance() {
        let bpjs = AgencyId::parse("bpjs-kes-pekalongan").unwrap();
        let refused = SanctionTrack::open(
            subject(),
            ProgrammeGroup::Jkn,
            &bpjs,
            request(SanctionStep::Warning1, date!(2026 - 10 - 1)),
            Some(&status(vec![Category::Compliant])),
            datetime!(2026-11-20 0:00 UTC),
        );
        assert!(matches!(refused, Err(StepError::Precondition(_))));
    }
}

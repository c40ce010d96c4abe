//! Prosecutor referral cases (lifecycle C of the domain notes): a BPJS agency issues an SKK to a
//! Kejari, which alone moves the case on.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::agency::{AgencyId, AgencyKind};
use super::cases::{
    Case, CaseFacets, CaseStep, NextStep, PreconditionError, StepError, StepTaken, Subject,
    case_fields, check_party, checked_step, day_text, days_between, document_ref, effective_date,
    named_enum, note, past_date,
};
use super::compliance::{ComplianceStatus, ProgrammeGroup, Report};
use super::{ValidationError, Violations};

pub const SKK_NUMBER_MAX_CHARS: usize = 100;
pub const MAX_INSTALMENTS: usize = 120;

named_enum!(
    /// Where a referral stands.
    ReferralStatus {
        SkkIssued => "SKK_ISSUED",
        SkkReceived => "SKK_RECEIVED",
        DemandSent => "DEMAND_SENT",
        Meeting => "MEETING",
        Undertaking => "UNDERTAKING",
        ResolvedComplied => "RESOLVED_COMPLIED",
        ResolvedPaid => "RESOLVED_PAID",
        Failed => "FAILED",
        SkkReturned => "SKK_RETURNED",
    }
);

named_enum!(
    /// A step the addressed Kejari takes.
    ReferralStep {
        ReceiveSkk => "RECEIVE_SKK",
        SendDemand => "SEND_DEMAND",
        HoldMeeting => "HOLD_MEETING",
        RecordUndertaking => "RECORD_UNDERTAKING",
        ResolveComplied => "RESOLVE_COMPLIED",
        ResolvePaid => "RESOLVE_PAID",
        Fail => "FAIL",
        ReturnSkk => "RETURN_SKK",
    }
);

/// The history's first step: the BPJS agency issuing the SKK.
pub const ISSUE_SKK: &str = "ISSUE_SKK";

impl ReferralStatus {
    /// The steps allowed from here, in the order a case usually takes them.
    pub fn allowed_steps(self) -> &'static [ReferralStep] {
        use ReferralStep::*;
        match self {
            Self::SkkIssued => &[ReceiveSkk],
            Self::SkkReceived => &[SendDemand, Fail],
            Self::DemandSent => &[SendDemand, HoldMeeting, ResolveComplied, ResolvePaid, Fail],
            Self::Meeting => &[
                HoldMeeting,
                RecordUndertaking,
                ResolveComplied,
                ResolvePaid,
                Fail,
            ],
            Self::Undertaking => &[RecordUndertaking, ResolveComplied, ResolvePaid, Fail],
            Self::Failed => &[ReturnSkk],
            Self::ResolvedComplied | Self::ResolvedPaid | Self::SkkReturned => &[],
        }
    }

    pub fn is_open(self) -> bool {
        !self.allowed_steps().is_empty()
    }

    pub fn is_resolved(self) -> bool {
        matches!(self, Self::ResolvedComplied | Self::ResolvedPaid)
    }

    /// Ended without success: failed, whether or not the SKK went back yet.
    pub fn has_failed(self) -> bool {
        matches!(self, Self::Failed | Self::SkkReturned)
    }
}

impl ReferralStep {
    fn leads_to(self) -> ReferralStatus {
        match self {
            Self::ReceiveSkk => ReferralStatus::SkkReceived,
            Self::SendDemand => ReferralStatus::DemandSent,
            Self::HoldMeeting => ReferralStatus::Meeting,
            Self::RecordUndertaking => ReferralStatus::Undertaking,
            Self::ResolveComplied => ReferralStatus::ResolvedComplied,
            Self::ResolvePaid => ReferralStatus::ResolvedPaid,
            Self::Fail => ReferralStatus::Failed,
            Self::ReturnSkk => ReferralStatus::SkkReturned,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instalment {
    #[serde(with = "day_text")]
    pub due_on: Date,
    pub amount: u64,
}

/// What the referral rests on, copied when it was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub status: ComplianceStatus,
    pub reports: Vec<Report>,
}

impl Evidence {
    /// The evidence for a referral in `group`: refused unless the employer is non-compliant there.
    pub fn of(
        status: Option<ComplianceStatus>,
        group: ProgrammeGroup,
        mut reports: Vec<Report>,
    ) -> Result<Self, PreconditionError> {
        let status = status
            .filter(ComplianceStatus::is_non_compliant)
            .ok_or_else(|| {
                PreconditionError(format!(
                    "the employer has no non-compliance on record in {}; a referral needs one",
                    group.as_str()
                ))
            })?;
        reports.retain(|report| {
            status
                .derived_from
                .iter()
                .any(|source| source.report_id == report.id)
        });
        Ok(Self { status, reports })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    pub id: Uuid,
    pub skk_number: String,
    #[serde(with = "day_text")]
    pub skk_date: Date,
    pub employer_id: Uuid,
    pub region_code: String,
    pub bpjs_agency: String,
    pub kejari_agency: String,
    pub group: ProgrammeGroup,
    pub amount_claimed: u64,
    pub amount_recovered: u64,
    pub status: ReferralStatus,
    #[serde(with = "day_text::option")]
    pub due_on: Option<Date>,
    pub instalments: Vec<Instalment>,
    pub evidence: Evidence,
    pub previous_referral: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    pub history: Vec<CaseStep>,
    pub revision: i64,
}

/// A referral as asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReferral {
    pub employer_id: Uuid,
    pub kejari_agency: AgencyId,
    pub skk_number: String,
    pub skk_date: Date,
    pub amount_claimed: u64,
    pub previous_referral: Option<Uuid>,
    pub note: String,
}

/// The fields of a CreateReferral request.
pub struct ReferralRequest<'a> {
    pub employer_id: &'a str,
    pub kejari_agency_id: &'a str,
    pub skk_number: &'a str,
    pub skk_date: &'a str,
    pub amount_claimed: u64,
    pub previous_referral_id: &'a str,
    pub note: &'a str,
}

impl ReferralRequest<'_> {
    pub fn validate(&self, today: Date) -> Result<NewReferral, ValidationError> {
        let mut violations = Violations::new();
        let employer_id = violations.check("employer_id", uuid_of(self.employer_id, true));
        let kejari = violations.check("kejari_agency_id", AgencyId::parse(self.kejari_agency_id));
        let skk_number = violations.check("skk_number", skk_number(self.skk_number));
        let skk_date = violations.check("skk_date", past_date(self.skk_date, today));
        let previous = violations.check(
            "previous_referral_id",
            uuid_of(self.previous_referral_id, false),
        );
        let note = violations.check("note", note(self.note));
        match (employer_id, kejari, skk_number, skk_date, previous, note) {
            (
                Some(Some(employer_id)),
                Some(kejari_agency),
                Some(skk),
                Some(date),
                Some(prev),
                Some(note),
            ) if violations.is_empty() => Ok(NewReferral {
                employer_id,
                kejari_agency,
                skk_number: skk,
                skk_date: date,
                amount_claimed: self.amount_claimed,
                previous_referral: prev,
                note,
            }),
            _ => Err(violations.into_error()),
        }
    }
}

fn uuid_of(text: &str, required: bool) -> Result<Option<Uuid>, String> {
    let text = text.trim();
    if text.is_empty() {
        return if required {
            Err("required".into())
        } else {
            Ok(None)
        };
    }
    Uuid::parse_str(text)
        .map(Some)
        .map_err(|_| format!("`{text}` is not a UUID"))
}

fn skk_number(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty()
        || text.chars().count() > SKK_NUMBER_MAX_CHARS
        || text.chars().any(char::is_control)
    {
        return Err(format!(
            "an SKK number is 1 to {SKK_NUMBER_MAX_CHARS} characters on one line"
        ));
    }
    Ok(text.to_owned())
}

/// A step as asked for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRequest {
    pub step: ReferralStep,
    pub taken: StepTaken,
    pub due_on: Option<Date>,
    pub instalments: Vec<Instalment>,
    pub amount_recovered: u64,
}

/// The fields of an AdvanceReferral request.
pub struct StepFields<'a> {
    pub step: Option<ReferralStep>,
    pub effective_date: &'a str,
    pub due_date: &'a str,
    pub instalments: Vec<(&'a str, u64)>,
    pub amount_recovered: u64,
    pub note: &'a str,
    pub document_ref: &'a str,
}

impl StepFields<'_> {
    pub fn validate(&self, today: Date) -> Result<StepRequest, ValidationError> {
        let mut violations = Violations::new();
        let step = self.step;
        if step.is_none() {
            violations.add("step", "a step is required");
        }
        let effective_on =
            violations.check("effective_date", effective_date(self.effective_date, today));
        let due_on = if self.due_date.trim().is_empty() {
            None
        } else {
            violations.check("due_date", super::cases::any_date(self.due_date))
        };
        let note = violations.check("note", note(self.note));
        let document_ref = violations.check("document_ref", document_ref(self.document_ref));

        let mut instalments = Vec::with_capacity(self.instalments.len());
        for (index, (due, amount)) in self.instalments.iter().enumerate() {
            let field = format!("instalments[{index}]");
            if let Some(due_on) =
                violations.check(&format!("{field}.due_date"), super::cases::any_date(due))
            {
                if instalments
                    .last()
                    .is_some_and(|prev: &Instalment| prev.due_on >= due_on)
                {
                    violations.add(&format!("{field}.due_date"), "due dates must increase");
                }
                instalments.push(Instalment {
                    due_on,
                    amount: *amount,
                });
            }
            if *amount == 0 {
                violations.add(
                    &format!("{field}.amount"),
                    "an instalment is more than 0 rupiah",
                );
            }
        }
        if let (Some(step), Some(effective_on)) = (step, effective_on) {
            match step {
                ReferralStep::SendDemand if due_on.is_none() => {
                    violations.add(
                        "due_date",
                        "a demand or summons needs the date to respond by",
                    );
                }
                ReferralStep::RecordUndertaking => {
                    if self.instalments.is_empty() || self.instalments.len() > MAX_INSTALMENTS {
                        violations.add(
                            "instalments",
                            format!("an undertaking has 1 to {MAX_INSTALMENTS} instalments"),
                        );
                    } else if instalments
                        .first()
                        .is_some_and(|first| first.due_on < effective_on)
                    {
                        violations.add(
                            "instalments[0].due_date",
                            "the first instalment is due on or after the undertaking",
                        );
                    }
                }
                ReferralStep::ResolvePaid if self.amount_recovered == 0 => {
                    violations.add(
                        "amount_recovered",
                        "a payment resolution needs the amount recovered",
                    );
                }
                _ => {}
            }
            if let Some(due) = due_on
                && due <= effective_on
            {
                violations.add("due_date", "the due date falls after the step's date");
            }
        }
        violations.finish()?;
        let (step, taken) = checked_step(step, effective_on, note, document_ref)?;
        Ok(StepRequest {
            step,
            taken,
            due_on,
            instalments,
            amount_recovered: self.amount_recovered,
        })
    }
}

impl Referral {
    /// A new referral from `bpjs`, which runs `group`, resting on `evidence`.
    pub fn open(
        subject: Subject<'_>,
        new: NewReferral,
        bpjs: &AgencyId,
        group: ProgrammeGroup,
        evidence: Evidence,
        previous: Option<&Referral>,
        now: OffsetDateTime,
    ) -> Result<Self, PreconditionError> {
        if let Some(previous) = previous
            && (previous.status != ReferralStatus::SkkReturned
                || previous.employer_id != subject.employer_id)
        {
            return Err(PreconditionError(
                "a referral continues only a returned referral of the same employer".into(),
            ));
        }
        Ok(Self {
            id: subject.id,
            history: vec![CaseStep::taken(
                ISSUE_SKK,
                ReferralStatus::SkkIssued.as_str(),
                bpjs,
                now,
                StepTaken {
                    effective_on: new.skk_date,
                    note: new.note,
                    document_ref: new.skk_number.clone(),
                },
            )],
            skk_number: new.skk_number,
            skk_date: new.skk_date,
            employer_id: subject.employer_id,
            region_code: subject.region_code.to_owned(),
            bpjs_agency: bpjs.to_string(),
            kejari_agency: new.kejari_agency.to_string(),
            group,
            amount_claimed: new.amount_claimed,
            amount_recovered: 0,
            status: ReferralStatus::SkkIssued,
            due_on: None,
            instalments: Vec::new(),
            evidence,
            previous_referral: new.previous_referral,
            opened_at: now,
            closed_at: None,
            revision: 1,
        })
    }

    /// Takes `request` as `actor`, an agency of `kind`.
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
            &self.kejari_agency,
            AgencyKind::Kejaksaan,
            "the Kejari this referral is addressed to",
        )?;
        NextStep::on(
            self,
            "referral",
            self.status.as_str(),
            request.step.as_str(),
            self.status.allowed_steps().iter().map(|s| s.as_str()),
            &request.taken,
        )
        .check()?;
        let status = request.step.leads_to();
        match request.step {
            ReferralStep::RecordUndertaking => {
                self.due_on = request.instalments.first().map(|i| i.due_on);
                self.instalments = request.instalments;
            }
            ReferralStep::SendDemand | ReferralStep::HoldMeeting => self.due_on = request.due_on,
            _ => self.due_on = None,
        }
        if status.is_resolved() {
            self.amount_recovered = request.amount_recovered;
        }
        if !status.is_open() {
            self.closed_at = Some(now);
        }
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
        self.status.is_open() && self.due_on.is_some_and(|due| due < today)
    }
}

impl Case for Referral {
    case_fields!();

    fn steps(&self) -> Box<dyn Iterator<Item = &CaseStep> + '_> {
        Box::new(self.history.iter())
    }

    fn facets(&self) -> CaseFacets {
        CaseFacets {
            owner_agency: self.bpjs_agency.clone(),
            counterpart_agency: Some(self.kejari_agency.clone()),
            programme_group: Some(self.group),
            reference: Some(self.skk_number.clone()),
            status: self.status.as_str(),
            is_open: self.status.is_open(),
            opened_at: self.opened_at,
            closed_at: self.closed_at,
            due_on: self.due_on,
            amount_recovered: self.amount_recovered,
        }
    }
}

/// What the statistics need of one referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub region_code: String,
    pub status: ReferralStatus,
    pub opened_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
    pub amount_recovered: u64,
}

/// Outcomes of a set of referrals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub opened: u64,
    pub resolved_complied: u64,
    pub resolved_paid: u64,
    pub failed: u64,
    pub open: u64,
    pub success_rate_percent: f64,
    pub median_days_to_resolution: f64,
    pub amount_recovered: u64,
}

impl Stats {
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Self {
        let mut stats = Self::default();
        let mut days = Vec::new();
        for outcome in outcomes {
            stats.opened += 1;
            stats.amount_recovered += outcome.amount_recovered;
            match outcome.status {
                ReferralStatus::ResolvedComplied => stats.resolved_complied += 1,
                ReferralStatus::ResolvedPaid => stats.resolved_paid += 1,
                status if status.has_failed() => stats.failed += 1,
                _ => stats.open += 1,
            }
            if outcome.status.is_resolved()
                && let Some(closed) = outcome.closed_at
            {
                days.push(days_between(outcome.opened_at, closed));
            }
        }
        let resolved = stats.resolved_complied + stats.resolved_paid;
        if resolved + stats.failed > 0 {
            stats.success_rate_percent = resolved as f64 * 100.0 / (resolved + stats.failed) as f64;
        }
        days.sort_by(f64::total_cmp);
        stats.median_days_to_resolution = match days.len() {
            0 => 0.0,
            n if n % 2 == 1 => days[n / 2],
            n => (days[n / 2 - 1] + days[n / 2]) / 2.0,
        };
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn step(step: ReferralStep, on: Date) -> StepRequest {
        StepRequest {
            step,
            taken: StepTaken {
                effective_on: on,
                note: String::new(),
                document_ref: String::new(),
            },
            due_on: None,
            instalments: vec![],
            amount_recovered: 0,
        }
    }

    fn referral() -> Referral {
        Referral {
            id: Uuid::nil(),
            skk_number: "SKK-1".into(),
            skk_date: date!(2026 - 10 - 1),
            employer_id: Uuid::nil(),
            region_code: "33.26".into(),
            bpjs_agency: "bpjs-kes-pekalongan".into(),
            kejari_agency: "kejari-pekalongan".into(),
            group: ProgrammeGroup::Jkn,
            amount_claimed: 1,
            amount_recovered: 0,
            status: ReferralStatus::SkkIssued,
            due_on: None,
            instalments: vec![],
            evidence: Evidence {
                status: ComplianceStatus {
                    employer_id: Uuid::nil(),
                    group: ProgrammeGroup::Jkn,
                    categories: vec![crate::domain::compliance::Category::PdsTk],
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
                },
                reports: vec![],
            },
            previous_referral: None,
            opened_at: datetime!(2026-10-01 0:00 UTC),
            closed_at: None,
            history: vec![],
            revision: 1,
        }
    }

    #[test]
    fn only_the_addressed_kejari_moves_it() {
        let kejari = AgencyId::parse("kejari-pekalongan").unwrap();
        let other = AgencyId::parse("kejari-batang").unwrap();
        let now = datetime!(2026-10-02 0:00 UTC);
        let mut case = referral();
        let on = date!(2026 - 10 - 2);
        assert!(matches!(
            case.advance(
                &other,
                AgencyKind::Kejaksaan,
                step(ReferralStep::ReceiveSkk, on),
                now
            ),
            Err(StepError::NotYourStep(_))
        ));
        let bpjs = AgencyId::parse("bpjs-kes-pekalongan").unwrap();
        assert!(matches!(
            case.advance(
                &bpjs,
                AgencyKind::BpjsKesehatan,
                step(ReferralStep::ReceiveSkk, on),
                now
            ),
            Err(StepError::NotYourStep(_))
        ));
        case.advance(
            &kejari,
            AgencyKind::Kejaksaan,
            step(ReferralStep::ReceiveSkk, on),
            now,
        )
        .unwrap();
        assert_eq!(case.status, ReferralStatus::SkkReceived);
    }

    #[test]
    fn steps_cannot_be_skipped_or_taken_after_the_end() {
        let kejari = AgencyId::parse("kejari-pekalongan").unwrap();
        let now = datetime!(2026-10-02 0:00 UTC);
        let on = date!(2026 - 10 - 2);
        let mut case = referral();
        let Err(StepError::Transition(refused)) = case.advance(
            &kejari,
            AgencyKind::Kejaksaan,
            step(ReferralStep::RecordUndertaking, on),
            now,
        ) else {
            panic!("skipping to an undertaking was allowed");
        };
        assert_eq!(refused.allowed, ["RECEIVE_SKK"]);
        for next in [
            ReferralStep::ReceiveSkk,
            ReferralStep::SendDemand,
            ReferralStep::ResolveComplied,
        ] {
            let mut request = step(next, on);
            if next == ReferralStep::SendDemand {
                request.due_on = Some(date!(2026 - 10 - 20));
            }
            case.advance(&kejari, AgencyKind::Kejaksaan, request, now)
                .unwrap();
        }
        assert_eq!(case.status, ReferralStatus::ResolvedComplied);
        assert_eq!(case.closed_at, Some(now));
        assert_eq!(case.due_on, None);
        let Err(StepError::Transition(refused)) = case.advance(
            &kejari,
            AgencyKind::Kejaksaan,
            step(ReferralStep::Fail, on),
            now,
        ) else {
            panic!("a resolved referral took another step");
        };
        assert!(refused.allowed.is_empty());
    }

    #[test]
    fn stats_count_outcomes_and_the_median() {
        let at = |day: u8| datetime!(2026-01-01 0:00 UTC).replace_day(day).unwrap();
        let outcome = |status, closed: Option<u8>, amount| Outcome {
            region_code: "33.26".into(),
            status,
            opened_at: at(1),
            closed_at: closed.map(at),
            amount_recovered: amount,
        };
        let stats = Stats::of(&[
            outcome(ReferralStatus::ResolvedPaid, Some(11), 500),
            outcome(ReferralStatus::ResolvedComplied, Some(21), 0),
            outcome(ReferralStatus::SkkReturned, Some(5), 0),
            outcome(ReferralStatus::Meeting, None, 0),
        ]);
        assert_eq!(stats.opened, 4);
        assert_eq!(
            (
                stats.resolved_paid,
                stats.resolved_complied,
                stats.failed,
                stats.open
            ),
            (1, 1, 1, 1)
        );
        assert!((stats.success_rate_percent - 200.0 / 3.0).abs() < 1e-9);
        assert!((stats.median_days_to_resolution - 15.0).abs() < 1e-9);
        assert_eq!(stats.amount_recovered, 500);
        assert_eq!(Stats::of(&[]), Stats::default());
    }
}

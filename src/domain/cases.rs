//! What inspections, sanction tracks and referrals have in common: a history of steps that is only
//! ever appended to, dates as the letters carry them, the rule that a step out of order is
//! refused with the steps that would have been allowed, and the [`Case`] face every lifecycle
//! shows to the code that stores, lists and audits cases. Nothing here names a lifecycle: they
//! build on this module, and [`super::case_record`] gathers them for the store.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime, Weekday};
use uuid::Uuid;

use super::agency::{AgencyId, AgencyKind};
use super::compliance::{FIRST_YEAR, ProgrammeGroup};

pub const NOTE_MAX_CHARS: usize = 2000;
pub const DOCUMENT_REF_MAX_CHARS: usize = 200;

time::serde::format_description!(pub day_text, Date, "[year]-[month]-[day]");

/// A closed set of names as the contract spells them (`SKK_RECEIVED`): the enum, its list, its
/// name and the parse of a stored name.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            pub fn from_stored(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|value| value.as_str() == text)
            }
        }
    };
}
pub(crate) use named_enum;

/// The programme group a BPJS agency of `kind` runs, if it is one.
pub fn group_run_by(kind: AgencyKind) -> Option<ProgrammeGroup> {
    ProgrammeGroup::ALL
        .into_iter()
        .find(|group| group.operator() == kind)
}

/// What every kind of case answers alike, for storing, listing and auditing it.
pub trait Case {
    fn id(&self) -> Uuid;
    fn employer_id(&self) -> Uuid;
    /// The employer's regency or city when the case was opened.
    fn region_code(&self) -> &str;
    /// Counts the case's stored versions: 1 when opened, one more with every step.
    fn revision(&self) -> i64;
    fn set_revision(&mut self, revision: i64);
    /// The history, oldest step first.
    fn steps(&self) -> Box<dyn Iterator<Item = &CaseStep> + '_>;
    fn facets(&self) -> CaseFacets;

    /// The agencies that wrote the case: whoever opened it or took one of its steps.
    fn writers(&self) -> BTreeSet<&str> {
        self.steps().map(|step| step.actor.as_str()).collect()
    }
}

/// The [`Case`] accessors every lifecycle answers from its fields of the same names.
macro_rules! case_fields {
    () => {
        fn id(&self) -> uuid::Uuid {
            self.id
        }

        fn employer_id(&self) -> uuid::Uuid {
            self.employer_id
        }

        fn region_code(&self) -> &str {
            &self.region_code
        }

        fn revision(&self) -> i64 {
            self.revision
        }

        fn set_revision(&mut self, revision: i64) {
            self.revision = revision;
        }
    };
}
pub(crate) use case_fields;

/// What listings of cases filter and sort on, the same for every kind of case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFacets {
    /// The agency that opened the case and answers for it.
    pub owner_agency: String,
    /// The case's other party (the joint BPJS agency, the licensing office, the Kejari).
    pub counterpart_agency: Option<String>,
    pub programme_group: Option<ProgrammeGroup>,
    /// The case's own reference number, where it has one (an SKK number).
    pub reference: Option<String>,
    pub status: &'static str,
    pub is_open: bool,
    pub opened_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
    /// The day the case waits for: a response, the end of a warning, a payment.
    pub due_on: Option<Date>,
    pub amount_recovered: u64,
}

/// What a new case concerns: its id (chosen before it is stored, so the call's audit entry can
/// name it), the employer and the employer's regency or city.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub id: uuid::Uuid,
    pub employer_id: uuid::Uuid,
    pub region_code: &'a str,
}

/// One step in a case's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseStep {
    /// The step's name as the contract spells it (`SEND_DEMAND`).
    pub step: String,
    /// The status the case moved to, as the contract spells it.
    pub status_after: String,
    pub actor: String,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    #[serde(with = "day_text")]
    pub effective_on: Date,
    pub note: String,
    pub document_ref: String,
}

/// A step the lifecycle does not allow from where the case stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{attempted} is not allowed while the {case} is {status}; allowed next: {}", allowed_text(.allowed))]
pub struct TransitionError {
    pub case: &'static str,
    pub status: &'static str,
    pub attempted: &'static str,
    pub allowed: Vec<&'static str>,
}

fn allowed_text(allowed: &[&'static str]) -> String {
    if allowed.is_empty() {
        "nothing (the case is closed)".to_owned()
    } else {
        allowed.join(", ")
    }
}

/// A rule of the lifecycle, other than the order of steps, that the case does not meet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PreconditionError(pub String);

/// Why a step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Precondition(#[from] PreconditionError),
    /// The caller is not the party that takes this step.
    #[error("{0}")]
    NotYourStep(String),
    #[error(transparent)]
    Invalid(#[from] super::ValidationError),
}

impl CaseStep {
    /// The history entry of `step`, taken by `actor` at `now`, that left the case `status_after`.
    pub fn taken(
        step: &str,
        status_after: &str,
        actor: &AgencyId,
        now: OffsetDateTime,
        taken: StepTaken,
    ) -> Self {
        Self {
            step: step.to_owned(),
            status_after: status_after.to_owned(),
            actor: actor.to_string(),
            recorded_at: now,
            effective_on: taken.effective_on,
            note: taken.note,
            document_ref: taken.document_ref,
        }
    }
}

/// What a caller says of every step it takes, checked: when it took effect and the letter or
/// note that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepTaken {
    pub effective_on: Date,
    pub note: String,
    pub document_ref: String,
}

/// Refuses a step by any agency but `party`, of kind `kind`: the one party (`role`) that takes
/// every step of the case.
pub fn check_party(
    actor: &AgencyId,
    actor_kind: AgencyKind,
    party: &str,
    kind: AgencyKind,
    role: &str,
) -> Result<(), StepError> {
    if actor_kind == kind && actor.as_str() == party {
        Ok(())
    } else {
        Err(StepError::NotYourStep(format!(
            "only {party}, {role}, takes its steps"
        )))
    }
}

/// The step asked for and what is said of it, once validation found nothing wrong: each part
/// is `None` only where a violation was recorded.
pub fn checked_step<S>(
    step: Option<S>,
    effective_on: Option<Date>,
    note: Option<String>,
    document_ref: Option<String>,
) -> Result<(S, StepTaken), super::ValidationError> {
    match (step, effective_on, note, document_ref) {
        (Some(step), Some(effective_on), Some(note), Some(document_ref)) => Ok((
            step,
            StepTaken {
                effective_on,
                note,
                document_ref,
            },
        )),
        _ => Err(super::ValidationError::single(
            "step",
            "the step could not be read",
        )),
    }
}

/// What a step is, for the checks every step passes first.
pub struct NextStep {
    pub case: &'static str,
    pub status: &'static str,
    pub attempted: &'static str,
    /// The steps the lifecycle allows from `status`.
    pub allowed: Vec<&'static str>,
    /// The date of the case's latest step.
    pub previous: Option<Date>,
    pub on: Date,
}

impl NextStep {
    /// The step `attempted` on `case` (named `name` in refusals), which stands at `status` and
    /// allows `allowed` next.
    pub fn on(
        case: &dyn Case,
        name: &'static str,
        status: &'static str,
        attempted: &'static str,
        allowed: impl IntoIterator<Item = &'static str>,
        taken: &StepTaken,
    ) -> Self {
        Self {
            case: name,
            status,
            attempted,
            allowed: allowed.into_iter().collect(),
            previous: case.steps().last().map(|last| last.effective_on),
            on: taken.effective_on,
        }
    }

    /// Refuses a step the lifecycle does not allow now, or one dated before the previous step.
    pub fn check(self) -> Result<(), StepError> {
        if !self.allowed.contains(&self.attempted) {
            return Err(TransitionError {
                case: self.case,
                status: self.status,
                attempted: self.attempted,
                allowed: self.allowed,
            }
            .into());
        }
        if let Some(previous) = self.previous
            && self.on < previous
        {
            return Err(PreconditionError(format!(
                "the step's date {} is before the previous step's ({previous})",
                self.on
            ))
            .into());
        }
        Ok(())
    }
}

/// Parses a `YYYY-MM-DD` date that may not lie after `today` nor before the first year the
/// service accepts.
pub fn past_date(text: &str, today: Date) -> Result<Date, String> {
    let date = any_date(text)?;
    if date > today {
        return Err(format!("{date} is in the future"));
    }
    Ok(date)
}

/// Parses a `YYYY-MM-DD` date from the first accepted year on.
pub fn any_date(text: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(text.trim(), &format)
        .map_err(|_| format!("`{text}` is not a date written YYYY-MM-DD"))?;
    if date.year() < FIRST_YEAR {
        return Err(format!("dates before {FIRST_YEAR} are not accepted"));
    }
    Ok(date)
}

/// The date a step took effect: the one given, or today when none was.
pub fn effective_date(text: &str, today: Date) -> Result<Date, String> {
    if text.trim().is_empty() {
        Ok(today)
    } else {
        past_date(text, today)
    }
}

pub fn note(text: &str) -> Result<String, String> {
    bounded_text(text, NOTE_MAX_CHARS, false)
}

pub fn document_ref(text: &str) -> Result<String, String> {
    bounded_text(text, DOCUMENT_REF_MAX_CHARS, true)
}

fn bounded_text(text: &str, max: usize, one_line: bool) -> Result<String, String> {
    let text = text.trim();
    if text.chars().count() > max {
        return Err(format!("at most {max} characters"));
    }
    let bad = |c: char| c.is_control() && (one_line || !matches!(c, '\n' | '\t'));
    if text.chars().any(bad) {
        return Err("control characters are not allowed".into());
    }
    Ok(text.to_owned())
}

/// The last day of a period of `working_days` Monday-to-Friday days that starts the day after
/// `start`. National holidays are not counted out: they differ each year, and a period that ends
/// a day or two early only lets the next letter be dated sooner than the strictest reading.
pub fn add_working_days(start: Date, working_days: u32) -> Date {
    let mut day = start;
    let mut left = working_days;
    while left > 0 {
        day += Duration::days(1);
        if !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) {
            left -= 1;
        }
    }
    day
}

/// Days between two instants, as a fraction (for medians of durations).
pub fn days_between(start: OffsetDateTime, end: OffsetDateTime) -> f64 {
    (end - start).as_seconds_f64() / 86_400.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn working_days_skip_weekends() {
        // Friday 2026-11-20 + 1 working day is Monday 2026-11-23.
        assert_eq!(
            add_working_days(date!(2026 - 11 - 20), 1),
            date!(2026 - 11 - 23)
        );
        // Ten working days are two calendar weeks from a weekday.
        assert_eq!(
            add_working_days(date!(2026 - 11 - 2), 10),
            date!(2026 - 11 - 16)
        );
        assert_eq!(
            add_working_days(date!(2026 - 11 - 2), 0),
            date!(2026 - 11 - 2)
        );
    }

    #[test]
    fn dates_are_checked() {
        let today = date!(2026 - 11 - 22);
        assert_eq!(past_date("2026-11-22", today), Ok(today));
        assert!(past_date("2026-11-23", today).is_err());
        assert!(past_date("2013-12-31", today).is_err());
        assert!(past_date("22-11-2026", today).is_err());
        assert_eq!(effective_date("", today), Ok(today));
        assert!(any_date("2030-01-01").is_ok());
    }

    #[test]
    fn texts_are_bounded() {
        assert_eq!(
            note("  line one\nline two "),
            Ok("line one\nline two".into())
        );
        assert!(note(&"x".repeat(NOTE_MAX_CHARS + 1)).is_err());
        assert!(document_ref("B/12\n3").is_err());
        assert_eq!(document_ref("B/123/2026"), Ok("B/123/2026".into()));
    }

    #[test]
    fn a_refused_step_names_the_allowed_ones() {
        let error = TransitionError {
            case: "referral",
            status: "SKK_RECEIVED",
            attempted: "RECORD_UNDERTAKING",
            allowed: vec!["SEND_DEMAND", "FAIL"],
        };
        assert_eq!(
            error.to_string(),
            "RECORD_UNDERTAKING is not allowed while the referral is SKK_RECEIVED; allowed next: \
             SEND_DEMAND, FAIL"
        );
    }
}

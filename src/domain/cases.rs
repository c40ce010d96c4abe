//! What inspections, sanction tracks and referrals have in common: a history of steps that is only
//! ever appended to, dates as the letters carry them, and the rule that a step out of order is
//! refused with the steps that would have been allowed.

use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime, Weekday};

use super::agency::AgencyKind;
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

/// A case of any kind, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaseRecord {
    Inspection(super::inspection::Inspection),
    Sanction(super::sanction::SanctionTrack),
    Referral(super::referral::Referral),
}

named_enum!(
    /// The kinds of case.
    CaseKind {
        Inspection => "inspection",
        Sanction => "sanction",
        Referral => "referral",
    }
);

impl CaseRecord {
    pub fn kind(&self) -> CaseKind {
        match self {
            Self::Inspection(_) => CaseKind::Inspection,
            Self::Sanction(_) => CaseKind::Sanction,
            Self::Referral(_) => CaseKind::Referral,
        }
    }

    pub fn id(&self) -> uuid::Uuid {
        match self {
            Self::Inspection(case) => case.id,
            Self::Sanction(case) => case.id,
            Self::Referral(case) => case.id,
        }
    }

    pub fn employer_id(&self) -> uuid::Uuid {
        match self {
            Self::Inspection(case) => case.employer_id,
            Self::Sanction(case) => case.employer_id,
            Self::Referral(case) => case.employer_id,
        }
    }

    /// The agencies that wrote the case: whoever opened it or took one of its steps.
    pub fn writers(&self) -> std::collections::BTreeSet<&str> {
        match self {
            Self::Inspection(case) => case.history.iter().map(|s| s.actor.as_str()).collect(),
            Self::Sanction(case) => case.history.iter().map(|r| r.step.actor.as_str()).collect(),
            Self::Referral(case) => case.history.iter().map(|s| s.actor.as_str()).collect(),
        }
    }

    pub fn revision(&self) -> i64 {
        match self {
            Self::Inspection(case) => case.revision,
            Self::Sanction(case) => case.revision,
            Self::Referral(case) => case.revision,
        }
    }

    pub fn set_revision(&mut self, revision: i64) {
        match self {
            Self::Inspection(case) => case.revision = revision,
            Self::Sanction(case) => case.revision = revision,
            Self::Referral(case) => case.revision = revision,
        }
    }
}

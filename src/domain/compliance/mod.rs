//! Compliance reports and the rules that turn them into a compliance status: the reporting
//! month and programme groups here, what a report is and how a submission is checked in
//! [`report`], how statuses are computed and ranked in [`status`].
//!
//! The rules are Sinergi's own (no official codes exist) and versioned by [`RULES_VERSION`]:
//! every stored status says which version computed it.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::agency::AgencyKind;
use super::employer::SizeClass;
use super::scope::Programme;

mod report;
mod status;

pub use report::*;
pub use status::*;

pub const RULES_VERSION: &str = "2026.1";
/// Counts above this are not a real employer's.
pub const MAX_COUNT: u32 = 10_000_000;
pub const MAX_ARREARS_MONTHS: u32 = 600;
pub const MAX_WAGE_BANDS: usize = 50;
pub const DOCUMENT_REFERENCE_MAX_CHARS: usize = 100;
/// Declared wages this far below the workforce report's are PDS_UPAH.
const WAGE_TOLERANCE_PERCENT: u64 = 5;
/// The earliest period accepted: Sinergi's data begins with the JKN era.
pub const FIRST_YEAR: i32 = 2014;

/// The two programme groups, one per BPJS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProgrammeGroup {
    Jkn,
    Ketenagakerjaan,
}

impl ProgrammeGroup {
    pub const ALL: [ProgrammeGroup; 2] = [Self::Jkn, Self::Ketenagakerjaan];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jkn => "jkn",
            Self::Ketenagakerjaan => "ketenagakerjaan",
        }
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|group| group.as_str() == text)
    }

    pub fn of(programme: Programme) -> Self {
        match programme {
            Programme::Jkn => Self::Jkn,
            _ => Self::Ketenagakerjaan,
        }
    }

    /// The agency kind that runs the group and alone reports registrations for it.
    pub fn operator(self) -> AgencyKind {
        match self {
            Self::Jkn => AgencyKind::BpjsKesehatan,
            Self::Ketenagakerjaan => AgencyKind::BpjsKetenagakerjaan,
        }
    }

    /// Programmes an employer of this size must be enrolled in (Perpres 82/2018 for JKN,
    /// Perpres 109/2013 art. 6 for BPJS Ketenagakerjaan); an unknown size is held to the
    /// strictest rule.
    pub fn mandatory(self, size: Option<SizeClass>) -> &'static [Programme] {
        use Programme::*;
        match (self, size) {
            (Self::Jkn, _) => &[Jkn],
            (Self::Ketenagakerjaan, Some(SizeClass::Micro)) => &[Jkk, Jkm],
            (Self::Ketenagakerjaan, Some(SizeClass::Small)) => &[Jkk, Jkm, Jht],
            (Self::Ketenagakerjaan, _) => &[Jkk, Jkm, Jht, Jp],
        }
    }
}

/// A reporting month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Period {
    pub year: i32,
    pub month: u8,
}

impl Period {
    /// A month from `FIRST_YEAR` up to the current month.
    pub fn new(year: i32, month: i32, today: Date) -> Result<Self, String> {
        if !(1..=12).contains(&month) {
            return Err(format!("month {month} is not 1 to 12"));
        }
        if year < FIRST_YEAR {
            return Err(format!("periods before {FIRST_YEAR} are not accepted"));
        }
        let period = Self {
            year,
            month: month as u8,
        };
        if period > Self::of(today) {
            return Err(format!("{period} is in the future"));
        }
        Ok(period)
    }

    pub fn of(date: Date) -> Self {
        Self {
            year: date.year(),
            month: date.month() as u8,
        }
    }

    /// `YYYY-MM`, which sorts like the periods.
    pub fn parse_stored(text: &str) -> Option<Self> {
        let (year, month) = text.split_once('-')?;
        Some(Self {
            year: year.parse().ok()?,
            month: month.parse().ok().filter(|m| (1..=12).contains(m))?,
        })
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Today's date in Indonesia's westernmost zone (WIB, UTC+7), where periods are counted.
pub fn today_wib(now: OffsetDateTime) -> Date {
    now.to_offset(time::macros::offset!(+7)).date()
}

//! Reports: their kinds and figures, how a caller's submission is checked field by field, and
//! the report as stored, one version of a series.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{
    DOCUMENT_REFERENCE_MAX_CHARS, FIRST_YEAR, MAX_ARREARS_MONTHS, MAX_COUNT, MAX_WAGE_BANDS,
    Period, ProgrammeGroup,
};
use crate::domain::agency::AgencyKind;
use crate::domain::identifiers::Npwp;
use crate::domain::scope::Programme;
use crate::domain::validation::{ValidationError, Violations};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReportKind {
    Workforce,
    Registration,
    Layoff,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Workforce => "workforce",
            Self::Registration => "registration",
            Self::Layoff => "layoff",
        }
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        [Self::Workforce, Self::Registration, Self::Layoff]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WageBand {
    pub min_monthly_wage: u64,
    /// `None`: no upper bound.
    pub max_monthly_wage: Option<u64>,
    pub workers: u32,
}

/// The figures of a report, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Figures {
    Workforce {
        total_workers: u32,
        total_wage_bill: Option<u64>,
        wage_bands: Vec<WageBand>,
    },
    Registration {
        group: ProgrammeGroup,
        registered_workers: u32,
        enrolled: Vec<Programme>,
        reported_wage_total: u64,
        arrears_amount: u64,
        arrears_months: u32,
    },
    Layoff {
        date: Date,
        workers: u32,
        document_reference: String,
    },
}

impl Figures {
    pub fn kind(&self) -> ReportKind {
        match self {
            Self::Workforce { .. } => ReportKind::Workforce,
            Self::Registration { .. } => ReportKind::Registration,
            Self::Layoff { .. } => ReportKind::Layoff,
        }
    }

    pub fn group(&self) -> Option<ProgrammeGroup> {
        match self {
            Self::Registration { group, .. } => Some(*group),
            _ => None,
        }
    }

    /// The agency kind that owns reports like this one.
    pub fn owner(&self) -> AgencyKind {
        match self {
            Self::Workforce { .. } | Self::Layoff { .. } => AgencyKind::Disnaker,
            Self::Registration { group, .. } => group.operator(),
        }
    }

    /// Workers counted by the report (total, registered or laid off).
    pub fn workers(&self) -> u32 {
        match self {
            Self::Workforce { total_workers, .. } => *total_workers,
            Self::Registration {
                registered_workers, ..
            } => *registered_workers,
            Self::Layoff { workers, .. } => *workers,
        }
    }

    /// The monthly wage bill of a workforce report: as given, or the sum of its bands' lower
    /// bounds (so a wage comparison errs in the employer's favour).
    pub(super) fn wage_bill(&self) -> Option<u64> {
        match self {
            Self::Workforce {
                total_wage_bill: Some(bill),
                ..
            } => Some(*bill),
            Self::Workforce { wage_bands, .. } if !wage_bands.is_empty() => Some(
                wage_bands
                    .iter()
                    .map(|band| {
                        band.min_monthly_wage
                            .saturating_mul(u64::from(band.workers))
                    })
                    .fold(0u64, u64::saturating_add),
            ),
            _ => None,
        }
    }
}

/// How a report names its employer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EmployerRef {
    Id(Uuid),
    Npwp(Npwp),
}

/// A valid report, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    pub employer: EmployerRef,
    pub period: Period,
    pub figures: Figures,
}

impl NewReport {
    /// Reports of one series are versions of each other: same employer, kind, group and
    /// period, or for layoffs the same document.
    pub fn series(&self) -> String {
        series_of(self.period, &self.figures)
    }
}

/// The series of a programme group's registration reports for a period: what coverage looks up
/// for each workforce report.
pub fn registration_series(group: ProgrammeGroup, period: Period) -> String {
    format!("registration/{}/{period}", group.as_str())
}

fn series_of(period: Period, figures: &Figures) -> String {
    match figures {
        Figures::Workforce { .. } => format!("workforce/{period}"),
        Figures::Registration { group, .. } => registration_series(*group, period),
        Figures::Layoff {
            document_reference, ..
        } => format!("layoff/{document_reference}"),
    }
}

/// The figures a caller sent, unchecked; enums already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FiguresSubmission {
    Workforce {
        total_workers: u32,
        total_wage_bill: Option<u64>,
        wage_bands: Vec<(u64, u64, u32)>,
    },
    Registration {
        group: Option<ProgrammeGroup>,
        registered_workers: u32,
        enrolled: Vec<Option<Programme>>,
        reported_wage_total: u64,
        arrears_amount: u64,
        arrears_months: u32,
    },
    Layoff {
        date: String,
        workers: u32,
        document_reference: String,
    },
}

/// A report as a caller submits it, before any rule is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSubmission {
    pub employer_id: Option<String>,
    pub employer_npwp: Option<String>,
    pub period: Option<(i32, i32)>,
    pub figures: Option<FiguresSubmission>,
}

fn count(violations: &mut Violations, field: &str, value: u32) -> u32 {
    if value > MAX_COUNT {
        violations.add(field, format!("{value} is more than {MAX_COUNT}"));
    }
    value
}

impl ReportSubmission {
    /// Checks every field as of `today`; violations are reported under `prefix`.
    pub fn validate(self, prefix: &str, today: Date) -> Result<NewReport, ValidationError> {
        let mut violations = Violations::new();
        let path = |field: &str| format!("{prefix}.{field}");

        let employer = match (&self.employer_id, &self.employer_npwp) {
            (Some(id), _) => violations.check(
                &path("employer_id"),
                Uuid::parse_str(id.trim())
                    .map(EmployerRef::Id)
                    .map_err(|_| "not an employer id (a UUID)".to_owned()),
            ),
            (None, Some(npwp)) => violations.check(
                &path("employer_npwp"),
                Npwp::parse(npwp).map(EmployerRef::Npwp),
            ),
            (None, None) => {
                violations.add(&path("employer_id"), "name the employer by id or NPWP");
                None
            }
        };

        // A layoff's month is that of its date, so a layoff never needs `period`.
        let is_layoff = matches!(self.figures, Some(FiguresSubmission::Layoff { .. }));
        let figures = match self.figures {
            None => {
                violations.add(
                    &path("figures"),
                    "give workforce, registration or layoff figures",
                );
                None
            }
            Some(FiguresSubmission::Workforce {
                total_workers,
                total_wage_bill,
                wage_bands,
            }) => {
                let total = count(
                    &mut violations,
                    &path("workforce.total_workers"),
                    total_workers,
                );
                if wage_bands.len() > MAX_WAGE_BANDS {
                    violations.add(
                        &path("workforce.wage_bands"),
                        format!("at most {MAX_WAGE_BANDS} bands"),
                    );
                }
                let mut banded: u64 = 0;
                let mut bands = Vec::with_capacity(wage_bands.len());
                for (index, (min, max, workers)) in wage_bands.into_iter().enumerate() {
                    let band = format!("{}[{index}]", path("workforce.wage_bands"));
                    if max != 0 && max < min {
                        violations.add(
                            &format!("{band}.max_monthly_wage"),
                            "below min_monthly_wage",
                        );
                    }
                    count(&mut violations, &format!("{band}.workers"), workers);
                    banded += u64::from(workers);
                    bands.push(WageBand {
                        min_monthly_wage: min,
                        max_monthly_wage: Some(max).filter(|max| *max != 0),
                        workers,
                    });
                }
                if banded > u64::from(total) {
                    violations.add(
                        &path("workforce.wage_bands"),
                        format!("the bands hold {banded} workers, more than total_workers"),
                    );
                }
                if total > 0 && total_wage_bill.is_none() && bands.is_empty() {
                    violations.add(
                        &path("workforce.total_wage_bill"),
                        "give the wage bill or the wage bands",
                    );
                }
                Some(Figures::Workforce {
                    total_workers: total,
                    total_wage_bill,
                    wage_bands: bands,
                })
            }
            Some(FiguresSubmission::Registration {
                group,
                registered_workers,
                enrolled,
                reported_wage_total,
                arrears_amount,
                arrears_months,
            }) => {
                if group.is_none() {
                    violations.add(
                        &path("registration.programme_group"),
                        "JKN or KETENAGAKERJAAN is required",
                    );
                }
                count(
                    &mut violations,
                    &path("registration.registered_workers"),
                    registered_workers,
                );
                let mut programmes: Vec<Programme> = Vec::new();
                for (index, programme) in enrolled.into_iter().enumerate() {
                    let field = format!("{}[{index}]", path("registration.enrolled_programmes"));
                    match (programme, group) {
                        (None, _) => violations.add(&field, "not a programme"),
                        (Some(programme), Some(group))
                            if ProgrammeGroup::of(programme) != group =>
                        {
                            violations.add(
                                &field,
                                format!(
                                    "{} is not a programme of the {} group",
                                    programme.as_str(),
                                    group.as_str()
                                ),
                            );
                        }
                        (Some(programme), _) if !programmes.contains(&programme) => {
                            programmes.push(programme);
                        }
                        _ => {}
                    }
                }
                programmes.sort();
                if arrears_months > MAX_ARREARS_MONTHS {
                    violations.add(
                        &path("registration.arrears_months"),
                        format!("more than {MAX_ARREARS_MONTHS} months"),
                    );
                }
                group.map(|group| Figures::Registration {
                    group,
                    registered_workers,
                    enrolled: programmes,
                    reported_wage_total,
                    arrears_amount,
                    arrears_months,
                })
            }
            Some(FiguresSubmission::Layoff {
                date,
                workers,
                document_reference,
            }) => {
                let date = violations.check(&path("layoff.layoff_date"), parse_date(&date, today));
                if workers == 0 {
                    violations.add(&path("layoff.workers"), "at least one worker");
                }
                count(&mut violations, &path("layoff.workers"), workers);
                let reference = document_reference.trim().to_owned();
                if reference.is_empty()
                    || reference.chars().count() > DOCUMENT_REFERENCE_MAX_CHARS
                    || reference.chars().any(char::is_control)
                {
                    violations.add(
                        &path("layoff.document_reference"),
                        format!(
                            "1 to {DOCUMENT_REFERENCE_MAX_CHARS} characters without control \
                             characters"
                        ),
                    );
                }
                date.map(|date| Figures::Layoff {
                    date,
                    workers,
                    document_reference: reference,
                })
            }
        };

        let period = match (&figures, self.period) {
            (Some(Figures::Layoff { date, .. }), _) => Some(Period::of(*date)),
            // The layoff's date is wrong, and named as such; the period is not asked for.
            _ if is_layoff => None,
            (_, None) => {
                violations.add(&path("period"), "the month reported on is required");
                None
            }
            (_, Some((year, month))) => {
                violations.check(&path("period"), Period::new(year, month, today))
            }
        };

        match (employer, period, figures) {
            (Some(employer), Some(period), Some(figures)) if violations.is_empty() => {
                Ok(NewReport {
                    employer,
                    period,
                    figures,
                })
            }
            _ => Err(violations.into_error()),
        }
    }
}

fn parse_date(text: &str, today: Date) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(text.trim(), &format)
        .map_err(|_| format!("`{text}` is not a date written YYYY-MM-DD"))?;
    if date > today {
        return Err(format!("{date} is in the future"));
    }
    if date.year() < FIRST_YEAR {
        return Err(format!("dates before {FIRST_YEAR} are not accepted"));
    }
    Ok(date)
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub id: Uuid,
    pub employer_id: Uuid,
    pub period: Period,
    pub version: u32,
    pub supersedes: Option<Uuid>,
    pub superseded: bool,
    pub source_agency: String,
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    pub figures: Figures,
}

impl Report {
    pub fn series(&self) -> String {
        series_of(self.period, &self.figures)
    }

    pub(super) fn reference(&self) -> ReportReference {
        ReportReference {
            report_id: self.id,
            kind: self.figures.kind(),
            source_agency: self.source_agency.clone(),
            period: self.period,
            version: self.version,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportReference {
    pub report_id: Uuid,
    pub kind: ReportKind,
    pub source_agency: String,
    pub period: Period,
    pub version: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submissions_are_checked_field_by_field() {
        let today = time::macros::date!(2026 - 11 - 20);
        let submission = ReportSubmission {
            employer_id: Some(Uuid::nil().to_string()),
            employer_npwp: None,
            period: Some((2026, 12)),
            figures: Some(FiguresSubmission::Registration {
                group: Some(ProgrammeGroup::Jkn),
                registered_workers: 20_000_000,
                enrolled: vec![Some(Programme::Jht)],
                reported_wage_total: 0,
                arrears_amount: 0,
                arrears_months: 0,
            }),
        };
        let error = submission.validate("report", today).unwrap_err();
        let fields: Vec<&str> = error.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "report.registration.registered_workers",
                "report.registration.enrolled_programmes[0]",
                "report.period"
            ]
        );
        assert!(Period::new(2026, 13, today).is_err());
        assert!(Period::new(2026, 11, today).is_ok());
    }

    #[test]
    fn a_layoff_with_a_bad_date_names_the_date_and_not_the_period() {
        let today = time::macros::date!(2026 - 11 - 20);
        for date in ["2026-13-01", "kemarin", "2027-01-05"] {
            let submission = ReportSubmission {
                employer_id: Some(Uuid::nil().to_string()),
                employer_npwp: None,
                period: None,
                figures: Some(FiguresSubmission::Layoff {
                    date: date.into(),
                    workers: 12,
                    document_reference: "PHK/2026/11/007".into(),
                }),
            };
            let error = submission.validate("report", today).unwrap_err();
            let fields: Vec<&str> = error.violations.iter().map(|v| v.field.as_str()).collect();
            assert_eq!(fields, ["report.layoff.layoff_date"], "{date}");
        }
    }
}

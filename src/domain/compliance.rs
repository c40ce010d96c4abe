//! Compliance reports and the rules that turn them into a compliance status.
//!
//! The rules are Sinergi's own (no official codes exist) and versioned by [`RULES_VERSION`]:
//! every stored status says which version computed it.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::agency::AgencyKind;
use super::employer::SizeClass;
use super::identifiers::Npwp;
use super::scope::Programme;
use super::validation::{ValidationError, Violations};

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
    fn wage_bill(&self) -> Option<u64> {
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

    fn reference(&self) -> ReportReference {
        ReportReference {
            report_id: self.id,
            kind: self.figures.kind(),
            source_agency: self.source_agency.clone(),
            period: self.period,
            version: self.version,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Category {
    Pwbd,
    PdsTk,
    PdsUpah,
    PdsProgram,
    Tunggakan,
    Compliant,
    Unknown,
}

impl Category {
    pub const NON_COMPLIANT: [Category; 5] = [
        Self::Pwbd,
        Self::PdsTk,
        Self::PdsUpah,
        Self::PdsProgram,
        Self::Tunggakan,
    ];

    /// The category's bit in the stored mask that `ListNonCompliant` filters on.
    pub fn bit(self) -> i64 {
        1 << (self as i64)
    }

    pub fn is_non_compliance(self) -> bool {
        Self::NON_COMPLIANT.contains(&self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StatusFlag {
    RegisteredExceedsReported,
    PeriodsDiffer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportReference {
    pub report_id: Uuid,
    pub kind: ReportKind,
    pub source_agency: String,
    pub period: Period,
    pub version: u32,
}

/// What the rules need to know of the employer itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmployerFacts {
    pub size_class: Option<SizeClass>,
}

/// The computed compliance of one employer for one programme group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceStatus {
    pub employer_id: Uuid,
    pub group: ProgrammeGroup,
    pub categories: Vec<Category>,
    pub workers_reported: Option<u32>,
    pub workers_registered: Option<u32>,
    pub gap: u32,
    pub arrears_amount: u64,
    pub arrears_months: u32,
    pub missing_programmes: Vec<Programme>,
    pub priority_score: u64,
    pub derived_from: Vec<ReportReference>,
    pub flags: Vec<StatusFlag>,
    pub rules_version: String,
    #[serde(with = "time::serde::rfc3339")]
    pub computed_at: OffsetDateTime,
}

impl ComplianceStatus {
    pub fn is_non_compliant(&self) -> bool {
        self.categories.iter().any(|c| c.is_non_compliance())
    }

    pub fn category_mask(&self) -> i64 {
        self.categories.iter().map(|c| c.bit()).sum()
    }

    /// True when `other` says the same about the employer (ignoring when it was computed).
    pub fn same_finding(&self, other: &ComplianceStatus) -> bool {
        Self {
            computed_at: other.computed_at,
            ..self.clone()
        } == *other
    }
}

fn size_weight(size: Option<SizeClass>) -> u64 {
    match size {
        Some(SizeClass::Micro) => 1,
        Some(SizeClass::Small) | None => 2,
        Some(SizeClass::Medium) => 3,
        Some(SizeClass::Large) => 4,
    }
}

/// The average monthly wage in quarters of Rp 2,500,000, clamped to 4..=16 (4 when unknown).
fn wage_weight(average_wage: Option<u64>) -> u64 {
    average_wage.map_or(4, |wage| (wage.saturating_mul(4) / 2_500_000).clamp(4, 16))
}

/// Computes the status of one employer for `group` from its current reports (any kinds and
/// groups; superseded ones are ignored).
pub fn compute_status(
    employer_id: Uuid,
    group: ProgrammeGroup,
    employer: EmployerFacts,
    reports: &[Report],
    now: OffsetDateTime,
) -> ComplianceStatus {
    let current = || reports.iter().filter(|r| !r.superseded);
    let latest = |kind: ReportKind| {
        current()
            .filter(|r| r.figures.kind() == kind)
            .filter(|r| kind != ReportKind::Registration || r.figures.group() == Some(group))
            .max_by_key(|r| (r.period, r.version))
    };
    let workforce = latest(ReportKind::Workforce);
    let registration = latest(ReportKind::Registration);

    let mut derived_from = Vec::new();
    let mut categories = Vec::new();
    let mut flags = Vec::new();

    // Workers laid off after the workforce report's month have left since it was made.
    let workers_reported = workforce.map(|workforce| {
        derived_from.push(workforce.reference());
        let mut laid_off: u32 = 0;
        for layoff in current()
            .filter(|r| r.figures.kind() == ReportKind::Layoff && r.period > workforce.period)
        {
            derived_from.push(layoff.reference());
            laid_off = laid_off.saturating_add(layoff.figures.workers());
        }
        workforce.figures.workers().saturating_sub(laid_off)
    });
    let average_wage = workforce.and_then(|w| {
        let total = w.figures.workers();
        w.figures
            .wage_bill()
            .filter(|_| total > 0)
            .map(|bill| bill / u64::from(total))
    });

    let mut gap = 0;
    let mut arrears_amount = 0;
    let mut arrears_months = 0;
    let mut missing_programmes = Vec::new();
    let mut workers_registered = None;
    if let Some(report) = registration {
        derived_from.push(report.reference());
        if let Figures::Registration {
            registered_workers,
            enrolled,
            reported_wage_total,
            arrears_amount: amount,
            arrears_months: months,
            ..
        } = &report.figures
        {
            workers_registered = Some(*registered_workers);
            arrears_amount = *amount;
            arrears_months = *months;
            if *amount > 0 || *months > 0 {
                categories.push(Category::Tunggakan);
            }
            let unregistered =
                *registered_workers == 0 && workers_reported.is_some_and(|reported| reported > 0);
            if !unregistered {
                missing_programmes = group
                    .mandatory(employer.size_class)
                    .iter()
                    .filter(|p| !enrolled.contains(p))
                    .copied()
                    .collect();
                if !missing_programmes.is_empty() {
                    categories.push(Category::PdsProgram);
                }
            }
            if let Some(reported) = workers_reported {
                if unregistered {
                    categories.push(Category::Pwbd);
                    gap = reported;
                } else if *registered_workers < reported {
                    categories.push(Category::PdsTk);
                    gap = reported - registered_workers;
                } else if *registered_workers > reported {
                    flags.push(StatusFlag::RegisteredExceedsReported);
                }
                if let Some(actual) = average_wage
                    && *registered_workers > 0
                {
                    let declared = reported_wage_total / u64::from(*registered_workers);
                    if declared.saturating_mul(100)
                        < actual.saturating_mul(100 - WAGE_TOLERANCE_PERCENT)
                    {
                        categories.push(Category::PdsUpah);
                    }
                }
                if workforce.is_some_and(|w| w.period != report.period) {
                    flags.push(StatusFlag::PeriodsDiffer);
                }
            }
        }
    }
    if workforce.is_none() || registration.is_none() {
        categories.push(Category::Unknown);
    } else if categories.is_empty() {
        categories.push(Category::Compliant);
    }
    categories.sort();

    let mut base = u64::from(gap) + 10 * u64::from(arrears_months);
    let registered = u64::from(workers_registered.unwrap_or(0));
    if categories.contains(&Category::PdsProgram) {
        base += registered / 2;
    }
    if categories.contains(&Category::PdsUpah) {
        base += registered / 4;
    }
    let priority_score = if categories.iter().any(|c| c.is_non_compliance()) {
        base * size_weight(employer.size_class) * wage_weight(average_wage)
    } else {
        0
    };

    ComplianceStatus {
        employer_id,
        group,
        categories,
        workers_reported,
        workers_registered,
        gap,
        arrears_amount,
        arrears_months,
        missing_programmes,
        priority_score,
        derived_from,
        flags,
        rules_version: RULES_VERSION.to_owned(),
        computed_at: now,
    }
}

/// A validated `ListNonCompliant` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonCompliantQuery {
    pub group: ProgrammeGroup,
    pub region: Option<super::region::RegionCode>,
    /// Regions the caller's grant limits the listing to; `None`: no limit.
    pub within: Option<Vec<super::region::RegionCode>>,
    /// Bit mask of categories, any of which must hold.
    pub categories: i64,
    pub min_gap: u32,
    pub size_class: Option<SizeClass>,
    pub order: NonCompliantOrder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonCompliantOrder {
    Gap,
    Arrears,
    Priority,
}

impl NonCompliantOrder {
    /// The stored column the order sorts by.
    pub fn column(self) -> &'static str {
        match self {
            Self::Gap => "gap",
            Self::Arrears => "arrears_amount",
            Self::Priority => "priority",
        }
    }
}

impl NonCompliantQuery {
    /// Binds page tokens to the query; `within` is left out, as in the registry's listings.
    pub fn fingerprint(&self) -> String {
        format!(
            "noncompliant|{}|{}|{}|{}|{}|{}",
            self.group.as_str(),
            self.region.as_ref().map_or("", |r| r.as_str()),
            self.categories,
            self.min_gap,
            self.size_class.map_or("", SizeClass::as_str),
            self.order.column(),
        )
    }
}

/// Where a `ListNonCompliant` page resumes: the sort key and employer id of the last entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonCompliantCursor {
    pub key: i64,
    pub employer_id: Uuid,
}

/// Today's date in Indonesia's westernmost zone (WIB, UTC+7), where periods are counted.
pub fn today_wib(now: OffsetDateTime) -> Date {
    now.to_offset(time::macros::offset!(+7)).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-20 10:00 UTC)
    }

    fn report(period: (i32, u8), version: u32, figures: Figures) -> Report {
        Report {
            id: Uuid::now_v7(),
            employer_id: Uuid::nil(),
            period: Period {
                year: period.0,
                month: period.1,
            },
            version,
            supersedes: None,
            superseded: false,
            source_agency: "test".into(),
            submitted_at: now(),
            figures,
        }
    }

    fn workforce(total: u32, bill: u64) -> Figures {
        Figures::Workforce {
            total_workers: total,
            total_wage_bill: Some(bill),
            wage_bands: vec![],
        }
    }

    fn jkn(registered: u32, wages: u64, arrears: u64) -> Figures {
        Figures::Registration {
            group: ProgrammeGroup::Jkn,
            registered_workers: registered,
            enrolled: vec![Programme::Jkn],
            reported_wage_total: wages,
            arrears_amount: arrears,
            arrears_months: u32::from(arrears > 0),
        }
    }

    fn status(reports: &[Report]) -> ComplianceStatus {
        compute_status(
            Uuid::nil(),
            ProgrammeGroup::Jkn,
            EmployerFacts {
                size_class: Some(SizeClass::Large),
            },
            reports,
            now(),
        )
    }

    #[test]
    fn a_partial_registration_is_pds_tk_with_its_gap() {
        let reports = [
            report((2026, 10), 1, workforce(1500, 1500 * 4_000_000)),
            report((2026, 10), 1, jkn(1000, 1000 * 4_000_000, 0)),
        ];
        let status = status(&reports);
        assert_eq!(status.categories, [Category::PdsTk]);
        assert_eq!(status.gap, 500);
        assert_eq!(status.derived_from.len(), 2);
        // 500 workers × large (4) × Rp 4,000,000 average (6.4 quarters → 6).
        assert_eq!(status.priority_score, 500 * 4 * 6);
    }

    #[test]
    fn full_registration_is_compliant_and_missing_reports_are_unknown() {
        let full = [
            report((2026, 10), 1, workforce(1500, 1500 * 4_000_000)),
            report((2026, 10), 1, jkn(1500, 1500 * 4_000_000, 0)),
        ];
        assert_eq!(status(&full).categories, [Category::Compliant]);
        assert_eq!(status(&full).priority_score, 0);
        let only_registration = [report((2026, 10), 1, jkn(10, 10 * 4_000_000, 5_000))];
        assert_eq!(
            status(&only_registration).categories,
            [Category::Tunggakan, Category::Unknown]
        );
        assert_eq!(status(&[]).categories, [Category::Unknown]);
    }

    #[test]
    fn no_registration_at_all_is_pwbd_and_wage_gaps_are_pds_upah() {
        let reports = [
            report((2026, 10), 1, workforce(40, 40 * 3_000_000)),
            report((2026, 10), 1, jkn(0, 0, 0)),
        ];
        let status_none = status(&reports);
        assert_eq!(status_none.categories, [Category::Pwbd]);
        assert_eq!(status_none.gap, 40);

        let low_wages = [
            report((2026, 10), 1, workforce(40, 40 * 3_000_000)),
            report((2026, 10), 1, jkn(40, 40 * 2_000_000, 0)),
        ];
        assert_eq!(status(&low_wages).categories, [Category::PdsUpah]);
    }

    #[test]
    fn the_latest_current_version_and_later_layoffs_count() {
        let mut first = report((2026, 9), 1, workforce(1500, 1500 * 4_000_000));
        first.superseded = true;
        let reports = [
            first,
            report((2026, 9), 2, workforce(1200, 1200 * 4_000_000)),
            report((2026, 9), 1, jkn(1000, 1000 * 4_000_000, 0)),
            report(
                (2026, 10),
                1,
                Figures::Layoff {
                    date: time::macros::date!(2026 - 10 - 05),
                    workers: 100,
                    document_reference: "PHK/1".into(),
                },
            ),
        ];
        let status = status(&reports);
        assert_eq!(status.workers_reported, Some(1100));
        assert_eq!(status.gap, 100);
        assert_eq!(status.derived_from.len(), 3);
    }

    #[test]
    fn registered_above_reported_is_flagged_not_refused() {
        let reports = [
            report((2026, 10), 1, workforce(100, 100 * 4_000_000)),
            report((2026, 9), 1, jkn(120, 120 * 4_000_000, 0)),
        ];
        let status = status(&reports);
        assert_eq!(status.categories, [Category::Compliant]);
        assert_eq!(
            status.flags,
            [
                StatusFlag::RegisteredExceedsReported,
                StatusFlag::PeriodsDiffer
            ]
        );
    }

    #[test]
    fn mandatory_programmes_depend_on_size() {
        let tk = |enrolled: Vec<Programme>| Figures::Registration {
            group: ProgrammeGroup::Ketenagakerjaan,
            registered_workers: 10,
            enrolled,
            reported_wage_total: 10 * 3_000_000,
            arrears_amount: 0,
            arrears_months: 0,
        };
        let reports = [
            report((2026, 10), 1, workforce(10, 10 * 3_000_000)),
            report((2026, 10), 1, tk(vec![Programme::Jkk, Programme::Jkm])),
        ];
        let of_size = |size| {
            compute_status(
                Uuid::nil(),
                ProgrammeGroup::Ketenagakerjaan,
                EmployerFacts { size_class: size },
                &reports,
                now(),
            )
        };
        assert_eq!(
            of_size(Some(SizeClass::Micro)).categories,
            [Category::Compliant]
        );
        let medium = of_size(Some(SizeClass::Medium));
        assert_eq!(medium.categories, [Category::PdsProgram]);
        assert_eq!(medium.missing_programmes, [Programme::Jht, Programme::Jp]);
    }

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

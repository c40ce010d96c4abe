//! Compliance statuses: the categories the rules find, how a status is computed from an
//! employer's current reports, and the non-compliance listing's order and cursor.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::report::{Figures, Report, ReportKind, ReportReference};
use super::{ProgrammeGroup, RULES_VERSION, WAGE_TOLERANCE_PERCENT};
use crate::domain::employer::SizeClass;
use crate::domain::scope::Programme;

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
    pub region: Option<crate::domain::region::RegionCode>,
    /// Regions the caller's grant limits the listing to; `None`: no limit.
    pub within: Option<Vec<crate::domain::region::RegionCode>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::compliance::Period;

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
}

//! Report and compliance status messages.

use crate::domain::compliance::{
    Category, ComplianceStatus, Figures, FiguresSubmission, Period, ProgrammeGroup, Report,
    ReportKind, ReportSubmission, StatusFlag,
};
use crate::grpc::convert::{programme, programme_to_proto, timestamp};
use crate::proto;

pub fn programme_group(value: i32) -> Result<Option<ProgrammeGroup>, String> {
    use proto::ProgrammeGroup as P;
    match P::try_from(value) {
        Ok(P::Unspecified) => Ok(None),
        Ok(P::Jkn) => Ok(Some(ProgrammeGroup::Jkn)),
        Ok(P::Ketenagakerjaan) => Ok(Some(ProgrammeGroup::Ketenagakerjaan)),
        Err(_) => Err(format!("{value} is not a programme group")),
    }
}

pub(crate) fn programme_group_to_proto(group: ProgrammeGroup) -> proto::ProgrammeGroup {
    match group {
        ProgrammeGroup::Jkn => proto::ProgrammeGroup::Jkn,
        ProgrammeGroup::Ketenagakerjaan => proto::ProgrammeGroup::Ketenagakerjaan,
    }
}

pub fn report_kind(value: i32) -> Result<Option<ReportKind>, String> {
    use proto::ReportKind as P;
    match P::try_from(value) {
        Ok(P::Unspecified) => Ok(None),
        Ok(P::Workforce) => Ok(Some(ReportKind::Workforce)),
        Ok(P::Registration) => Ok(Some(ReportKind::Registration)),
        Ok(P::Layoff) => Ok(Some(ReportKind::Layoff)),
        Err(_) => Err(format!("{value} is not a report kind")),
    }
}

fn report_kind_to_proto(kind: ReportKind) -> proto::ReportKind {
    match kind {
        ReportKind::Workforce => proto::ReportKind::Workforce,
        ReportKind::Registration => proto::ReportKind::Registration,
        ReportKind::Layoff => proto::ReportKind::Layoff,
    }
}

pub fn category(value: i32) -> Result<Category, String> {
    use proto::ComplianceCategory as P;
    match P::try_from(value) {
        Ok(P::Pwbd) => Ok(Category::Pwbd),
        Ok(P::PdsTk) => Ok(Category::PdsTk),
        Ok(P::PdsUpah) => Ok(Category::PdsUpah),
        Ok(P::PdsProgram) => Ok(Category::PdsProgram),
        Ok(P::Tunggakan) => Ok(Category::Tunggakan),
        Ok(P::Compliant) => Ok(Category::Compliant),
        Ok(P::Unknown) => Ok(Category::Unknown),
        Ok(P::Unspecified) | Err(_) => Err(format!("{value} is not a compliance category")),
    }
}

pub(crate) fn category_to_proto(category: Category) -> proto::ComplianceCategory {
    use proto::ComplianceCategory as P;
    match category {
        Category::Pwbd => P::Pwbd,
        Category::PdsTk => P::PdsTk,
        Category::PdsUpah => P::PdsUpah,
        Category::PdsProgram => P::PdsProgram,
        Category::Tunggakan => P::Tunggakan,
        Category::Compliant => P::Compliant,
        Category::Unknown => P::Unknown,
    }
}

fn period(period: Period) -> proto::Period {
    proto::Period {
        year: period.year,
        month: i32::from(period.month),
    }
}

/// A caller's report message as an unchecked submission.
pub fn report_submission(submission: proto::ReportSubmission) -> ReportSubmission {
    use proto::report_submission::{Employer, Figures};
    let (employer_id, employer_npwp) = match submission.employer {
        Some(Employer::EmployerId(id)) => (Some(id), None),
        Some(Employer::EmployerNpwp(npwp)) => (None, Some(npwp)),
        None => (None, None),
    };
    let figures = submission.figures.map(|figures| match figures {
        Figures::Workforce(w) => FiguresSubmission::Workforce {
            total_workers: w.total_workers,
            total_wage_bill: w.total_wage_bill,
            wage_bands: w
                .wage_bands
                .into_iter()
                .map(|b| (b.min_monthly_wage, b.max_monthly_wage, b.workers))
                .collect(),
        },
        Figures::Registration(r) => FiguresSubmission::Registration {
            group: programme_group(r.programme_group).ok().flatten(),
            registered_workers: r.registered_workers,
            enrolled: r
                .enrolled_programmes
                .into_iter()
                .map(|p| programme(p).ok())
                .collect(),
            reported_wage_total: r.reported_wage_total,
            arrears_amount: r.arrears_amount,
            arrears_months: r.arrears_months,
        },
        Figures::Layoff(l) => FiguresSubmission::Layoff {
            date: l.layoff_date,
            workers: l.workers,
            document_reference: l.document_reference,
        },
    });
    ReportSubmission {
        employer_id,
        employer_npwp,
        period: submission.period.map(|p| (p.year, p.month)),
        figures,
    }
}

pub fn report(report: Report) -> proto::Report {
    use proto::report::Figures as P;
    let kind = report.figures.kind();
    let figures = match report.figures {
        Figures::Workforce {
            total_workers,
            total_wage_bill,
            wage_bands,
        } => P::Workforce(proto::WorkforceFigures {
            total_workers,
            total_wage_bill,
            wage_bands: wage_bands
                .into_iter()
                .map(|band| proto::WageBand {
                    min_monthly_wage: band.min_monthly_wage,
                    max_monthly_wage: band.max_monthly_wage.unwrap_or(0),
                    workers: band.workers,
                })
                .collect(),
        }),
        Figures::Registration {
            group,
            registered_workers,
            enrolled,
            reported_wage_total,
            arrears_amount,
            arrears_months,
        } => P::Registration(proto::RegistrationFigures {
            programme_group: programme_group_to_proto(group).into(),
            registered_workers,
            enrolled_programmes: enrolled
                .into_iter()
                .map(|p| programme_to_proto(p).into())
                .collect(),
            reported_wage_total,
            arrears_amount,
            arrears_months,
        }),
        Figures::Layoff {
            date,
            workers,
            document_reference,
        } => P::Layoff(proto::LayoffFigures {
            layoff_date: date.to_string(),
            workers,
            document_reference,
        }),
    };
    proto::Report {
        id: report.id.to_string(),
        employer_id: report.employer_id.to_string(),
        kind: report_kind_to_proto(kind).into(),
        period: Some(period(report.period)),
        version: report.version,
        supersedes_report_id: report
            .supersedes
            .map(|id| id.to_string())
            .unwrap_or_default(),
        superseded: report.superseded,
        source_agency_id: report.source_agency,
        submit_time: Some(timestamp(report.submitted_at)),
        figures: Some(figures),
    }
}

pub fn compliance_status(status: ComplianceStatus) -> proto::ComplianceStatus {
    proto::ComplianceStatus {
        employer_id: status.employer_id.to_string(),
        programme_group: programme_group_to_proto(status.group).into(),
        categories: status
            .categories
            .into_iter()
            .map(|c| category_to_proto(c).into())
            .collect(),
        workers_reported: status.workers_reported,
        workers_registered: status.workers_registered,
        gap: status.gap,
        arrears_amount: status.arrears_amount,
        arrears_months: status.arrears_months,
        missing_programmes: status
            .missing_programmes
            .into_iter()
            .map(|p| programme_to_proto(p).into())
            .collect(),
        priority_score: status.priority_score,
        derived_from: status
            .derived_from
            .into_iter()
            .map(|r| proto::ReportReference {
                report_id: r.report_id.to_string(),
                kind: report_kind_to_proto(r.kind).into(),
                source_agency_id: r.source_agency,
                period: Some(period(r.period)),
                version: r.version,
            })
            .collect(),
        flags: status
            .flags
            .into_iter()
            .map(|flag| {
                match flag {
                    StatusFlag::RegisteredExceedsReported => {
                        proto::StatusFlag::RegisteredExceedsReported
                    }
                    StatusFlag::PeriodsDiffer => proto::StatusFlag::PeriodsDiffer,
                }
                .into()
            })
            .collect(),
        rules_version: status.rules_version,
        compute_time: Some(timestamp(status.computed_at)),
    }
}

//! Conversions between protobuf messages and domain types.

use prost_types::Timestamp;
use time::OffsetDateTime;

use crate::auth::jwk::PublicJwk;
use crate::domain::agency::{Agency, AgencyKey, AgencyKind, Grant};
use crate::domain::compliance::{
    Category, ComplianceStatus, Figures, FiguresSubmission, Period, ProgrammeGroup, Report,
    ReportKind, ReportSubmission, StatusFlag,
};
use crate::domain::employer::{Employer, EmployerSubmission, SizeClass};
use crate::domain::feed::{FeedEvent, FeedEventType, FeedPayload};
use crate::domain::region::RegionCode;
use crate::domain::scope::Programme;
use crate::error::ApiError;
use crate::proto;

pub fn timestamp(at: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: at.unix_timestamp(),
        // Always in 0..1e9, which fits an i32.
        nanos: at.nanosecond() as i32,
    }
}

/// An optional size class: UNSPECIFIED means "not given"; a number outside the enum is invalid.
pub fn size_class(value: i32, field: &str) -> Result<Option<SizeClass>, ApiError> {
    match proto::SizeClass::try_from(value) {
        Ok(proto::SizeClass::Unspecified) => Ok(None),
        Ok(proto::SizeClass::Micro) => Ok(Some(SizeClass::Micro)),
        Ok(proto::SizeClass::Small) => Ok(Some(SizeClass::Small)),
        Ok(proto::SizeClass::Medium) => Ok(Some(SizeClass::Medium)),
        Ok(proto::SizeClass::Large) => Ok(Some(SizeClass::Large)),
        Err(_) => Err(ApiError::invalid(
            field,
            format!("{value} is not a size class"),
        )),
    }
}

pub fn size_class_to_proto(size_class: Option<SizeClass>) -> proto::SizeClass {
    match size_class {
        None => proto::SizeClass::Unspecified,
        Some(SizeClass::Micro) => proto::SizeClass::Micro,
        Some(SizeClass::Small) => proto::SizeClass::Small,
        Some(SizeClass::Medium) => proto::SizeClass::Medium,
        Some(SizeClass::Large) => proto::SizeClass::Large,
    }
}

/// The caller's employer message as an unchecked submission.
pub fn employer_submission(
    employer: proto::Employer,
    field: &str,
) -> Result<EmployerSubmission, ApiError> {
    Ok(EmployerSubmission {
        size_class: size_class(employer.size_class, &format!("{field}.size_class"))?,
        id: employer.id,
        npwp: employer.npwp,
        nib: employer.nib,
        bpjs_tk_npp: employer.bpjs_tk_npp,
        bpjs_kes_code: employer.bpjs_kes_code,
        name: employer.name,
        address: employer.address,
        region_code: employer
            .region
            .map(|region| region.code)
            .unwrap_or_default(),
        kbli: employer.kbli,
        workforce_declared: employer.workforce_declared,
    })
}

pub fn employer(employer: Employer) -> proto::Employer {
    proto::Employer {
        etag: employer.etag(),
        id: employer.id.to_string(),
        npwp: employer.npwp,
        nib: employer.nib.unwrap_or_default(),
        bpjs_tk_npp: employer.bpjs_tk_npp,
        bpjs_kes_code: employer.bpjs_kes_code.unwrap_or_default(),
        name: employer.name,
        address: employer.address.unwrap_or_default(),
        region: Some(proto::RegionCode {
            code: employer.region_code,
        }),
        kbli: employer.kbli.unwrap_or_default(),
        size_class: size_class_to_proto(employer.size_class).into(),
        workforce_declared: employer.workforce_declared,
        create_time: Some(timestamp(employer.created_at)),
        update_time: Some(timestamp(employer.updated_at)),
    }
}

pub fn agency_kind(value: i32) -> Result<AgencyKind, String> {
    use proto::AgencyKind as P;
    match P::try_from(value) {
        Ok(P::Disnaker) => Ok(AgencyKind::Disnaker),
        Ok(P::DisnakertransProvinsi) => Ok(AgencyKind::DisnakertransProvinsi),
        Ok(P::BpjsKesehatan) => Ok(AgencyKind::BpjsKesehatan),
        Ok(P::BpjsKetenagakerjaan) => Ok(AgencyKind::BpjsKetenagakerjaan),
        Ok(P::Kejaksaan) => Ok(AgencyKind::Kejaksaan),
        Ok(P::LicensingOffice) => Ok(AgencyKind::LicensingOffice),
        Ok(P::Forum) => Ok(AgencyKind::Forum),
        Ok(P::Admin) => Ok(AgencyKind::Admin),
        Ok(P::Unspecified) => Err("the agency kind is required".into()),
        Err(_) => Err(format!("{value} is not an agency kind")),
    }
}

fn agency_kind_to_proto(kind: AgencyKind) -> proto::AgencyKind {
    use proto::AgencyKind as P;
    match kind {
        AgencyKind::Disnaker => P::Disnaker,
        AgencyKind::DisnakertransProvinsi => P::DisnakertransProvinsi,
        AgencyKind::BpjsKesehatan => P::BpjsKesehatan,
        AgencyKind::BpjsKetenagakerjaan => P::BpjsKetenagakerjaan,
        AgencyKind::Kejaksaan => P::Kejaksaan,
        AgencyKind::LicensingOffice => P::LicensingOffice,
        AgencyKind::Forum => P::Forum,
        AgencyKind::Admin => P::Admin,
    }
}

pub fn programme(value: i32) -> Result<Programme, String> {
    use proto::Programme as P;
    match P::try_from(value) {
        Ok(P::Jkn) => Ok(Programme::Jkn),
        Ok(P::Jkk) => Ok(Programme::Jkk),
        Ok(P::Jkm) => Ok(Programme::Jkm),
        Ok(P::Jht) => Ok(Programme::Jht),
        Ok(P::Jp) => Ok(Programme::Jp),
        Ok(P::Jkp) => Ok(Programme::Jkp),
        Ok(P::Unspecified) | Err(_) => Err(format!("{value} is not a programme")),
    }
}

fn programme_to_proto(programme: Programme) -> proto::Programme {
    use proto::Programme as P;
    match programme {
        Programme::Jkn => P::Jkn,
        Programme::Jkk => P::Jkk,
        Programme::Jkm => P::Jkm,
        Programme::Jht => P::Jht,
        Programme::Jp => P::Jp,
        Programme::Jkp => P::Jkp,
    }
}

/// A timestamp that must lie in the future (an expiry).
pub fn future_time(at: &Timestamp) -> Result<OffsetDateTime, String> {
    let nanos = i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos);
    let time = OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| "the time is out of range".to_owned())?;
    if time <= OffsetDateTime::now_utc() {
        return Err("the time must be in the future".into());
    }
    Ok(time)
}

fn region(code: &RegionCode) -> proto::RegionCode {
    proto::RegionCode {
        code: code.as_str().to_owned(),
    }
}

pub fn agency(agency: Agency) -> proto::Agency {
    proto::Agency {
        id: agency.id.as_str().to_owned(),
        kind: agency_kind_to_proto(agency.kind).into(),
        display_name: agency.display_name,
        home_region: agency.home_region.as_ref().map(region),
        disabled: agency.disabled_at.is_some(),
        create_time: Some(timestamp(agency.created_at)),
        disable_time: agency.disabled_at.map(timestamp),
    }
}

pub fn public_key(jwk: &PublicJwk) -> proto::PublicKey {
    proto::PublicKey {
        kty: jwk.key_type().into(),
        crv: jwk.curve().into(),
        x: jwk.x.clone(),
        y: jwk.y.clone().unwrap_or_default(),
        kid: jwk.thumbprint(),
        alg: jwk.algorithm.as_str().into(),
    }
}

pub fn agency_key(key: AgencyKey) -> proto::AgencyKey {
    proto::AgencyKey {
        public_key: PublicJwk::parse(&key.public_jwk)
            .ok()
            .as_ref()
            .map(public_key),
        kid: key.kid,
        agency_id: key.agency_id.as_str().to_owned(),
        create_time: Some(timestamp(key.created_at)),
        revoke_time: key.revoked_at.map(timestamp),
    }
}

pub fn grant(grant: Grant) -> proto::Grant {
    proto::Grant {
        id: grant.id.to_string(),
        agency_id: grant.agency_id.as_str().to_owned(),
        scope: grant.scope.as_str().to_owned(),
        regions: grant.regions.iter().map(region).collect(),
        programmes: grant
            .programmes
            .iter()
            .map(|p| programme_to_proto(*p).into())
            .collect(),
        expire_time: grant.expires_at.map(timestamp),
        create_time: Some(timestamp(grant.created_at)),
        granted_by: grant.granted_by.as_str().to_owned(),
        revoke_time: grant.revoked_at.map(timestamp),
        revoked_by: grant
            .revoked_by
            .map(|by| by.as_str().to_owned())
            .unwrap_or_default(),
    }
}

pub fn programme_group(value: i32) -> Result<Option<ProgrammeGroup>, String> {
    use proto::ProgrammeGroup as P;
    match P::try_from(value) {
        Ok(P::Unspecified) => Ok(None),
        Ok(P::Jkn) => Ok(Some(ProgrammeGroup::Jkn)),
        Ok(P::Ketenagakerjaan) => Ok(Some(ProgrammeGroup::Ketenagakerjaan)),
        Err(_) => Err(format!("{value} is not a programme group")),
    }
}

fn programme_group_to_proto(group: ProgrammeGroup) -> proto::ProgrammeGroup {
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

fn category_to_proto(category: Category) -> proto::ComplianceCategory {
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

pub fn feed_event_type(value: i32) -> Result<FeedEventType, String> {
    use proto::FeedEventType as P;
    match P::try_from(value) {
        Ok(P::EmployerUpserted) => Ok(FeedEventType::EmployerUpserted),
        Ok(P::ReportSubmitted) => Ok(FeedEventType::ReportSubmitted),
        Ok(P::ReportSuperseded) => Ok(FeedEventType::ReportSuperseded),
        Ok(P::StatusChanged) => Ok(FeedEventType::StatusChanged),
        Ok(P::Unspecified) | Err(_) => Err(format!("{value} is not a feed event type")),
    }
}

pub fn feed_event(event: FeedEvent) -> proto::FeedEvent {
    use proto::feed_event::Payload;
    let event_type = match event.event_type {
        FeedEventType::EmployerUpserted => proto::FeedEventType::EmployerUpserted,
        FeedEventType::ReportSubmitted => proto::FeedEventType::ReportSubmitted,
        FeedEventType::ReportSuperseded => proto::FeedEventType::ReportSuperseded,
        FeedEventType::StatusChanged => proto::FeedEventType::StatusChanged,
    };
    let micros = i128::from(event.time_us);
    proto::FeedEvent {
        cursor: event.seq,
        r#type: event_type.into(),
        commit_time: OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000)
            .ok()
            .map(timestamp),
        employer_id: event.employer_id.to_string(),
        region: Some(proto::RegionCode {
            code: event.region_code,
        }),
        source_agency_id: event.source_agency,
        payload: Some(match event.payload {
            FeedPayload::Employer(e) => Payload::Employer(employer(e)),
            FeedPayload::Report(r) => Payload::Report(report(r)),
            FeedPayload::Status(s) => Payload::Status(compliance_status(s)),
        }),
    }
}

//! Conversions between protobuf messages and domain types.

use prost_types::Timestamp;
use time::OffsetDateTime;

use crate::auth::jwk::PublicJwk;
use crate::domain::agency::{Agency, AgencyKey, AgencyKind, Grant};
use crate::domain::cases::CaseStep;
use crate::domain::compliance::today_wib;
use crate::domain::compliance::{
    Category, ComplianceStatus, Figures, FiguresSubmission, Period, ProgrammeGroup, Report,
    ReportKind, ReportSubmission, StatusFlag,
};
use crate::domain::employer::{Employer, EmployerSubmission, SizeClass};
use crate::domain::feed::{FeedEvent, FeedEventType, FeedPayload};
use crate::domain::inspection::{Inspection, InspectionOutcome, InspectionStatus, InspectionStep};
use crate::domain::referral::{Referral, ReferralStatus, ReferralStep, Stats};
use crate::domain::region::RegionCode;
use crate::domain::sanction::{SanctionStatus, SanctionStep, SanctionTrack, WithheldService};
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

pub fn agency_kind_to_proto(kind: AgencyKind) -> proto::AgencyKind {
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
        Ok(P::InspectionChanged) => Ok(FeedEventType::InspectionChanged),
        Ok(P::SanctionChanged) => Ok(FeedEventType::SanctionChanged),
        Ok(P::ReferralChanged) => Ok(FeedEventType::ReferralChanged),
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
        FeedEventType::InspectionChanged => proto::FeedEventType::InspectionChanged,
        FeedEventType::SanctionChanged => proto::FeedEventType::SanctionChanged,
        FeedEventType::ReferralChanged => proto::FeedEventType::ReferralChanged,
    };
    let micros = i128::from(event.time_us);
    let today = today_wib(OffsetDateTime::now_utc());
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
            FeedPayload::Inspection(i) => Payload::Inspection(inspection(i, today)),
            FeedPayload::Sanction(t) => Payload::SanctionTrack(sanction_track(t)),
            FeedPayload::Referral(r) => Payload::Referral(referral(r, today, false)),
        }),
    }
}

/// A domain enum as the matching proto enum, whose names are the domain's with `prefix`.
fn named_to_proto<P: Into<i32>>(prefix: &str, name: &str, parse: fn(&str) -> Option<P>) -> i32 {
    parse(&format!("{prefix}{name}")).map_or(0, Into::into)
}

/// A proto enum value as the matching domain enum; `None` for UNSPECIFIED and unknown numbers.
fn named_from_proto<P, D>(
    value: i32,
    prefix: &str,
    name_of: fn(&P) -> &'static str,
    parse: fn(&str) -> Option<D>,
) -> Option<D>
where
    P: TryFrom<i32>,
{
    let proto = P::try_from(value).ok()?;
    parse(name_of(&proto).strip_prefix(prefix)?)
}

/// An optional enum field: 0 is "not given", a number outside the enum is invalid.
fn optional_enum<D>(value: i32, field: &str, parsed: Option<D>) -> Result<Option<D>, ApiError> {
    match (value, parsed) {
        (0, _) => Ok(None),
        (_, Some(parsed)) => Ok(Some(parsed)),
        (_, None) => Err(ApiError::invalid(
            field,
            format!("{value} is not a valid value"),
        )),
    }
}

pub fn inspection_step(value: i32) -> Result<Option<InspectionStep>, ApiError> {
    let parsed = named_from_proto(
        value,
        "INSPECTION_STEP_",
        proto::InspectionStep::as_str_name,
        InspectionStep::from_stored,
    );
    optional_enum(value, "step", parsed)
}

pub fn inspection_status(value: i32) -> Result<Option<InspectionStatus>, ApiError> {
    let parsed = named_from_proto(
        value,
        "INSPECTION_STATUS_",
        proto::InspectionStatus::as_str_name,
        InspectionStatus::from_stored,
    );
    optional_enum(value, "status", parsed)
}

pub fn inspection_outcome(value: i32) -> Result<Option<InspectionOutcome>, ApiError> {
    let parsed = named_from_proto(
        value,
        "INSPECTION_OUTCOME_",
        proto::InspectionOutcome::as_str_name,
        InspectionOutcome::from_stored,
    );
    optional_enum(value, "outcome", parsed)
}

pub fn sanction_step(value: i32) -> Result<Option<SanctionStep>, ApiError> {
    let parsed = named_from_proto(
        value,
        "SANCTION_STEP_",
        proto::SanctionStep::as_str_name,
        SanctionStep::from_stored,
    );
    optional_enum(value, "step", parsed)
}

pub fn sanction_status(value: i32) -> Result<Option<SanctionStatus>, ApiError> {
    let parsed = named_from_proto(
        value,
        "SANCTION_STATUS_",
        proto::SanctionStatus::as_str_name,
        SanctionStatus::from_stored,
    );
    optional_enum(value, "status", parsed)
}

/// Withheld services as asked for; an unknown one is `None`, for the validation to name.
pub fn withheld_services(values: &[i32]) -> Vec<Option<WithheldService>> {
    values
        .iter()
        .map(|value| {
            named_from_proto(
                *value,
                "WITHHELD_SERVICE_",
                proto::WithheldService::as_str_name,
                WithheldService::from_stored,
            )
        })
        .collect()
}

fn withheld_service_to_proto(service: WithheldService) -> i32 {
    named_to_proto(
        "WITHHELD_SERVICE_",
        service.as_str(),
        proto::WithheldService::from_str_name,
    )
}

pub fn referral_step(value: i32) -> Result<Option<ReferralStep>, ApiError> {
    let parsed = named_from_proto(
        value,
        "REFERRAL_STEP_",
        proto::ReferralStep::as_str_name,
        ReferralStep::from_stored,
    );
    optional_enum(value, "step", parsed)
}

pub fn referral_status(value: i32) -> Result<Option<ReferralStatus>, ApiError> {
    let parsed = named_from_proto(
        value,
        "REFERRAL_STATUS_",
        proto::ReferralStatus::as_str_name,
        ReferralStatus::from_stored,
    );
    optional_enum(value, "status", parsed)
}

fn day(date: time::Date) -> String {
    date.to_string()
}

fn region_text(code: &str) -> Option<proto::RegionCode> {
    Some(proto::RegionCode {
        code: code.to_owned(),
    })
}

pub fn case_step(step: CaseStep) -> proto::CaseStep {
    proto::CaseStep {
        step: step.step,
        status_after: step.status_after,
        actor_agency_id: step.actor,
        record_time: Some(timestamp(step.recorded_at)),
        effective_date: day(step.effective_on),
        note: step.note,
        document_ref: step.document_ref,
    }
}

pub fn inspection(inspection: Inspection, today: time::Date) -> proto::Inspection {
    proto::Inspection {
        overdue: inspection.is_overdue(today),
        etag: crate::domain::employer::etag_of(inspection.revision),
        id: inspection.id.to_string(),
        employer_id: inspection.employer_id.to_string(),
        region: region_text(&inspection.region_code),
        inspecting_agency_id: inspection.inspecting_agency,
        joint_agency_id: inspection.joint_agency.unwrap_or_default(),
        triggering_finding: inspection.triggering_finding.map(compliance_status),
        status: named_to_proto(
            "INSPECTION_STATUS_",
            inspection.status.as_str(),
            proto::InspectionStatus::from_str_name,
        ),
        outcome: inspection.outcome.map_or(0, |outcome| {
            named_to_proto(
                "INSPECTION_OUTCOME_",
                outcome.as_str(),
                proto::InspectionOutcome::from_str_name,
            )
        }),
        response_due: inspection.response_due.map(day).unwrap_or_default(),
        open_time: Some(timestamp(inspection.opened_at)),
        close_time: inspection.closed_at.map(timestamp),
        history: inspection.history.into_iter().map(case_step).collect(),
    }
}

pub fn sanction_track(track: SanctionTrack) -> proto::SanctionTrack {
    proto::SanctionTrack {
        etag: crate::domain::employer::etag_of(track.revision),
        id: track.id.to_string(),
        employer_id: track.employer_id.to_string(),
        region: region_text(&track.region_code),
        programme_group: programme_group_to_proto(track.group).into(),
        bpjs_agency_id: track.bpjs_agency,
        status: named_to_proto(
            "SANCTION_STATUS_",
            track.status.as_str(),
            proto::SanctionStatus::from_str_name,
        ),
        fine_amount: track.fine_amount,
        withheld_services: track
            .withheld
            .into_iter()
            .map(withheld_service_to_proto)
            .collect(),
        warning_period_end: track.warning_period_end.map(day).unwrap_or_default(),
        licensing_agency_id: track.licensing_agency.unwrap_or_default(),
        open_time: Some(timestamp(track.opened_at)),
        close_time: track.closed_at.map(timestamp),
        history: track
            .history
            .into_iter()
            .map(|record| proto::SanctionStepRecord {
                step: Some(case_step(record.step)),
                justified_by: record.justified_by.map(compliance_status),
            })
            .collect(),
    }
}

pub fn sanction_check(services: &[WithheldService]) -> proto::CheckEmployerSanctionsResponse {
    proto::CheckEmployerSanctionsResponse {
        withheld: !services.is_empty(),
        services: services
            .iter()
            .copied()
            .map(withheld_service_to_proto)
            .collect(),
    }
}

/// A referral; `with_evidence` false leaves the frozen evidence out (listings, the feed).
pub fn referral(referral: Referral, today: time::Date, with_evidence: bool) -> proto::Referral {
    proto::Referral {
        overdue: referral.is_overdue(today),
        etag: crate::domain::employer::etag_of(referral.revision),
        id: referral.id.to_string(),
        skk_number: referral.skk_number,
        skk_date: day(referral.skk_date),
        employer_id: referral.employer_id.to_string(),
        region: region_text(&referral.region_code),
        bpjs_agency_id: referral.bpjs_agency,
        kejari_agency_id: referral.kejari_agency,
        programme_group: programme_group_to_proto(referral.group).into(),
        categories: referral
            .evidence
            .status
            .categories
            .iter()
            .map(|category| category_to_proto(*category).into())
            .collect(),
        amount_claimed: referral.amount_claimed,
        amount_recovered: referral.amount_recovered,
        status: named_to_proto(
            "REFERRAL_STATUS_",
            referral.status.as_str(),
            proto::ReferralStatus::from_str_name,
        ),
        due_date: referral.due_on.map(day).unwrap_or_default(),
        instalments: referral
            .instalments
            .into_iter()
            .map(|instalment| proto::Instalment {
                due_date: day(instalment.due_on),
                amount: instalment.amount,
            })
            .collect(),
        evidence: with_evidence.then(|| proto::ReferralEvidence {
            status: Some(compliance_status(referral.evidence.status)),
            reports: referral.evidence.reports.into_iter().map(report).collect(),
        }),
        previous_referral_id: referral
            .previous_referral
            .map(|id| id.to_string())
            .unwrap_or_default(),
        open_time: Some(timestamp(referral.opened_at)),
        close_time: referral.closed_at.map(timestamp),
        history: referral.history.into_iter().map(case_step).collect(),
    }
}

pub fn referral_stats(region: Option<&str>, stats: Stats) -> proto::ReferralStats {
    proto::ReferralStats {
        region: region.and_then(region_text),
        opened: stats.opened,
        resolved_complied: stats.resolved_complied,
        resolved_paid: stats.resolved_paid,
        failed: stats.failed,
        open: stats.open,
        success_rate_percent: stats.success_rate_percent,
        median_days_to_resolution: stats.median_days_to_resolution,
        amount_recovered: stats.amount_recovered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generic conversions rely on the proto names being the domain names with a prefix: a
    /// value that does not round trip would silently become UNSPECIFIED.
    #[test]
    fn case_enums_round_trip_through_the_contract() {
        for status in ReferralStatus::ALL {
            let value = named_to_proto(
                "REFERRAL_STATUS_",
                status.as_str(),
                proto::ReferralStatus::from_str_name,
            );
            assert_eq!(referral_status(value).unwrap(), Some(*status));
        }
        for step in ReferralStep::ALL {
            let value = named_to_proto(
                "REFERRAL_STEP_",
                step.as_str(),
                proto::ReferralStep::from_str_name,
            );
            assert_eq!(referral_step(value).unwrap(), Some(*step));
        }
        for status in SanctionStatus::ALL {
            let value = named_to_proto(
                "SANCTION_STATUS_",
                status.as_str(),
                proto::SanctionStatus::from_str_name,
            );
            assert_eq!(sanction_status(value).unwrap(), Some(*status));
        }
        for step in SanctionStep::ALL {
            let value = named_to_proto(
                "SANCTION_STEP_",
                step.as_str(),
                proto::SanctionStep::from_str_name,
            );
            assert_eq!(sanction_step(value).unwrap(), Some(*step));
        }
        for service in WithheldService::ALL {
            assert_eq!(
                withheld_services(&[withheld_service_to_proto(*service)]),
                [Some(*service)]
            );
        }
        for status in InspectionStatus::ALL {
            let value = named_to_proto(
                "INSPECTION_STATUS_",
                status.as_str(),
                proto::InspectionStatus::from_str_name,
            );
            assert_eq!(inspection_status(value).unwrap(), Some(*status));
        }
        for step in InspectionStep::ALL {
            let value = named_to_proto(
                "INSPECTION_STEP_",
                step.as_str(),
                proto::InspectionStep::from_str_name,
            );
            assert_eq!(inspection_step(value).unwrap(), Some(*step));
        }
        for outcome in InspectionOutcome::ALL {
            let value = named_to_proto(
                "INSPECTION_OUTCOME_",
                outcome.as_str(),
                proto::InspectionOutcome::from_str_name,
            );
            assert_eq!(inspection_outcome(value).unwrap(), Some(*outcome));
        }
        assert!(referral_step(99).is_err());
        assert_eq!(referral_step(0).unwrap(), None);
    }
}

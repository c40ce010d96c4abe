//! `sinergi.v1.InspectionService`.

pub mod convert;

use std::sync::Arc;

use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use super::cases::{
    Cases, Listing, check_etag, check_region, revision_of, subject, today, wrong_kind,
};
use super::convert::NamedInContract;
use super::{ReadCall, WriteCall, read_call, write_call};
use crate::domain::agency::{AgencyId, AgencyKind};
use crate::domain::cases::{PreconditionError, effective_date, group_run_by, note};
use crate::domain::inspection::{
    Inspection, InspectionOutcome, InspectionStatus, InspectionStep, StepFields,
};
use crate::domain::scope::Scope;
use crate::error::ApiError;
use crate::proto::{self, inspection_service_server::InspectionService};
use crate::store::Store;

pub struct InspectionApi {
    cases: Cases,
}

impl InspectionApi {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            cases: Cases { store },
        }
    }

    async fn joint_agency(&self, text: &str) -> Result<Option<AgencyId>, ApiError> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        let field = "joint_agency_id";
        let id = AgencyId::parse(text).map_err(|e| ApiError::invalid(field, e))?;
        let agency = self.cases.store.get_agency(&id).await?;
        match agency {
            Some(agency) if group_run_by(agency.kind).is_some() && agency.disabled_at.is_none() => {
                Ok(Some(id))
            }
            _ => Err(ApiError::invalid(field, "not an active BPJS agency")),
        }
    }
}

#[tonic::async_trait]
impl InspectionService for InspectionApi {
    async fn open_inspection(
        &self,
        request: Request<proto::OpenInspectionRequest>,
    ) -> Result<Response<proto::Inspection>, Status> {
        let call = write_call(request, Scope::InspectionsWrite, "OpenInspection", |r| {
            &r.request_id
        })?;
        let WriteCall {
            principal,
            writable,
            message,
            ..
        } = &call;
        if principal.kind() != AgencyKind::DisnakertransProvinsi {
            return Err(wrong_kind("inspections are opened by provincial manpower offices").into());
        }
        let note = note(&message.note).map_err(|e| ApiError::invalid("note", e))?;
        let opened_on = effective_date(&message.effective_date, today())
            .map_err(|e| ApiError::invalid("effective_date", e))?;
        let group = super::compliance::convert::programme_group(message.triggered_by_group)
            .map_err(|e| ApiError::invalid("triggered_by_group", e))?;
        let employer = self
            .cases
            .employer(&message.employer_id, "employer_id")
            .await?;
        check_region(writable, &employer.region_code)?;
        let joint = self.joint_agency(&message.joint_agency_id).await?;
        let finding = match group {
            None => None,
            Some(group) => Some(
                self.cases
                    .status(employer.id, group)
                    .await?
                    .filter(|status| status.is_non_compliant())
                    .ok_or_else(|| {
                        ApiError::from(PreconditionError(format!(
                            "the employer is not non-compliant in {}",
                            group.as_str()
                        )))
                    })?,
            ),
        };
        let inspection = Inspection::open(
            subject(&employer),
            principal.agency_id(),
            joint.as_ref(),
            finding,
            note,
            OffsetDateTime::now_utc(),
            opened_on,
        );
        let saved = self.cases.save(&call, inspection, None, "OPEN").await?;
        Ok(Response::new(convert::inspection(saved, today())))
    }

    async fn advance_inspection(
        &self,
        request: Request<proto::AdvanceInspectionRequest>,
    ) -> Result<Response<proto::Inspection>, Status> {
        let call = write_call(
            request,
            Scope::InspectionsWrite,
            "AdvanceInspection",
            |_| "",
        )?;
        let message = &call.message;
        let revision = revision_of(&message.etag)?;
        let step = StepFields {
            step: InspectionStep::optional(message.step, "step")?,
            effective_date: &message.effective_date,
            response_due: &message.response_due,
            outcome: InspectionOutcome::optional(message.outcome, "outcome")?,
            note: &message.note,
            document_ref: &message.document_ref,
        }
        .validate(today())?;
        let mut inspection: Inspection = self
            .cases
            .case(&call.audit, &message.inspection_id, "inspection_id")
            .await?;
        check_region(&call.writable, &inspection.region_code)?;
        check_etag(revision, inspection.revision)?;
        let step_name = step.step.as_str();
        inspection
            .advance(
                call.principal.agency_id(),
                call.principal.kind(),
                step,
                OffsetDateTime::now_utc(),
            )
            .map_err(ApiError::from)?;
        let saved = self
            .cases
            .save(&call, inspection, Some(revision), step_name)
            .await?;
        Ok(Response::new(convert::inspection(saved, today())))
    }

    async fn get_inspection(
        &self,
        request: Request<proto::GetInspectionRequest>,
    ) -> Result<Response<proto::Inspection>, Status> {
        let call = read_call(request, Scope::InspectionsRead)?;
        let inspection = self
            .cases
            .read(&call, &call.message.inspection_id, "inspection_id")
            .await?;
        Ok(Response::new(convert::inspection(inspection, today())))
    }

    async fn list_inspections(
        &self,
        request: Request<proto::ListInspectionsRequest>,
    ) -> Result<Response<proto::ListInspectionsResponse>, Status> {
        let ReadCall {
            audit,
            scope,
            readable,
            message,
            ..
        } = read_call(request, Scope::InspectionsRead)?;
        let mut listing = Listing::of::<Inspection, InspectionStatus>(
            Some(&readable),
            scope,
            message.region_prefix,
            message.status,
            &message.employer_id,
            message.page_size,
        )?;
        if message.overdue_only {
            listing.filter.due_before = Some(today());
        }
        let fingerprint = listing.fingerprint("inspections", &[&message.overdue_only]);
        let (page, next_page_token): (Vec<Inspection>, _) = self
            .cases
            .page(&audit, &listing, &message.page_token, &fingerprint)
            .await?;
        let today = today();
        Ok(Response::new(proto::ListInspectionsResponse {
            inspections: page
                .into_iter()
                .map(|i| convert::inspection(i, today))
                .collect(),
            next_page_token,
        }))
    }
}

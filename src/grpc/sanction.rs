//! `sinergi.v1.SanctionService`.

pub mod convert;

use std::sync::Arc;

use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::cases::{
    Cases, Listing, as_kind, check_etag, check_region, revision_of, subject, today, wrong_kind,
};
use super::convert::NamedInContract;
use super::{ReadCall, principal, read_call, write_call};
use crate::domain::case_record::KindOfCase;
use crate::domain::cases::{PreconditionError, group_run_by};
use crate::domain::employer::EmployerKey;
use crate::domain::identifiers::{Nib, Npwp};
use crate::domain::sanction::{
    SanctionStatus, SanctionStep, SanctionTrack, StepFields, WithheldService,
};
use crate::domain::scope::Scope;
use crate::error::ApiError;
use crate::proto::{self, sanction_service_server::SanctionService};
use crate::store::{CaseFilter, Store, StoreError};

pub struct SanctionApi {
    cases: Cases,
}

impl SanctionApi {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            cases: Cases { store },
        }
    }

    /// The open tracks of an employer.
    async fn open_tracks(&self, employer: Uuid) -> Result<Vec<SanctionTrack>, ApiError> {
        let mut filter = CaseFilter::of(SanctionTrack::KIND);
        filter.employer = Some(employer);
        filter.open_only = true;
        // At most one open track per programme group exists.
        let cases = self.cases.store.list_cases(&filter, None, 10).await?;
        cases.into_iter().map(as_kind).collect()
    }
}

#[tonic::async_trait]
impl SanctionService for SanctionApi {
    async fn take_sanction_step(
        &self,
        request: Request<proto::TakeSanctionStepRequest>,
    ) -> Result<Response<proto::SanctionTrack>, Status> {
        let call = write_call(request, Scope::SanctionsWrite, "TakeSanctionStep", |r| {
            &r.request_id
        })?;
        let message = &call.message;
        let step = StepFields {
            step: SanctionStep::optional(message.step, "step")?,
            effective_date: &message.effective_date,
            document_ref: &message.document_ref,
            note: &message.note,
            fine_amount: message.fine_amount,
            services: convert::withheld_services(&message.withheld_services),
        }
        .validate(today())?;
        let actor = call.principal.agency_id();
        let kind = call.principal.kind();
        let now = OffsetDateTime::now_utc();
        let step_name = step.step.as_str();

        let (track, expected_revision) = if step.step == SanctionStep::Warning1 {
            let group = group_run_by(kind)
                .ok_or_else(|| wrong_kind("written warnings are issued by BPJS agencies"))?;
            let employer = self
                .cases
                .employer(&message.employer_id, "employer_id")
                .await?;
            check_region(&call.writable, &employer.region_code)?;
            if let Some(open) = self
                .open_tracks(employer.id)
                .await?
                .into_iter()
                .find(|track| track.group == group)
            {
                return Err(ApiError::from(PreconditionError(format!(
                    "sanction track {} of this employer in {} is still open; take its next step",
                    open.id,
                    group.as_str()
                )))
                .into());
            }
            let status_now = self.cases.status(employer.id, group).await?;
            let track = SanctionTrack::open(
                subject(&employer),
                group,
                actor,
                step,
                status_now.as_ref(),
                now,
            )
            .map_err(ApiError::from)?;
            (track, None)
        } else {
            let revision = revision_of(&message.etag)?;
            let mut track: SanctionTrack = self
                .cases
                .case(&call.audit, &message.track_id, "track_id")
                .await?;
            check_region(&call.writable, &track.region_code)?;
            check_etag(revision, track.revision)?;
            let status_now = self.cases.status(track.employer_id, track.group).await?;
            track
                .advance(actor, kind, step, status_now.as_ref(), now)
                .map_err(ApiError::from)?;
            (track, Some(revision))
        };
        let saved = self
            .cases
            .save(&call, track, expected_revision, step_name)
            .await?;
        Ok(Response::new(convert::sanction_track(saved)))
    }

    async fn get_sanction_track(
        &self,
        request: Request<proto::GetSanctionTrackRequest>,
    ) -> Result<Response<proto::SanctionTrack>, Status> {
        let call = read_call(request, Scope::SanctionsRead)?;
        let track = self
            .cases
            .read(&call, &call.message.track_id, "track_id")
            .await?;
        Ok(Response::new(convert::sanction_track(track)))
    }

    async fn list_sanction_tracks(
        &self,
        request: Request<proto::ListSanctionTracksRequest>,
    ) -> Result<Response<proto::ListSanctionTracksResponse>, Status> {
        let ReadCall {
            audit,
            scope,
            readable,
            message,
            ..
        } = read_call(request, Scope::SanctionsRead)?;
        let mut listing = Listing::of::<SanctionTrack, SanctionStatus>(
            Some(&readable),
            scope,
            message.region_prefix,
            message.status,
            &message.employer_id,
            message.page_size,
        )?;
        listing.filter.open_only = message.open_only;
        let fingerprint = listing.fingerprint("sanctions", &[&message.open_only]);
        let (page, next_page_token): (Vec<SanctionTrack>, _) = self
            .cases
            .page(&audit, &listing, &message.page_token, &fingerprint)
            .await?;
        Ok(Response::new(proto::ListSanctionTracksResponse {
            tracks: page.into_iter().map(convert::sanction_track).collect(),
            next_page_token,
        }))
    }

    async fn check_employer_sanctions(
        &self,
        request: Request<proto::CheckEmployerSanctionsRequest>,
    ) -> Result<Response<proto::CheckEmployerSanctionsResponse>, Status> {
        let principal = principal(&request)?;
        let audit = super::call_audit(&request);
        // Licences are sought wherever a business operates, so the check answers for any
        // employer; the answer is only whether services are withheld.
        principal.require(Scope::SanctionsCheck)?;
        let message = request.into_inner();
        let key = match (message.npwp.trim(), message.nib.trim()) {
            (npwp, "") if !npwp.is_empty() => {
                EmployerKey::Npwp(Npwp::parse(npwp).map_err(|e| ApiError::invalid("npwp", e))?)
            }
            ("", nib) if !nib.is_empty() => {
                EmployerKey::Nib(Nib::parse(nib).map_err(|e| ApiError::invalid("nib", e))?)
            }
            _ => {
                return Err(ApiError::invalid("npwp", "give exactly one of npwp and nib").into());
            }
        };
        let employer = self
            .cases
            .store
            .find_employer(&key)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::Store(StoreError::NotFound("employer")))?;
        audit.touch(employer.id.to_string());
        let mut withheld: Vec<WithheldService> = Vec::new();
        for track in self.open_tracks(employer.id).await? {
            for record in &track.history {
                audit.read_records_of(&record.step.actor);
            }
            if track.status.withholds() {
                for service in track.withheld {
                    if !withheld.contains(&service) {
                        withheld.push(service);
                    }
                }
            }
        }
        Ok(Response::new(convert::sanction_check(&withheld)))
    }
}

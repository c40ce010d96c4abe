//! `sinergi.v1.ReferralService`.

pub mod convert;

use std::collections::BTreeMap;
use std::sync::Arc;

use time::OffsetDateTime;
use tonic::{Request, Response, Status};

use super::cases::{
    Cases, Listing, as_kind, check_etag, check_region, listing_regions, region_prefix, revision_of,
    start_of_day, subject, today, wrong_kind,
};
use super::convert::NamedInContract;
use super::{call_audit, principal, write_call};
use crate::audit::CallAudit;
use crate::auth::principal::Principal;
use crate::domain::agency::AgencyKind;
use crate::domain::case_record::KindOfCase;
use crate::domain::cases::{any_date, group_run_by};
use crate::domain::referral::{
    Evidence, Referral, ReferralRequest, ReferralStatus, ReferralStep, Stats, StepFields,
};
use crate::domain::scope::{RegionScope, Scope};
use crate::error::ApiError;
use crate::proto::{self, referral_service_server::ReferralService};
use crate::store::{CaseFilter, Store, StoreError};

/// Reports read for a referral's evidence: an employer's whole history fits many times over.
const EVIDENCE_REPORTS: u32 = 1000;

pub struct ReferralApi {
    cases: Cases,
}

/// Which referrals a reader may see.
enum Readable {
    /// Those addressed to this Kejari.
    AddressedTo(String),
    /// Those this BPJS agency opened.
    OpenedBy(String),
    /// Those in these regions (provincial inspectors, administrators).
    InRegions(RegionScope),
}

impl Readable {
    fn of(principal: &Principal) -> Result<Self, ApiError> {
        let regions = principal.require(Scope::ReferralsRead)?;
        let me = principal.agency_id().to_string();
        match principal.kind() {
            AgencyKind::Kejaksaan => Ok(Self::AddressedTo(me)),
            AgencyKind::BpjsKesehatan | AgencyKind::BpjsKetenagakerjaan => Ok(Self::OpenedBy(me)),
            AgencyKind::DisnakertransProvinsi | AgencyKind::Admin => Ok(Self::InRegions(regions)),
            _ => Err(wrong_kind(
                "referrals are read by their Kejari, their BPJS agency, provincial inspectors and \
                 administrators",
            )),
        }
    }

    fn allows(&self, referral: &Referral) -> bool {
        match self {
            Self::AddressedTo(me) => referral.kejari_agency == *me,
            Self::OpenedBy(me) => referral.bpjs_agency == *me,
            Self::InRegions(regions) => {
                crate::domain::region::RegionCode::parse(&referral.region_code)
                    .is_ok_and(|region| regions.allows(&region))
            }
        }
    }
}

/// Opens a read of referral data: the call's audit record, which referrals the caller may
/// read, and the request. A read that declared no purpose is refused.
fn open_read<T>(request: Request<T>) -> Result<(CallAudit, Readable, T), ApiError> {
    let principal = principal(&request)?;
    let audit = call_audit(&request);
    let readable = Readable::of(&principal)?;
    if audit.purpose().trim().is_empty() {
        return Err(ApiError::invalid(
            "x-purpose",
            "reads of referral data need a purpose: a `purpose` claim in the token or \
             `x-purpose` call metadata",
        ));
    }
    Ok((audit, readable, request.into_inner()))
}

fn date_field(text: &str, field: &str) -> Result<Option<time::Date>, ApiError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    any_date(text)
        .map(Some)
        .map_err(|e| ApiError::invalid(field, e))
}

impl ReferralApi {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            cases: Cases { store },
        }
    }

    /// The referral with the employer and its statuses now.
    async fn view(&self, referral: Referral) -> Result<proto::ReferralView, ApiError> {
        let employer = self
            .cases
            .employer(&referral.employer_id.to_string(), "referral_id")
            .await?;
        let statuses = self
            .cases
            .store
            .compliance_statuses(referral.employer_id)
            .await?;
        Ok(proto::ReferralView {
            referral: Some(convert::referral(referral, today(), true)),
            employer: Some(super::employer::convert::employer(employer)),
            current_statuses: statuses
                .into_iter()
                .map(super::compliance::convert::compliance_status)
                .collect(),
        })
    }
}

#[tonic::async_trait]
impl ReferralService for ReferralApi {
    async fn create_referral(
        &self,
        request: Request<proto::CreateReferralRequest>,
    ) -> Result<Response<proto::ReferralView>, Status> {
        let call = write_call(request, Scope::ReferralsCreate, "CreateReferral", |r| {
            &r.request_id
        })?;
        let message = &call.message;
        let group = group_run_by(call.principal.kind())
            .ok_or_else(|| wrong_kind("referrals are opened by BPJS agencies"))?;
        let new = ReferralRequest {
            employer_id: &message.employer_id,
            kejari_agency_id: &message.kejari_agency_id,
            skk_number: &message.skk_number,
            skk_date: &message.skk_date,
            amount_claimed: message.amount_claimed,
            previous_referral_id: &message.previous_referral_id,
            note: &message.note,
        }
        .validate(today())?;
        let employer = self
            .cases
            .employer(&message.employer_id, "employer_id")
            .await?;
        check_region(&call.writable, &employer.region_code)?;
        let kejari = self.cases.store.get_agency(&new.kejari_agency).await?;
        if !kejari.is_some_and(|k| k.kind == AgencyKind::Kejaksaan && k.disabled_at.is_none()) {
            return Err(
                ApiError::invalid("kejari_agency_id", "not an active Kejari agency").into(),
            );
        }
        let previous = match new.previous_referral {
            Some(id) => Some(as_kind::<Referral>(
                self.cases
                    .store
                    .get_case(id)
                    .await
                    .map_err(ApiError::from)?
                    .ok_or(ApiError::Store(StoreError::NotFound("referral")))?,
            )?),
            None => None,
        };
        let status = self.cases.status(employer.id, group).await?;
        let reports = self
            .cases
            .store
            .list_reports(employer.id, None, true, None, EVIDENCE_REPORTS)
            .await
            .map_err(ApiError::from)?;
        let evidence = Evidence::of(status, group, reports).map_err(ApiError::from)?;
        let referral = Referral::open(
            subject(&employer),
            new,
            call.principal.agency_id(),
            group,
            evidence,
            previous.as_ref(),
            OffsetDateTime::now_utc(),
        )
        .map_err(ApiError::from)?;
        let saved = self.cases.save(&call, referral, None, "ISSUE_SKK").await?;
        Ok(Response::new(self.view(saved).await?))
    }

    async fn advance_referral(
        &self,
        request: Request<proto::AdvanceReferralRequest>,
    ) -> Result<Response<proto::ReferralView>, Status> {
        let call = write_call(request, Scope::ReferralsProgress, "AdvanceReferral", |_| "")?;
        let message = &call.message;
        let revision = revision_of(&message.etag)?;
        let step = StepFields {
            step: ReferralStep::optional(message.step, "step")?,
            effective_date: &message.effective_date,
            due_date: &message.due_date,
            instalments: message
                .instalments
                .iter()
                .map(|i| (i.due_date.as_str(), i.amount))
                .collect(),
            amount_recovered: message.amount_recovered,
            note: &message.note,
            document_ref: &message.document_ref,
        }
        .validate(today())?;
        let mut referral: Referral = self
            .cases
            .case(&call.audit, &message.referral_id, "referral_id")
            .await?;
        // The addressed Kejari is the one party that moves a referral, wherever its grant
        // reaches; anyone else is refused by the lifecycle below.
        let step_name = step.step.as_str();
        referral
            .advance(
                call.principal.agency_id(),
                call.principal.kind(),
                step,
                OffsetDateTime::now_utc(),
            )
            .map_err(ApiError::from)?;
        check_etag(revision, referral.revision)?;
        let saved = self
            .cases
            .save(&call, referral, Some(revision), step_name)
            .await?;
        Ok(Response::new(self.view(saved).await?))
    }

    async fn get_referral(
        &self,
        request: Request<proto::GetReferralRequest>,
    ) -> Result<Response<proto::ReferralView>, Status> {
        let (audit, readable, message) = open_read(request)?;
        let referral: Referral = self
            .cases
            .case(&audit, &message.referral_id, "referral_id")
            .await?;
        if !readable.allows(&referral) {
            return Err(wrong_kind("this referral is not one the caller may read").into());
        }
        Ok(Response::new(self.view(referral).await?))
    }

    async fn list_referrals(
        &self,
        request: Request<proto::ListReferralsRequest>,
    ) -> Result<Response<proto::ListReferralsResponse>, Status> {
        let (audit, readable, message) = open_read(request)?;
        let mut listing = Listing::of::<Referral, ReferralStatus>(
            match &readable {
                Readable::InRegions(regions) => Some(regions),
                // Their own referrals, wherever the employer is.
                Readable::AddressedTo(_) | Readable::OpenedBy(_) => None,
            },
            Scope::ReferralsRead,
            message.region_prefix,
            message.status,
            &message.employer_id,
            message.page_size,
        )?;
        let filter = &mut listing.filter;
        match &readable {
            Readable::AddressedTo(me) => filter.counterpart = Some(me.clone()),
            Readable::OpenedBy(me) => filter.owner = Some(me.clone()),
            Readable::InRegions(_) => {}
        }
        filter.opened_from = date_field(&message.opened_from, "opened_from")?.map(start_of_day);
        filter.opened_before = date_field(&message.opened_to, "opened_to")?
            .and_then(|day| day.next_day())
            .map(start_of_day);
        if message.overdue_only {
            filter.due_before = Some(today());
        }
        let fingerprint = listing.fingerprint(
            "referrals",
            &[
                &message.opened_from.trim(),
                &message.opened_to.trim(),
                &message.overdue_only,
            ],
        );
        let (page, next_page_token): (Vec<Referral>, _) = self
            .cases
            .page(&audit, &listing, &message.page_token, &fingerprint)
            .await?;
        let today = today();
        Ok(Response::new(proto::ListReferralsResponse {
            referrals: page
                .into_iter()
                .map(|r| convert::referral(r, today, false))
                .collect(),
            next_page_token,
        }))
    }

    async fn get_referral_stats(
        &self,
        request: Request<proto::GetReferralStatsRequest>,
    ) -> Result<Response<proto::GetReferralStatsResponse>, Status> {
        let principal = principal(&request)?;
        let readable = principal.require(Scope::ReferralsRead)?;
        let message = request.into_inner();
        let region = region_prefix(message.region_prefix)?;
        let from = date_field(&message.opened_from, "opened_from")?
            .ok_or_else(|| ApiError::invalid("opened_from", "required"))?;
        let to = date_field(&message.opened_to, "opened_to")?
            .ok_or_else(|| ApiError::invalid("opened_to", "required"))?;
        if to < from {
            return Err(ApiError::invalid("opened_to", "falls before opened_from").into());
        }
        let mut filter = CaseFilter::of(Referral::KIND);
        filter.within = listing_regions(&readable, region.as_ref(), Scope::ReferralsRead)?;
        filter.opened_from = Some(start_of_day(from));
        filter.opened_before = to.next_day().map(start_of_day);
        let outcomes = self
            .cases
            .store
            .referral_outcomes(&filter)
            .await
            .map_err(ApiError::from)?;
        let mut by_region: BTreeMap<&str, Vec<_>> = BTreeMap::new();
        for outcome in &outcomes {
            by_region
                .entry(outcome.region_code.as_str())
                .or_default()
                .push(outcome);
        }
        Ok(Response::new(proto::GetReferralStatsResponse {
            total: Some(convert::referral_stats(None, Stats::of(&outcomes))),
            regions: by_region
                .into_iter()
                .map(|(region, outcomes)| {
                    convert::referral_stats(Some(region), Stats::of(outcomes))
                })
                .collect(),
        }))
    }
}

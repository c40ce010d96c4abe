//! What the inspection, sanction and referral services share: finding the employer and the case,
//! the etag a step is taken on, storing a case with its audit entry and feed event, reading one
//! within a grant, and paging through listings. What differs between them (who takes which step,
//! who reads what) stays in each service and its lifecycle.

use std::sync::Arc;

use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::convert::NamedInContract;
use super::convert::{day, timestamp};
use super::{ReadCall, WriteCall, check_readable, cursor_of, page_size_of, split_page};
use crate::audit::CallAudit;
use crate::auth::AuthError;
use crate::domain::case_record::{CaseRecord, KindOfCase};
use crate::domain::cases::{CaseStep, Subject};
use crate::domain::compliance::{ComplianceStatus, ProgrammeGroup, today_wib};
use crate::domain::employer::{Employer, EmployerKey};
use crate::domain::feed::{FeedEvent, FeedEventType, FeedPayload};
use crate::domain::region::RegionCode;
use crate::domain::scope::{RegionScope, Scope};
use crate::error::ApiError;
use crate::proto;
use crate::store::{CaseFilter, CaseSaved, CaseWrite, Store, StoreError};

/// Today in WIB, the calendar of every date in the contract.
pub fn today() -> Date {
    today_wib(OffsetDateTime::now_utc())
}

pub fn uuid_field(text: &str, field: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text.trim()).map_err(|_| {
        if text.trim().is_empty() {
            ApiError::invalid(field, "required")
        } else {
            ApiError::invalid(field, format!("`{}` is not a UUID", text.trim()))
        }
    })
}

/// The revision an etag names; a step must present the etag of the case it was decided on.
pub fn revision_of(etag: &str) -> Result<i64, ApiError> {
    etag.trim()
        .strip_prefix('r')
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ApiError::invalid(
                "etag",
                "the etag of the record as last read is required, e.g. `r3`",
            )
        })
}

/// Refuses a step on a case that changed since the caller read it.
pub fn check_etag(presented: i64, current: i64) -> Result<(), ApiError> {
    if presented == current {
        Ok(())
    } else {
        Err(StoreError::EtagMismatch {
            current: crate::domain::employer::etag_of(current),
        }
        .into())
    }
}

/// Refuses a record in `region_code` outside `allowed`.
pub fn check_region(allowed: &RegionScope, region_code: &str) -> Result<(), ApiError> {
    if RegionCode::parse(region_code).is_ok_and(|region| allowed.allows(&region)) {
        Ok(())
    } else {
        Err(StoreError::OutsideRegion(region_code.to_owned()).into())
    }
}

pub struct Cases {
    pub store: Arc<dyn Store>,
}

/// What every listing of cases asks for: the filter built so far, the page's size, and what
/// its page tokens are bound to.
pub struct Listing {
    pub filter: CaseFilter,
    pub page_size: u32,
    /// The region, status and employer asked for, as page tokens record them.
    asked: String,
}

impl Listing {
    /// A listing of cases of kind `C` in `region_prefix`, narrowed to `readable` where the
    /// reader's grant bounds what it sees (`None` where another rule does), with the status
    /// `status` (a value of `S`) and about the employer `employer_id` where they are given.
    pub fn of<C: KindOfCase, S: NamedInContract>(
        readable: Option<&RegionScope>,
        scope: Scope,
        region_prefix: Option<proto::RegionCode>,
        status: i32,
        employer_id: &str,
        page_size: i32,
    ) -> Result<Self, ApiError> {
        let region = self::region_prefix(region_prefix)?;
        let mut filter = CaseFilter::of(C::KIND);
        filter.within = match readable {
            Some(readable) => listing_regions(readable, region.as_ref(), scope)?,
            None => region.as_ref().map(|region| vec![region.clone()]),
        };
        filter.status = S::optional(status, "status")?.map(|status| status.stored_name());
        if !employer_id.trim().is_empty() {
            filter.employer = Some(uuid_field(employer_id, "employer_id")?);
        }
        Ok(Self {
            filter,
            page_size: page_size_of(page_size)?,
            asked: format!(
                "{}|{status}|{}",
                region.as_ref().map_or("", |region| region.as_str()),
                employer_id.trim()
            ),
        })
    }

    /// What a page token of this listing is bound to: the listing's `name`, what was asked for,
    /// and the kind's own criteria `more`.
    pub fn fingerprint(&self, name: &str, more: &[&dyn std::fmt::Display]) -> String {
        let mut fingerprint = format!("{name}|{}", self.asked);
        for criterion in more {
            fingerprint.push_str(&format!("|{criterion}"));
        }
        fingerprint
    }
}

impl Cases {
    /// One page of the cases `listing` selects (newest first), each noted in the call's audit
    /// entry as touched, and the next page's token, bound to `fingerprint`.
    pub async fn page<C: KindOfCase>(
        &self,
        audit: &CallAudit,
        listing: &Listing,
        page_token: &str,
        fingerprint: &str,
    ) -> Result<(Vec<C>, String), ApiError> {
        let before: Option<Uuid> = cursor_of(page_token, fingerprint)?;
        let page_size = listing.page_size;
        let cases = self
            .store
            .list_cases(&listing.filter, before, page_size + 1)
            .await?;
        // The row past the page only tells whether another page follows.
        for case in cases.iter().take(page_size as usize) {
            note_touched(audit, case);
        }
        let cases = cases
            .into_iter()
            .map(as_kind::<C>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(split_page(cases, page_size, fingerprint, |case| case.id()))
    }

    pub async fn employer(&self, id: &str, field: &str) -> Result<Employer, ApiError> {
        let key = EmployerKey::parse_id(id).map_err(|e| ApiError::invalid(field, e))?;
        Ok(self
            .store
            .find_employer(&key)
            .await?
            .ok_or(StoreError::NotFound("employer"))?)
    }

    pub async fn status(
        &self,
        employer: Uuid,
        group: ProgrammeGroup,
    ) -> Result<Option<ComplianceStatus>, ApiError> {
        Ok(self
            .store
            .compliance_statuses(employer)
            .await?
            .into_iter()
            .find(|status| status.group == group))
    }

    /// The case `id` of kind `C`, noted in the call's audit entry as touched; NOT_FOUND for an
    /// id of another kind of case.
    pub async fn case<C: KindOfCase>(
        &self,
        audit: &CallAudit,
        id: &str,
        field: &str,
    ) -> Result<C, ApiError> {
        let id = uuid_field(id, field)?;
        let case = self
            .store
            .get_case(id)
            .await?
            .ok_or(StoreError::NotFound("case"))?;
        note_touched(audit, &case);
        as_kind(case)
    }

    /// The case `id` of kind `C`, if the reader's grant covers its region.
    pub async fn read<C: KindOfCase, T>(
        &self,
        call: &ReadCall<T>,
        id: &str,
        field: &str,
    ) -> Result<C, ApiError> {
        let case: C = self.case(&call.audit, id, field).await?;
        check_readable(&call.readable, call.scope, case.region_code())?;
        Ok(case)
    }

    /// Stores `case` (new when `expected_revision` is `None`) with the call's audit entry and
    /// a feed event carrying it, and answers the case as stored.
    pub async fn save<C: KindOfCase, T>(
        &self,
        call: &WriteCall<T>,
        case: C,
        expected_revision: Option<i64>,
        step: &str,
    ) -> Result<C, ApiError> {
        let region = case.region_code().to_owned();
        let case = case.into_record();
        note_touched(&call.audit, &case);
        let (event_type, payload) = match case.clone() {
            CaseRecord::Inspection(c) => {
                (FeedEventType::InspectionChanged, FeedPayload::Inspection(c))
            }
            CaseRecord::Sanction(c) => (FeedEventType::SanctionChanged, FeedPayload::Sanction(c)),
            CaseRecord::Referral(mut c) => {
                // Subscribers get the case's state; the evidence stays behind GetReferral.
                c.evidence.reports.clear();
                (FeedEventType::ReferralChanged, FeedPayload::Referral(c))
            }
        };
        let now = OffsetDateTime::now_utc();
        let event = FeedEvent::new(
            event_type,
            (now.unix_timestamp_nanos() / 1_000) as i64,
            &region,
            call.principal.agency_id().as_str(),
            payload,
        );
        let detail = format!("{} {} {}", case.kind().as_str(), case.case().id(), step);
        let CaseSaved { case, replayed } = self
            .store
            .save_case(&CaseWrite {
                case,
                expected_revision,
                idempotency: call.idempotency.clone(),
                audit: call.audit.entry(0, Some(call.request_sha256), Some(detail)),
                events: vec![event],
            })
            .await?;
        if !replayed {
            call.audit.mark_recorded();
        }
        as_kind(case)
    }
}

/// The case as one of kind `C`, or NOT_FOUND: an id of another kind of case is not one of these.
pub fn as_kind<C: KindOfCase>(case: CaseRecord) -> Result<C, ApiError> {
    C::from_record(case).ok_or_else(|| StoreError::NotFound(C::NAME).into())
}

/// A new case about `employer`, with a fresh time-ordered id.
pub fn subject(employer: &Employer) -> Subject<'_> {
    Subject {
        id: Uuid::now_v7(),
        employer_id: employer.id,
        region_code: &employer.region_code,
    }
}

/// A refusal of a caller whose kind of agency does not take part in this.
pub fn wrong_kind(message: impl Into<String>) -> ApiError {
    AuthError::PermissionDenied(message.into()).into()
}

/// Start of `date` in WIB, expressed in UTC like every stored time: SQLite compares times as
/// text, which only orders them correctly when they share an offset.
pub fn start_of_day(date: Date) -> OffsetDateTime {
    date.midnight()
        .assume_offset(time::macros::offset!(+7))
        .to_offset(time::UtcOffset::UTC)
}

pub fn region_prefix(region: Option<proto::RegionCode>) -> Result<Option<RegionCode>, ApiError> {
    region
        .filter(|r| !r.code.trim().is_empty())
        .map(|r| RegionCode::parse(&r.code).map_err(|e| ApiError::invalid("region_prefix.code", e)))
        .transpose()
}

/// The regions a listing covers: the one asked for, narrowed to the caller's grant.
pub fn listing_regions(
    readable: &RegionScope,
    requested: Option<&RegionCode>,
    scope: Scope,
) -> Result<Option<Vec<RegionCode>>, ApiError> {
    Ok(super::within_grant(readable, requested, scope)?
        .or_else(|| requested.map(|region| vec![region.clone()])))
}

/// Notes in the call's audit entry the case, its employer, and the agencies that wrote it, so
/// that each of them finds the call among those on its records.
fn note_touched(audit: &CallAudit, case: &CaseRecord) {
    let case = case.case();
    audit.touch(case.employer_id().to_string());
    audit.touch(case.id().to_string());
    for writer in case.writers() {
        audit.read_records_of(writer);
    }
}

/// A history entry as every case message carries it.
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

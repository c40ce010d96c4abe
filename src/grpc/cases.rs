//! What the inspection, sanction and referral services share: finding the employer and the case,
//! the etag a step is taken on, and storing a case with its audit entry and feed event.

use std::sync::Arc;

use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{WriteCall, cursor_of, split_page};
use crate::audit::CallAudit;
use crate::auth::AuthError;
use crate::domain::cases::{CaseRecord, Subject};
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

impl Cases {
    /// One page of the cases `filter` selects (newest first), each taken as its kind by `kind`
    /// (e.g. [`as_inspection`]) and noted in the call's audit entry as touched, and the next
    /// page's token, bound to `fingerprint`.
    #[allow(clippy::too_many_arguments)]
    pub async fn page<T>(
        &self,
        audit: &CallAudit,
        filter: &CaseFilter,
        page_token: &str,
        fingerprint: &str,
        page_size: u32,
        kind: fn(CaseRecord) -> Result<T, ApiError>,
        id: fn(&T) -> Uuid,
    ) -> Result<(Vec<T>, String), ApiError> {
        let before: Option<Uuid> = cursor_of(page_token, fingerprint)?;
        let cases = self.store.list_cases(filter, before, page_size + 1).await?;
        // The row past the page only tells whether another page follows.
        for case in cases.iter().take(page_size as usize) {
            note_touched(audit, case);
        }
        let cases = cases.into_iter().map(kind).collect::<Result<Vec<_>, _>>()?;
        Ok(split_page(cases, page_size, fingerprint, id))
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

    /// The case `id`, noted in the call's audit entry as touched.
    pub async fn case(
        &self,
        audit: &CallAudit,
        id: &str,
        field: &str,
    ) -> Result<CaseRecord, ApiError> {
        let id = uuid_field(id, field)?;
        let case = self
            .store
            .get_case(id)
            .await?
            .ok_or(StoreError::NotFound("case"))?;
        note_touched(audit, &case);
        Ok(case)
    }

    /// Stores `case` (new when `expected_revision` is `None`) with the call's audit entry and
    /// a feed event carrying it.
    pub async fn save<T>(
        &self,
        call: &WriteCall<T>,
        case: CaseRecord,
        expected_revision: Option<i64>,
        step: &str,
    ) -> Result<CaseRecord, ApiError> {
        let (event_type, payload, region) = match &case {
            CaseRecord::Inspection(c) => (
                FeedEventType::InspectionChanged,
                FeedPayload::Inspection(c.clone()),
                c.region_code.clone(),
            ),
            CaseRecord::Sanction(c) => (
                FeedEventType::SanctionChanged,
                FeedPayload::Sanction(c.clone()),
                c.region_code.clone(),
            ),
            CaseRecord::Referral(c) => (
                FeedEventType::ReferralChanged,
                FeedPayload::Referral(c.clone()),
                c.region_code.clone(),
            ),
        };
        note_touched(&call.audit, &case);
        let now = OffsetDateTime::now_utc();
        let mut event = FeedEvent::new(
            event_type,
            (now.unix_timestamp_nanos() / 1_000) as i64,
            &region,
            call.principal.agency_id().as_str(),
            payload,
        );
        if let FeedPayload::Referral(referral) = &mut event.payload {
            // Subscribers get the case's state; the evidence stays behind GetReferral.
            referral.evidence.reports.clear();
        }
        let detail = format!("{} {} {}", case.kind().as_str(), case.id(), step);
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
        Ok(case)
    }
}

/// The case as an inspection, or NOT_FOUND (ids of other kinds of case are not inspections).
pub fn as_inspection(case: CaseRecord) -> Result<crate::domain::inspection::Inspection, ApiError> {
    match case {
        CaseRecord::Inspection(inspection) => Ok(inspection),
        _ => Err(StoreError::NotFound("inspection").into()),
    }
}

pub fn as_sanction(case: CaseRecord) -> Result<crate::domain::sanction::SanctionTrack, ApiError> {
    match case {
        CaseRecord::Sanction(track) => Ok(track),
        _ => Err(StoreError::NotFound("sanction track").into()),
    }
}

pub fn as_referral(case: CaseRecord) -> Result<crate::domain::referral::Referral, ApiError> {
    match case {
        CaseRecord::Referral(referral) => Ok(referral),
        _ => Err(StoreError::NotFound("referral").into()),
    }
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
    audit.touch(case.employer_id().to_string());
    audit.touch(case.id().to_string());
    for writer in case.writers() {
        audit.read_records_of(writer);
    }
}

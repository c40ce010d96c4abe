//! `sinergi.v1.ComplianceService`.
//!
//! A bulk batch is spooled to an anonymous temporary file as it streams in (each item checked
//! on arrival), and only written to the database once the client has half-closed the stream
//! with every item valid: the database transaction then lasts as long as the writing, not as
//! long as the client takes to send, memory stays bounded whatever the batch size, and a cut
//! stream leaves nothing behind.

pub mod convert;

use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::sync::Arc;

use prost::Message;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tonic::{Request, Response, Status, Streaming};

use super::{
    WriteCall, call_audit, check_readable, cursor_of, idempotency_key, page_size_of, principal,
    split_page, within_grant, write_call,
};
use crate::audit::CallAudit;
use crate::auth::AuthError;
use crate::auth::principal::Principal;
use crate::domain::ValidationError;
use crate::domain::compliance::{
    ComplianceStatus, EmployerFacts, EmployerRef, NewReport, NonCompliantCursor, NonCompliantOrder,
    NonCompliantQuery, Period, ProgrammeGroup, compute_status, today_wib,
};
use crate::domain::employer::EmployerKey;
use crate::domain::feed::report_audience;
use crate::domain::region::RegionCode;
use crate::domain::scope::{RegionScope, Scope};
use crate::domain::{FieldViolation, Violations};
use crate::error::ApiError;
use crate::proto::{self, compliance_service_server::ComplianceService};
use crate::store::{
    CoverageRow, REPORT_CHUNK, ReportBatch, ReportChunks, ReportCursor, SingleReport, Store,
    StoreError, spans_chunks,
};
use crate::workers::statuses::LargeBatches;

/// Violations listed in a refused batch; the message still counts all of them.
const MAX_LISTED_VIOLATIONS: usize = 100;
/// Items one batch may hold: a month of reports for every employer in the country, with room.
const MAX_BATCH_ITEMS: u64 = 50_000_000;

pub struct ComplianceApi {
    store: Arc<dyn Store>,
    large_batches: LargeBatches,
}

impl ComplianceApi {
    pub fn new(store: Arc<dyn Store>, large_batches: LargeBatches) -> Self {
        Self {
            store,
            large_batches,
        }
    }

    /// The employer a read names, refused unless `scope` covers its region.
    async fn readable_employer(
        &self,
        principal: &Principal,
        scope: Scope,
        id: &str,
    ) -> Result<crate::domain::employer::Employer, ApiError> {
        let key = EmployerKey::parse_id(id).map_err(|e| ApiError::invalid("employer_id", e))?;
        let readable = principal.require(scope)?;
        let employer = self
            .store
            .find_employer(&key)
            .await?
            .ok_or(StoreError::NotFound("employer"))?;
        check_readable(&readable, scope, &employer.region_code)?;
        Ok(employer)
    }
}

/// Refuses a report the caller's kind of agency does not own.
fn check_owner(principal: &Principal, report: &NewReport) -> Result<(), AuthError> {
    let owner = report.figures.owner();
    if principal.kind() == owner {
        return Ok(());
    }
    Err(AuthError::PermissionDenied(format!(
        "{} reports{} are written by {} agencies only",
        report.figures.kind().as_str(),
        report
            .figures
            .group()
            .map(|g| format!(" for {}", g.as_str()))
            .unwrap_or_default(),
        owner.as_str()
    )))
}

/// The items of a spooled batch, read back and checked again (they were valid when they
/// arrived; a failure now means the spool file was damaged).
struct Spool {
    reader: BufReader<std::fs::File>,
    remaining: u64,
    today: time::Date,
}

impl ReportChunks for Spool {
    fn next_chunk(&mut self) -> Result<Option<Vec<NewReport>>, StoreError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let damaged = |what: String| StoreError::Corrupt(format!("report batch spool: {what}"));
        let take = self.remaining.min(REPORT_CHUNK as u64);
        let mut chunk = Vec::with_capacity(take as usize);
        let mut buffer = Vec::new();
        for _ in 0..take {
            let mut length = [0u8; 4];
            self.reader
                .read_exact(&mut length)
                .map_err(|e| damaged(e.to_string()))?;
            buffer.resize(u32::from_le_bytes(length) as usize, 0);
            self.reader
                .read_exact(&mut buffer)
                .map_err(|e| damaged(e.to_string()))?;
            let item = proto::ReportSubmission::decode(buffer.as_slice())
                .map_err(|e| damaged(e.to_string()))?;
            let report = convert::report_submission(item)
                .validate("item", self.today)
                .map_err(|e| damaged(e.to_string()))?;
            chunk.push(report);
        }
        self.remaining -= take;
        Ok(Some(chunk))
    }

    fn remaining(&self) -> u64 {
        self.remaining
    }
}

fn store_error_of_single(error: StoreError) -> ApiError {
    match error {
        StoreError::UnknownEmployer { .. } => StoreError::NotFound("employer").into(),
        StoreError::ItemOutsideRegion { region, .. } => StoreError::OutsideRegion(region).into(),
        other => other.into(),
    }
}

fn period_of(period: Option<proto::Period>, field: &str) -> Result<Period, ApiError> {
    let period = period.ok_or_else(|| ApiError::invalid(field, "the month is required"))?;
    Period::new(
        period.year,
        period.month,
        today_wib(OffsetDateTime::now_utc()),
    )
    .map_err(|e| ApiError::invalid(field, e))
}

fn required_group(value: i32, field: &str) -> Result<ProgrammeGroup, ApiError> {
    convert::programme_group(value)
        .map_err(|e| ApiError::invalid(field, e))?
        .ok_or_else(|| ApiError::invalid(field, "JKN or KETENAGAKERJAAN is required"))
}

fn coverage_figures(region: Option<RegionCode>, rows: &[CoverageRow]) -> proto::CoverageFigures {
    let sum = |f: fn(&CoverageRow) -> u64| rows.iter().map(f).sum::<u64>();
    let reported = sum(|r| r.workers_reported);
    let registered = sum(|r| r.workers_registered);
    proto::CoverageFigures {
        region_name: region.as_ref().map_or("Indonesia", |r| r.name()).to_owned(),
        region: region.map(|r| proto::RegionCode {
            code: r.as_str().to_owned(),
        }),
        workers_reported: reported,
        workers_registered: registered,
        coverage_percent: if reported == 0 {
            0.0
        } else {
            registered as f64 * 100.0 / reported as f64
        },
        employers_counted: sum(|r| r.employers),
        non_compliant_employers: sum(|r| r.non_compliant),
    }
}

#[tonic::async_trait]
impl ComplianceService for ComplianceApi {
    async fn submit_report(
        &self,
        request: Request<proto::SubmitReportRequest>,
    ) -> Result<Response<proto::SubmitReportResponse>, Status> {
        let WriteCall {
            principal,
            audit,
            writable,
            message: request,
            request_sha256,
            idempotency,
        } = write_call(request, Scope::ReportsWrite, "SubmitReport", |r| {
            &r.request_id
        })?;
        let submission = request
            .report
            .ok_or_else(|| ApiError::invalid("report", "the report is required"))?;
        let report = convert::report_submission(submission)
            .validate("report", today_wib(OffsetDateTime::now_utc()))
            .map_err(ApiError::from)?;
        check_owner(&principal, &report)?;
        let employer_id = match &report.employer {
            EmployerRef::Id(id) => *id,
            EmployerRef::Npwp(npwp) => {
                self.store
                    .find_employer(&EmployerKey::Npwp(npwp.clone()))
                    .await
                    .map_err(ApiError::from)?
                    .ok_or(ApiError::Store(StoreError::NotFound("employer")))?
                    .id
            }
        };
        audit.touch(employer_id.to_string());
        let batch = ReportBatch {
            source: principal.agency_id().clone(),
            writable,
            idempotency,
            audit: audit.entry(0, Some(request_sha256), None),
        };
        let outcome = self
            .store
            .submit_reports(&batch, &mut SingleReport(Some(report)))
            .await
            .map_err(store_error_of_single)?;
        if !outcome.replayed {
            audit.mark_recorded();
        }
        let report = outcome.last.ok_or(ApiError::Store(StoreError::Corrupt(
            "a stored report batch of one returned no report".into(),
        )))?;
        let statuses = self
            .store
            .compliance_statuses(report.employer_id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(proto::SubmitReportResponse {
            report: Some(convert::report(report)),
            statuses: statuses
                .into_iter()
                .map(convert::compliance_status)
                .collect(),
        }))
    }

    async fn bulk_submit_reports(
        &self,
        request: Request<Streaming<proto::BulkSubmitReportsRequest>>,
    ) -> Result<Response<proto::BulkSubmitReportsResponse>, Status> {
        let principal = principal(&request)?;
        let audit = call_audit(&request);
        let writable = principal.require(Scope::ReportsWrite)?;
        let mut stream = request.into_inner();
        let today = today_wib(OffsetDateTime::now_utc());

        let spool_failed = |error: std::io::Error| {
            ApiError::Store(StoreError::Unavailable(sqlx::Error::Io(error)))
        };
        let file = tempfile::tempfile().map_err(spool_failed)?;
        let mut spool = BufWriter::new(file);
        let mut hasher = Sha256::new();
        let mut request_id: Option<String> = None;
        let mut count: u64 = 0;
        let mut violations: Vec<FieldViolation> = Vec::new();
        let mut violation_count: usize = 0;
        let mut complete = false;

        // An error from the stream (the client cancelled or the connection broke) ends the
        // call here, before anything reached the database.
        while let Some(message) = stream.message().await? {
            if request_id.is_none() {
                request_id = Some(message.request_id.trim().to_owned());
            }
            if complete {
                return Err(ApiError::invalid(
                    "end_of_batch",
                    "messages followed the one that ended the batch",
                )
                .into());
            }
            complete = message.end_of_batch;
            if complete && message.item.is_none() {
                continue;
            }
            let index = count;
            count += 1;
            if count > MAX_BATCH_ITEMS {
                return Err(ApiError::invalid(
                    "items",
                    format!("a batch holds at most {MAX_BATCH_ITEMS} items"),
                )
                .into());
            }
            let Some(item) = message.item else {
                violation_count += 1;
                if violations.len() < MAX_LISTED_VIOLATIONS {
                    violations.push(FieldViolation {
                        field: format!("items[{index}]"),
                        description: "the message carries no item".into(),
                    });
                }
                continue;
            };
            hasher.update(item.encode_length_delimited_to_vec());
            let bytes = item.encode_to_vec();
            match convert::report_submission(item).validate(&format!("items[{index}]"), today) {
                Ok(report) => {
                    check_owner(&principal, &report).map_err(|error| {
                        ApiError::from(AuthError::PermissionDenied(format!(
                            "item {index}: {error}"
                        )))
                    })?;
                }
                Err(invalid) => {
                    violation_count += invalid.violations.len();
                    let room = MAX_LISTED_VIOLATIONS.saturating_sub(violations.len());
                    violations.extend(invalid.violations.into_iter().take(room));
                }
            }
            if violation_count == 0 {
                let length = u32::try_from(bytes.len()).map_err(|_| {
                    ApiError::invalid(format!("items[{index}]"), "the item is too large")
                })?;
                spool
                    .write_all(&length.to_le_bytes())
                    .and_then(|()| spool.write_all(&bytes))
                    .map_err(spool_failed)?;
            }
        }
        if !complete {
            return Err(ApiError::invalid(
                "end_of_batch",
                "the stream ended without a message setting end_of_batch; nothing was stored",
            )
            .into());
        }
        if violation_count > 0 {
            return Err(
                ApiError::from(ValidationError::first_of(violations, violation_count)).into(),
            );
        }
        if count == 0 {
            return Err(ApiError::invalid("items", "the batch holds no item").into());
        }

        let batch_sha256: [u8; 32] = hasher.finalize().into();
        let request_id = request_id.unwrap_or_default();
        audit.set_request_id(&request_id);
        let idempotency = idempotency_key(
            principal.agency_id(),
            &request_id,
            "BulkSubmitReports",
            batch_sha256,
        )?;
        let mut file = spool
            .into_inner()
            .map_err(|e| spool_failed(e.into_error()))?;
        file.rewind().map_err(spool_failed)?;
        let mut items = Spool {
            reader: BufReader::new(file),
            remaining: count,
            today,
        };
        let batch = ReportBatch {
            source: principal.agency_id().clone(),
            writable,
            idempotency,
            audit: audit.entry(
                0,
                Some(batch_sha256),
                Some(format!("{count} reports in one batch")),
            ),
        };
        let _writing = spans_chunks(count).then(|| self.large_batches.writing());
        let outcome = self
            .store
            .submit_reports(&batch, &mut items)
            .await
            .map_err(ApiError::from)?;
        if !outcome.replayed {
            audit.mark_recorded();
        }
        Ok(Response::new(proto::BulkSubmitReportsResponse {
            accepted_count: outcome.accepted,
            superseded_count: outcome.superseded,
            batch_sha256: batch_sha256.to_vec(),
        }))
    }

    async fn list_reports(
        &self,
        request: Request<proto::ListReportsRequest>,
    ) -> Result<Response<proto::ListReportsResponse>, Status> {
        let principal = principal(&request)?;
        let audit = call_audit(&request);
        let request = request.into_inner();
        let employer = self
            .readable_employer(&principal, Scope::ComplianceRead, &request.employer_id)
            .await?;
        audit.touch(employer.id.to_string());
        let kind = convert::report_kind(request.kind).map_err(|e| ApiError::invalid("kind", e))?;
        let page_size = page_size_of(request.page_size)?;
        let fingerprint = format!(
            "reports|{}|{}|{}",
            employer.id,
            kind.map_or("", |k| k.as_str()),
            request.include_superseded
        );
        let after: Option<ReportCursor> = cursor_of(&request.page_token, &fingerprint)?;
        let reports = self
            .store
            .list_reports(
                employer.id,
                kind,
                request.include_superseded,
                after.as_ref(),
                page_size + 1,
            )
            .await
            .map_err(ApiError::from)?;
        let (reports, next_page_token) =
            split_page(reports, page_size, &fingerprint, |report| ReportCursor {
                period: report.period.to_string(),
                series: report.series(),
                version: report.version,
            });
        let kind_of_caller = principal.kind();
        Ok(Response::new(proto::ListReportsResponse {
            reports: reports
                .into_iter()
                .filter(|report| {
                    let audience = report_audience(report);
                    audience.is_empty() || audience.contains(&kind_of_caller)
                })
                .inspect(|report| audit.read_records_of(&report.source_agency))
                .map(convert::report)
                .collect(),
            next_page_token,
        }))
    }

    async fn get_compliance_status(
        &self,
        request: Request<proto::GetComplianceStatusRequest>,
    ) -> Result<Response<proto::GetComplianceStatusResponse>, Status> {
        let principal = principal(&request)?;
        let audit = call_audit(&request);
        let employer = self
            .readable_employer(
                &principal,
                Scope::ComplianceRead,
                &request.into_inner().employer_id,
            )
            .await?;
        audit.touch(employer.id.to_string());
        let stored = self
            .store
            .compliance_statuses(employer.id)
            .await
            .map_err(ApiError::from)?;
        // A group no report concerns yet is UNKNOWN, derived from nothing.
        let statuses = ProgrammeGroup::ALL
            .into_iter()
            .map(|group| {
                stored
                    .iter()
                    .find(|status| status.group == group)
                    .cloned()
                    .unwrap_or_else(|| {
                        compute_status(
                            employer.id,
                            group,
                            EmployerFacts {
                                size_class: employer.size_class,
                            },
                            &[],
                            OffsetDateTime::now_utc(),
                        )
                    })
            })
            .inspect(|status| note_sources(&audit, status))
            .map(convert::compliance_status)
            .collect();
        Ok(Response::new(proto::GetComplianceStatusResponse {
            statuses,
        }))
    }

    async fn list_non_compliant(
        &self,
        request: Request<proto::ListNonCompliantRequest>,
    ) -> Result<Response<proto::ListNonCompliantResponse>, Status> {
        use proto::list_non_compliant_request::Order;

        let readable = principal(&request)?.require(Scope::ComplianceRead)?;
        let audit = call_audit(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let group = violations.check(
            "programme_group",
            required_group(request.programme_group, "programme_group").map_err(|e| e.to_string()),
        );
        let region = request
            .region_prefix
            .map(|region| region.code)
            .filter(|code| !code.trim().is_empty())
            .and_then(|code| violations.check("region_prefix.code", RegionCode::parse(&code)));
        let mut categories = 0;
        for (index, value) in request.categories.iter().enumerate() {
            let field = format!("categories[{index}]");
            match convert::category(*value) {
                Ok(category) if category.is_non_compliance() => categories |= category.bit(),
                Ok(_) => violations.add(&field, "only non-compliance categories filter"),
                Err(e) => violations.add(&field, e),
            }
        }
        let size_class = violations.check(
            "size_class",
            super::employer::convert::size_class(request.size_class, "size_class")
                .map_err(|e| e.to_string()),
        );
        let order = match Order::try_from(request.order) {
            Ok(Order::Gap) => Some(NonCompliantOrder::Gap),
            Ok(Order::Arrears) => Some(NonCompliantOrder::Arrears),
            Ok(Order::Priority | Order::Unspecified) => Some(NonCompliantOrder::Priority),
            Err(_) => {
                violations.add("order", format!("{} is not an order", request.order));
                None
            }
        };
        let page_size = violations.check(
            "page_size",
            crate::domain::paging::page_size(request.page_size),
        );
        violations.finish().map_err(ApiError::from)?;
        let (Some(group), Some(order), Some(page_size)) = (group, order, page_size) else {
            return Err(ApiError::invalid("programme_group", "required").into());
        };
        let within = within_grant(&readable, region.as_ref(), Scope::ComplianceRead)?;
        let query = NonCompliantQuery {
            group,
            region,
            within,
            categories,
            min_gap: request.min_gap,
            size_class: size_class.flatten(),
            order,
        };
        let fingerprint = query.fingerprint();
        let after: Option<NonCompliantCursor> = cursor_of(&request.page_token, &fingerprint)?;
        let entries = self
            .store
            .list_non_compliant(&query, after.as_ref(), page_size + 1)
            .await
            .map_err(ApiError::from)?;
        let (entries, next_page_token) = split_page(entries, page_size, &fingerprint, |entry| {
            NonCompliantCursor {
                key: entry.sort_key,
                employer_id: entry.status.employer_id,
            }
        });
        for entry in &entries {
            audit.touch(entry.status.employer_id.to_string());
            note_sources(&audit, &entry.status);
        }
        Ok(Response::new(proto::ListNonCompliantResponse {
            employers: entries
                .into_iter()
                .map(|entry| proto::NonCompliantEmployer {
                    employer_id: entry.status.employer_id.to_string(),
                    name: entry.name,
                    npwp: entry.npwp,
                    region: Some(proto::RegionCode {
                        code: entry.region_code,
                    }),
                    size_class: super::employer::convert::size_class_to_proto(entry.size_class)
                        .into(),
                    status: Some(convert::compliance_status(entry.status)),
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn get_coverage(
        &self,
        request: Request<proto::GetCoverageRequest>,
    ) -> Result<Response<proto::GetCoverageResponse>, Status> {
        let readable = principal(&request)?.require(Scope::CoverageRead)?;
        let request = request.into_inner();
        let region = request
            .region_prefix
            .map(|region| region.code)
            .filter(|code| !code.trim().is_empty())
            .map(|code| RegionCode::parse(&code))
            .transpose()
            .map_err(|e| ApiError::invalid("region_prefix.code", e))?;
        let period = period_of(request.period, "period")?;
        let group = required_group(request.programme_group, "programme_group")?;
        let inside = match (&readable, &region) {
            (RegionScope::All, _) => true,
            (RegionScope::Only(_), Some(region)) => readable.allows(region),
            (RegionScope::Only(_), None) => false,
        };
        if !inside {
            return Err(AuthError::PermissionDenied(format!(
                "the caller's `{}` grant does not cover this region; name a region it covers",
                Scope::CoverageRead
            ))
            .into());
        }
        let rows = self
            .store
            .coverage(region.as_ref(), period, group)
            .await
            .map_err(ApiError::from)?;
        let breakdown = match region.as_ref().map(RegionCode::level) {
            Some(crate::domain::region::RegionLevel::RegencyOrCity) => Vec::new(),
            _ => rows
                .iter()
                .map(|row| {
                    coverage_figures(
                        RegionCode::parse(&row.region_code).ok(),
                        std::slice::from_ref(row),
                    )
                })
                .collect(),
        };
        Ok(Response::new(proto::GetCoverageResponse {
            total: Some(coverage_figures(region, &rows)),
            breakdown,
        }))
    }
}

/// Notes in the call's audit entry the agencies whose reports `status` was derived from, so
/// that each finds the call among those on its records.
fn note_sources(audit: &CallAudit, status: &ComplianceStatus) {
    for source in &status.derived_from {
        audit.read_records_of(&source.source_agency);
    }
}

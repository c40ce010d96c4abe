//! `sinergi.v1.EmployerService`.

pub mod convert;

use std::sync::Arc;

use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    WriteCall, call_audit, check_readable, cursor_of, page_size_of, principal, split_page,
    within_grant, write_call,
};
use crate::auth::AuthError;
use crate::domain::employer::{EmployerFilter, EmployerKey, NameQuery};
use crate::domain::identifiers::{Kbli, Nib, Npwp};
use crate::domain::paging::page_size;
use crate::domain::region::RegionCode;
use crate::domain::scope::Scope;
use crate::domain::{ValidationError, Violations};
use crate::error::ApiError;
use crate::proto::{self, employer_service_server::EmployerService};
use crate::store::{NameCursor, Store, UpsertEmployer};

pub struct EmployerApi {
    store: Arc<dyn Store>,
}

impl EmployerApi {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

#[tonic::async_trait]
impl EmployerService for EmployerApi {
    async fn upsert_employer(
        &self,
        request: Request<proto::UpsertEmployerRequest>,
    ) -> Result<Response<proto::UpsertEmployerResponse>, Status> {
        let WriteCall {
            audit,
            writable,
            message: request,
            request_sha256,
            idempotency,
            ..
        } = write_call(request, Scope::EmployersWrite, "UpsertEmployer", |r| {
            &r.request_id
        })?;
        let employer = request
            .employer
            .ok_or_else(|| ApiError::invalid("employer", "the employer to write is required"))?;
        let mut draft = convert::employer_submission(employer, "employer")?
            .validate("employer")
            .map_err(ApiError::from)?;
        // Chosen here rather than by the store, so the audit entry written with the employer
        // can name it.
        let id = *draft.id.get_or_insert_with(Uuid::now_v7);
        audit.touch(id.to_string());
        if !writable.allows(&draft.fields.region) {
            return Err(ApiError::from(AuthError::outside_region(
                Scope::EmployersWrite,
                &draft.fields.region,
            ))
            .into());
        }
        let expected_etag = Some(request.etag.trim().to_owned()).filter(|etag| !etag.is_empty());
        let outcome = self
            .store
            .upsert_employer(&UpsertEmployer {
                draft,
                expected_etag,
                idempotency,
                writable,
                audit: audit.entry(0, Some(request_sha256), None),
            })
            .await
            .map_err(ApiError::from)?;
        if !outcome.replayed {
            audit.mark_recorded();
        }
        Ok(Response::new(proto::UpsertEmployerResponse {
            employer: Some(convert::employer(outcome.employer)),
            created: outcome.created,
        }))
    }

    async fn get_employer(
        &self,
        request: Request<proto::GetEmployerRequest>,
    ) -> Result<Response<proto::GetEmployerResponse>, Status> {
        use proto::get_employer_request::Key;

        let readable = principal(&request)?.require(Scope::EmployersRead)?;
        let audit = call_audit(&request);
        let key = match request.into_inner().key {
            Some(Key::Id(id)) => {
                EmployerKey::parse_id(&id).map_err(|e| ApiError::invalid("id", e))?
            }
            Some(Key::Npwp(npwp)) => {
                EmployerKey::Npwp(Npwp::parse(&npwp).map_err(|e| ApiError::invalid("npwp", e))?)
            }
            Some(Key::Nib(nib)) => {
                EmployerKey::Nib(Nib::parse(&nib).map_err(|e| ApiError::invalid("nib", e))?)
            }
            None => {
                return Err(ApiError::invalid("key", "give one of id, npwp or nib").into());
            }
        };
        let employer = self
            .store
            .find_employer(&key)
            .await
            .map_err(ApiError::from)?
            .ok_or(ApiError::Store(crate::store::StoreError::NotFound(
                "employer",
            )))?;
        audit.touch(employer.id.to_string());
        check_readable(&readable, Scope::EmployersRead, &employer.region_code)?;
        Ok(Response::new(proto::GetEmployerResponse {
            employer: Some(convert::employer(employer)),
        }))
    }

    async fn list_employers(
        &self,
        request: Request<proto::ListEmployersRequest>,
    ) -> Result<Response<proto::ListEmployersResponse>, Status> {
        let readable = principal(&request)?.require(Scope::EmployersRead)?;
        let audit = call_audit(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let region = request
            .region_prefix
            .map(|region| region.code)
            .filter(|code| !code.trim().is_empty())
            .and_then(|code| violations.check("region_prefix.code", RegionCode::parse(&code)));
        let kbli = Some(request.kbli)
            .filter(|kbli| !kbli.trim().is_empty())
            .and_then(|kbli| violations.check("kbli", Kbli::parse(&kbli)));
        let size = violations.check("page_size", page_size(request.page_size));
        violations.finish().map_err(ApiError::from)?;
        let within = within_grant(&readable, region.as_ref(), Scope::EmployersRead)?;
        let filter = EmployerFilter {
            region,
            size_class: convert::size_class(request.size_class, "size_class")?,
            kbli,
            within,
        };
        let page_size = size.unwrap_or_default();
        let fingerprint = filter.fingerprint();
        let after: Option<Uuid> = cursor_of(&request.page_token, &fingerprint)?;

        let employers = self
            .store
            .list_employers(&filter, after, page_size + 1)
            .await
            .map_err(ApiError::from)?;
        let (employers, next_page_token) =
            split_page(employers, page_size, &fingerprint, |employer| employer.id);
        for employer in &employers {
            audit.touch(employer.id.to_string());
        }
        Ok(Response::new(proto::ListEmployersResponse {
            employers: employers.into_iter().map(convert::employer).collect(),
            next_page_token,
        }))
    }

    async fn search_employers(
        &self,
        request: Request<proto::SearchEmployersRequest>,
    ) -> Result<Response<proto::SearchEmployersResponse>, Status> {
        let readable = principal(&request)?.require(Scope::EmployersRead)?;
        let audit = call_audit(&request);
        let within = within_grant(&readable, None, Scope::EmployersRead)?;
        let request = request.into_inner();
        let query = NameQuery::parse(&request.query)
            .map_err(|description| ApiError::from(ValidationError::single("query", description)))?;
        let page_size = page_size_of(request.page_size)?;
        let fingerprint = query.fingerprint();
        let after: Option<NameCursor> = cursor_of(&request.page_token, &fingerprint)?;

        let employers = self
            .store
            .search_employers(&query, within.as_deref(), after.as_ref(), page_size + 1)
            .await
            .map_err(ApiError::from)?;
        let (employers, next_page_token) =
            split_page(employers, page_size, &fingerprint, |employer| NameCursor {
                name_folded: crate::domain::employer::fold_name(&employer.name),
                id: employer.id,
            });
        for employer in &employers {
            audit.touch(employer.id.to_string());
        }
        Ok(Response::new(proto::SearchEmployersResponse {
            employers: employers.into_iter().map(convert::employer).collect(),
            next_page_token,
        }))
    }
}

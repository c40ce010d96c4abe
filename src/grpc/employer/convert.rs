//! Employer messages: the caller's submission in, the stored employer out.

use crate::domain::employer::{Employer, EmployerSubmission, SizeClass};
use crate::error::ApiError;
use crate::grpc::convert::timestamp;
use crate::proto;

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

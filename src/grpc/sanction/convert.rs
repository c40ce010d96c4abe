//! Sanction track messages and their enums.

use crate::domain::sanction::{SanctionStatus, SanctionStep, SanctionTrack, WithheldService};
use crate::error::ApiError;
use crate::grpc::cases::case_step;
use crate::grpc::compliance::convert::{compliance_status, programme_group_to_proto};
use crate::grpc::convert::{
    day, named_from_proto, named_to_proto, optional_enum, region_text, timestamp,
};
use crate::proto;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::convert::named_to_proto;

    /// The generic conversions rely on the proto names being the domain names with a prefix: a
    /// value that does not round trip would silently become UNSPECIFIED.
    #[test]
    fn sanction_enums_round_trip_through_the_contract() {
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
    }
}

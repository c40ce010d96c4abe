//! Sanction track messages and their enums.

use crate::domain::sanction::{SanctionStatus, SanctionStep, SanctionTrack, WithheldService};
use crate::grpc::cases::case_step;
use crate::grpc::compliance::convert::{compliance_status, programme_group_to_proto};
use crate::grpc::convert::{NamedInContract, day, named_in_contract, region_text, timestamp};
use crate::proto;

named_in_contract! {
    SanctionStep => proto::SanctionStep, "SANCTION_STEP_";
    SanctionStatus => proto::SanctionStatus, "SANCTION_STATUS_";
    WithheldService => proto::WithheldService, "WITHHELD_SERVICE_";
}

/// Withheld services as asked for; an unknown one is `None`, for the validation to name.
pub fn withheld_services(values: &[i32]) -> Vec<Option<WithheldService>> {
    values
        .iter()
        .map(|value| WithheldService::from_proto(*value))
        .collect()
}

pub fn sanction_track(track: SanctionTrack) -> proto::SanctionTrack {
    proto::SanctionTrack {
        etag: crate::domain::employer::etag_of(track.revision),
        id: track.id.to_string(),
        employer_id: track.employer_id.to_string(),
        region: region_text(&track.region_code),
        programme_group: programme_group_to_proto(track.group).into(),
        bpjs_agency_id: track.bpjs_agency,
        status: track.status.to_proto(),
        fine_amount: track.fine_amount,
        withheld_services: track
            .withheld
            .into_iter()
            .map(|service| service.to_proto())
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
            .map(|service| service.to_proto())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::convert::assert_round_trips;

    #[test]
    fn sanction_enums_round_trip_through_the_contract() {
        assert_round_trips(SanctionStatus::ALL);
        assert_round_trips(SanctionStep::ALL);
        assert_round_trips(WithheldService::ALL);
        for service in WithheldService::ALL {
            assert_eq!(withheld_services(&[service.to_proto()]), [Some(*service)]);
        }
    }
}

//! Inspection messages and their enums.

use crate::domain::inspection::{Inspection, InspectionOutcome, InspectionStatus, InspectionStep};
use crate::error::ApiError;
use crate::grpc::cases::case_step;
use crate::grpc::compliance::convert::compliance_status;
use crate::grpc::convert::{
    day, named_from_proto, named_to_proto, optional_enum, region_text, timestamp,
};
use crate::proto;

pub fn inspection_step(value: i32) -> Result<Option<InspectionStep>, ApiError> {
    let parsed = named_from_proto(
        value,
        "INSPECTION_STEP_",
        proto::InspectionStep::as_str_name,
        InspectionStep::from_stored,
    );
    optional_enum(value, "step", parsed)
}

pub fn inspection_status(value: i32) -> Result<Option<InspectionStatus>, ApiError> {
    let parsed = named_from_proto(
        value,
        "INSPECTION_STATUS_",
        proto::InspectionStatus::as_str_name,
        InspectionStatus::from_stored,
    );
    optional_enum(value, "status", parsed)
}

pub fn inspection_outcome(value: i32) -> Result<Option<InspectionOutcome>, ApiError> {
    let parsed = named_from_proto(
        value,
        "INSPECTION_OUTCOME_",
        proto::InspectionOutcome::as_str_name,
        InspectionOutcome::from_stored,
    );
    optional_enum(value, "outcome", parsed)
}

pub fn inspection(inspection: Inspection, today: time::Date) -> proto::Inspection {
    proto::Inspection {
        overdue: inspection.is_overdue(today),
        etag: crate::domain::employer::etag_of(inspection.revision),
        id: inspection.id.to_string(),
        employer_id: inspection.employer_id.to_string(),
        region: region_text(&inspection.region_code),
        inspecting_agency_id: inspection.inspecting_agency,
        joint_agency_id: inspection.joint_agency.unwrap_or_default(),
        triggering_finding: inspection.triggering_finding.map(compliance_status),
        status: named_to_proto(
            "INSPECTION_STATUS_",
            inspection.status.as_str(),
            proto::InspectionStatus::from_str_name,
        ),
        outcome: inspection.outcome.map_or(0, |outcome| {
            named_to_proto(
                "INSPECTION_OUTCOME_",
                outcome.as_str(),
                proto::InspectionOutcome::from_str_name,
            )
        }),
        response_due: inspection.response_due.map(day).unwrap_or_default(),
        open_time: Some(timestamp(inspection.opened_at)),
        close_time: inspection.closed_at.map(timestamp),
        history: inspection.history.into_iter().map(case_step).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::convert::named_to_proto;

    /// The generic conversions rely on the proto names being the domain names with a prefix: a
    /// value that does not round trip would silently become UNSPECIFIED.
    #[test]
    fn inspection_enums_round_trip_through_the_contract() {
        for status in InspectionStatus::ALL {
            let value = named_to_proto(
                "INSPECTION_STATUS_",
                status.as_str(),
                proto::InspectionStatus::from_str_name,
            );
            assert_eq!(inspection_status(value).unwrap(), Some(*status));
        }
        for step in InspectionStep::ALL {
            let value = named_to_proto(
                "INSPECTION_STEP_",
                step.as_str(),
                proto::InspectionStep::from_str_name,
            );
            assert_eq!(inspection_step(value).unwrap(), Some(*step));
        }
        for outcome in InspectionOutcome::ALL {
            let value = named_to_proto(
                "INSPECTION_OUTCOME_",
                outcome.as_str(),
                proto::InspectionOutcome::from_str_name,
            );
            assert_eq!(inspection_outcome(value).unwrap(), Some(*outcome));
        }
    }
}

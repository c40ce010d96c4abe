//! Inspection messages and their enums.

use crate::domain::inspection::{Inspection, InspectionOutcome, InspectionStatus, InspectionStep};
use crate::grpc::cases::case_step;
use crate::grpc::compliance::convert::compliance_status;
use crate::grpc::convert::{NamedInContract, day, named_in_contract, region_text, timestamp};
use crate::proto;

named_in_contract! {
    InspectionStep => proto::InspectionStep, "INSPECTION_STEP_";
    InspectionStatus => proto::InspectionStatus, "INSPECTION_STATUS_";
    InspectionOutcome => proto::InspectionOutcome, "INSPECTION_OUTCOME_";
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
        status: inspection.status.to_proto(),
        outcome: inspection.outcome.map_or(0, |outcome| outcome.to_proto()),
        response_due: inspection.response_due.map(day).unwrap_or_default(),
        open_time: Some(timestamp(inspection.opened_at)),
        close_time: inspection.closed_at.map(timestamp),
        history: inspection.history.into_iter().map(case_step).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::convert::assert_round_trips;

    #[test]
    fn inspection_enums_round_trip_through_the_contract() {
        assert_round_trips(InspectionStatus::ALL);
        assert_round_trips(InspectionStep::ALL);
        assert_round_trips(InspectionOutcome::ALL);
    }
}

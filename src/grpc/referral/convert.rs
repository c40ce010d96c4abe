//! Referral messages and their enums.

use crate::domain::referral::{Referral, ReferralStatus, ReferralStep, Stats};
use crate::error::ApiError;
use crate::grpc::cases::case_step;
use crate::grpc::compliance::convert::{
    category_to_proto, compliance_status, programme_group_to_proto, report,
};
use crate::grpc::convert::{
    day, named_from_proto, named_to_proto, optional_enum, region_text, timestamp,
};
use crate::proto;

pub fn referral_step(value: i32) -> Result<Option<ReferralStep>, ApiError> {
    let parsed = named_from_proto(
        value,
        "REFERRAL_STEP_",
        proto::ReferralStep::as_str_name,
        ReferralStep::from_stored,
    );
    optional_enum(value, "step", parsed)
}

pub fn referral_status(value: i32) -> Result<Option<ReferralStatus>, ApiError> {
    let parsed = named_from_proto(
        value,
        "REFERRAL_STATUS_",
        proto::ReferralStatus::as_str_name,
        ReferralStatus::from_stored,
    );
    optional_enum(value, "status", parsed)
}

/// A referral; `with_evidence` false leaves the frozen evidence out (listings, the feed).
pub fn referral(referral: Referral, today: time::Date, with_evidence: bool) -> proto::Referral {
    proto::Referral {
        overdue: referral.is_overdue(today),
        etag: crate::domain::employer::etag_of(referral.revision),
        id: referral.id.to_string(),
        skk_number: referral.skk_number,
        skk_date: day(referral.skk_date),
        employer_id: referral.employer_id.to_string(),
        region: region_text(&referral.region_code),
        bpjs_agency_id: referral.bpjs_agency,
        kejari_agency_id: referral.kejari_agency,
        programme_group: programme_group_to_proto(referral.group).into(),
        categories: referral
            .evidence
            .status
            .categories
            .iter()
            .map(|category| category_to_proto(*category).into())
            .collect(),
        amount_claimed: referral.amount_claimed,
        amount_recovered: referral.amount_recovered,
        status: named_to_proto(
            "REFERRAL_STATUS_",
            referral.status.as_str(),
            proto::ReferralStatus::from_str_name,
        ),
        due_date: referral.due_on.map(day).unwrap_or_default(),
        instalments: referral
            .instalments
            .into_iter()
            .map(|instalment| proto::Instalment {
                due_date: day(instalment.due_on),
                amount: instalment.amount,
            })
            .collect(),
        evidence: with_evidence.then(|| proto::ReferralEvidence {
            status: Some(compliance_status(referral.evidence.status)),
            reports: referral.evidence.reports.into_iter().map(report).collect(),
        }),
        previous_referral_id: referral
            .previous_referral
            .map(|id| id.to_string())
            .unwrap_or_default(),
        open_time: Some(timestamp(referral.opened_at)),
        close_time: referral.closed_at.map(timestamp),
        history: referral.history.into_iter().map(case_step).collect(),
    }
}

pub fn referral_stats(region: Option<&str>, stats: Stats) -> proto::ReferralStats {
    proto::ReferralStats {
        region: region.and_then(region_text),
        opened: stats.opened,
        resolved_complied: stats.resolved_complied,
        resolved_paid: stats.resolved_paid,
        failed: stats.failed,
        open: stats.open,
        success_rate_percent: stats.success_rate_percent,
        median_days_to_resolution: stats.median_days_to_resolution,
        amount_recovered: stats.amount_recovered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::convert::named_to_proto;

    /// The generic conversions rely on the proto names being the domain names with a prefix: a
    /// value that does not round trip would silently become UNSPECIFIED.
    #[test]
    fn referral_enums_round_trip_through_the_contract() {
        for status in ReferralStatus::ALL {
            let value = named_to_proto(
                "REFERRAL_STATUS_",
                status.as_str(),
                proto::ReferralStatus::from_str_name,
            );
            assert_eq!(referral_status(value).unwrap(), Some(*status));
        }
        for step in ReferralStep::ALL {
            let value = named_to_proto(
                "REFERRAL_STEP_",
                step.as_str(),
                proto::ReferralStep::from_str_name,
            );
            assert_eq!(referral_step(value).unwrap(), Some(*step));
        }
        assert!(referral_step(99).is_err());
        assert_eq!(referral_step(0).unwrap(), None);
    }
}

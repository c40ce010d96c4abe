//! Referral messages and their enums.

use crate::domain::referral::{Referral, ReferralStatus, ReferralStep, Stats};
use crate::grpc::cases::case_step;
use crate::grpc::compliance::convert::{
    category_to_proto, compliance_status, programme_group_to_proto, report,
};
use crate::grpc::convert::{NamedInContract, day, named_in_contract, region_text, timestamp};
use crate::proto;

named_in_contract! {
    ReferralStep => proto::ReferralStep, "REFERRAL_STEP_";
    ReferralStatus => proto::ReferralStatus, "REFERRAL_STATUS_";
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
        status: referral.status.to_proto(),
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
    use crate::grpc::convert::assert_round_trips;

    #[test]
    fn referral_enums_round_trip_through_the_contract() {
        assert_round_trips(ReferralStatus::ALL);
        assert_round_trips(ReferralStep::ALL);
        assert!(ReferralStep::optional(99, "step").is_err());
    }
}

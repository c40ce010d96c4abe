//! Change feed events, which carry the records of the services whose changes they announce.

use time::OffsetDateTime;

use crate::domain::compliance::today_wib;
use crate::domain::feed::{FeedEvent, FeedEventType, FeedPayload};
use crate::grpc::compliance::convert::{compliance_status, report};
use crate::grpc::convert::timestamp;
use crate::grpc::employer::convert::employer;
use crate::grpc::inspection::convert::inspection;
use crate::grpc::referral::convert::referral;
use crate::grpc::sanction::convert::sanction_track;
use crate::proto;

pub fn feed_event_type(value: i32) -> Result<FeedEventType, String> {
    use proto::FeedEventType as P;
    match P::try_from(value) {
        Ok(P::EmployerUpserted) => Ok(FeedEventType::EmployerUpserted),
        Ok(P::ReportSubmitted) => Ok(FeedEventType::ReportSubmitted),
        Ok(P::ReportSuperseded) => Ok(FeedEventType::ReportSuperseded),
        Ok(P::StatusChanged) => Ok(FeedEventType::StatusChanged),
        Ok(P::InspectionChanged) => Ok(FeedEventType::InspectionChanged),
        Ok(P::SanctionChanged) => Ok(FeedEventType::SanctionChanged),
        Ok(P::ReferralChanged) => Ok(FeedEventType::ReferralChanged),
        Ok(P::Unspecified) | Err(_) => Err(format!("{value} is not a feed event type")),
    }
}

pub fn feed_event(event: FeedEvent) -> proto::FeedEvent {
    use proto::feed_event::Payload;
    let event_type = match event.event_type {
        FeedEventType::EmployerUpserted => proto::FeedEventType::EmployerUpserted,
        FeedEventType::ReportSubmitted => proto::FeedEventType::ReportSubmitted,
        FeedEventType::ReportSuperseded => proto::FeedEventType::ReportSuperseded,
        FeedEventType::StatusChanged => proto::FeedEventType::StatusChanged,
        FeedEventType::InspectionChanged => proto::FeedEventType::InspectionChanged,
        FeedEventType::SanctionChanged => proto::FeedEventType::SanctionChanged,
        FeedEventType::ReferralChanged => proto::FeedEventType::ReferralChanged,
    };
    let micros = i128::from(event.time_us);
    let today = today_wib(OffsetDateTime::now_utc());
    proto::FeedEvent {
        cursor: event.seq,
        r#type: event_type.into(),
        commit_time: OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000)
            .ok()
            .map(timestamp),
        employer_id: event.employer_id.to_string(),
        region: Some(proto::RegionCode {
            code: event.region_code,
        }),
        source_agency_id: event.source_agency,
        payload: Some(match event.payload {
            FeedPayload::Employer(e) => Payload::Employer(employer(e)),
            FeedPayload::Report(r) => Payload::Report(report(r)),
            FeedPayload::Status(s) => Payload::Status(compliance_status(s)),
            FeedPayload::Inspection(i) => Payload::Inspection(inspection(i, today)),
            FeedPayload::Sanction(t) => Payload::SanctionTrack(sanction_track(t)),
            FeedPayload::Referral(r) => Payload::Referral(referral(r, today, false)),
        }),
    }
}

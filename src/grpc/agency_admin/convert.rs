//! Agency, key and grant messages.

use prost_types::Timestamp;
use time::OffsetDateTime;

use crate::auth::jwk::PublicJwk;
use crate::domain::agency::{Agency, AgencyKey, AgencyKind, Grant};
use crate::domain::region::RegionCode;
use crate::grpc::convert::{programme_to_proto, timestamp};
use crate::proto;

pub fn agency_kind(value: i32) -> Result<AgencyKind, String> {
    use proto::AgencyKind as P;
    match P::try_from(value) {
        Ok(P::Disnaker) => Ok(AgencyKind::Disnaker),
        Ok(P::DisnakertransProvinsi) => Ok(AgencyKind::DisnakertransProvinsi),
        Ok(P::BpjsKesehatan) => Ok(AgencyKind::BpjsKesehatan),
        Ok(P::BpjsKetenagakerjaan) => Ok(AgencyKind::BpjsKetenagakerjaan),
        Ok(P::Kejaksaan) => Ok(AgencyKind::Kejaksaan),
        Ok(P::LicensingOffice) => Ok(AgencyKind::LicensingOffice),
        Ok(P::Forum) => Ok(AgencyKind::Forum),
        Ok(P::Admin) => Ok(AgencyKind::Admin),
        Ok(P::Unspecified) => Err("the agency kind is required".into()),
        Err(_) => Err(format!("{value} is not an agency kind")),
    }
}

pub fn agency_kind_to_proto(kind: AgencyKind) -> proto::AgencyKind {
    use proto::AgencyKind as P;
    match kind {
        AgencyKind::Disnaker => P::Disnaker,
        AgencyKind::DisnakertransProvinsi => P::DisnakertransProvinsi,
        AgencyKind::BpjsKesehatan => P::BpjsKesehatan,
        AgencyKind::BpjsKetenagakerjaan => P::BpjsKetenagakerjaan,
        AgencyKind::Kejaksaan => P::Kejaksaan,
        AgencyKind::LicensingOffice => P::LicensingOffice,
        AgencyKind::Forum => P::Forum,
        AgencyKind::Admin => P::Admin,
    }
}

/// A timestamp that must lie in the future (an expiry).
pub fn future_time(at: &Timestamp) -> Result<OffsetDateTime, String> {
    let nanos = i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos);
    let time = OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| "the time is out of range".to_owned())?;
    if time <= OffsetDateTime::now_utc() {
        return Err("the time must be in the future".into());
    }
    Ok(time)
}

fn region(code: &RegionCode) -> proto::RegionCode {
    proto::RegionCode {
        code: code.as_str().to_owned(),
    }
}

pub fn agency(agency: Agency) -> proto::Agency {
    proto::Agency {
        id: agency.id.as_str().to_owned(),
        kind: agency_kind_to_proto(agency.kind).into(),
        display_name: agency.display_name,
        home_region: agency.home_region.as_ref().map(region),
        disabled: agency.disabled_at.is_some(),
        create_time: Some(timestamp(agency.created_at)),
        disable_time: agency.disabled_at.map(timestamp),
    }
}

pub fn public_key(jwk: &PublicJwk) -> proto::PublicKey {
    proto::PublicKey {
        kty: jwk.key_type().into(),
        crv: jwk.curve().into(),
        x: jwk.x.clone(),
        y: jwk.y.clone().unwrap_or_default(),
        kid: jwk.thumbprint(),
        alg: jwk.algorithm.as_str().into(),
    }
}

pub fn agency_key(key: AgencyKey) -> proto::AgencyKey {
    proto::AgencyKey {
        public_key: PublicJwk::parse(&key.public_jwk)
            .ok()
            .as_ref()
            .map(public_key),
        kid: key.kid,
        agency_id: key.agency_id.as_str().to_owned(),
        create_time: Some(timestamp(key.created_at)),
        revoke_time: key.revoked_at.map(timestamp),
    }
}

pub fn grant(grant: Grant) -> proto::Grant {
    proto::Grant {
        id: grant.id.to_string(),
        agency_id: grant.agency_id.as_str().to_owned(),
        scope: grant.scope.as_str().to_owned(),
        regions: grant.regions.iter().map(region).collect(),
        programmes: grant
            .programmes
            .iter()
            .map(|p| programme_to_proto(*p).into())
            .collect(),
        expire_time: grant.expires_at.map(timestamp),
        create_time: Some(timestamp(grant.created_at)),
        granted_by: grant.granted_by.as_str().to_owned(),
        revoke_time: grant.revoked_at.map(timestamp),
        revoked_by: grant
            .revoked_by
            .map(|by| by.as_str().to_owned())
            .unwrap_or_default(),
    }
}

//! Conversions every service uses: times, programmes, days and regions as text, and the generic
//! mapping between domain enums and the proto enums whose names are the domain's with a prefix.
//! Each service keeps the conversions of its own messages in its `convert` module.

use prost_types::Timestamp;
use time::OffsetDateTime;

use crate::domain::scope::Programme;
use crate::error::ApiError;
use crate::proto;

pub fn timestamp(at: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: at.unix_timestamp(),
        // Always in 0..1e9, which fits an i32.
        nanos: at.nanosecond() as i32,
    }
}

pub fn programme(value: i32) -> Result<Programme, String> {
    use proto::Programme as P;
    match P::try_from(value) {
        Ok(P::Jkn) => Ok(Programme::Jkn),
        Ok(P::Jkk) => Ok(Programme::Jkk),
        Ok(P::Jkm) => Ok(Programme::Jkm),
        Ok(P::Jht) => Ok(Programme::Jht),
        Ok(P::Jp) => Ok(Programme::Jp),
        Ok(P::Jkp) => Ok(Programme::Jkp),
        Ok(P::Unspecified) | Err(_) => Err(format!("{value} is not a programme")),
    }
}

pub(crate) fn programme_to_proto(programme: Programme) -> proto::Programme {
    use proto::Programme as P;
    match programme {
        Programme::Jkn => P::Jkn,
        Programme::Jkk => P::Jkk,
        Programme::Jkm => P::Jkm,
        Programme::Jht => P::Jht,
        Programme::Jp => P::Jp,
        Programme::Jkp => P::Jkp,
    }
}

/// A domain enum as the matching proto enum, whose names are the domain's with `prefix`.
pub(crate) fn named_to_proto<P: Into<i32>>(
    prefix: &str,
    name: &str,
    parse: fn(&str) -> Option<P>,
) -> i32 {
    parse(&format!("{prefix}{name}")).map_or(0, Into::into)
}

/// A proto enum value as the matching domain enum; `None` for UNSPECIFIED and unknown numbers.
pub(crate) fn named_from_proto<P, D>(
    value: i32,
    prefix: &str,
    name_of: fn(&P) -> &'static str,
    parse: fn(&str) -> Option<D>,
) -> Option<D>
where
    P: TryFrom<i32>,
{
    let proto = P::try_from(value).ok()?;
    parse(name_of(&proto).strip_prefix(prefix)?)
}

/// An optional enum field: 0 is "not given", a number outside the enum is invalid.
pub(crate) fn optional_enum<D>(
    value: i32,
    field: &str,
    parsed: Option<D>,
) -> Result<Option<D>, ApiError> {
    match (value, parsed) {
        (0, _) => Ok(None),
        (_, Some(parsed)) => Ok(Some(parsed)),
        (_, None) => Err(ApiError::invalid(
            field,
            format!("{value} is not a valid value"),
        )),
    }
}

pub(crate) fn day(date: time::Date) -> String {
    date.to_string()
}

pub(crate) fn region_text(code: &str) -> Option<proto::RegionCode> {
    Some(proto::RegionCode {
        code: code.to_owned(),
    })
}

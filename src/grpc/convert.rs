//! Conversions every service uses: times, programmes, days and regions as text, and the mapping
//! between domain enums and the proto enums whose names are the domain's with a prefix.
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

/// A domain enum that the contract names with a prefix: `InspectionStatus::NotaI` is
/// `INSPECTION_STATUS_NOTA_I`. Implemented by [`named_in_contract!`].
pub trait NamedInContract: Sized {
    /// The contract's number for the value; 0 (UNSPECIFIED) if the contract lacks the name.
    fn to_proto(&self) -> i32;

    /// The value a contract number names; `None` for UNSPECIFIED and unknown numbers.
    fn from_proto(value: i32) -> Option<Self>;

    /// The value's name as stored (`NOTA_I`).
    fn stored_name(&self) -> &'static str;

    /// An optional enum field: 0 is "not given", a number outside the enum is invalid.
    fn optional(value: i32, field: &str) -> Result<Option<Self>, ApiError> {
        match (value, Self::from_proto(value)) {
            (0, _) => Ok(None),
            (_, Some(parsed)) => Ok(Some(parsed)),
            (_, None) => Err(ApiError::invalid(
                field,
                format!("{value} is not a valid value"),
            )),
        }
    }
}

/// Implements [`NamedInContract`] for enums made by `named_enum!`, each paired with the proto
/// enum whose names are its own after `prefix`.
macro_rules! named_in_contract {
    ($($domain:ty => $proto:ty, $prefix:literal;)+) => {
        $(
            impl $crate::grpc::convert::NamedInContract for $domain {
                fn to_proto(&self) -> i32 {
                    <$proto>::from_str_name(&format!("{}{}", $prefix, self.as_str()))
                        .map_or(0, Into::into)
                }

                fn from_proto(value: i32) -> Option<Self> {
                    let proto = <$proto>::try_from(value).ok()?;
                    Self::from_stored(proto.as_str_name().strip_prefix($prefix)?)
                }

                fn stored_name(&self) -> &'static str {
                    self.as_str()
                }
            }
        )+
    };
}
pub(crate) use named_in_contract;

/// Checks that every value of a [`NamedInContract`] enum survives the trip through the contract:
/// one that does not would silently become UNSPECIFIED.
#[cfg(test)]
pub(crate) fn assert_round_trips<T>(all: &[T])
where
    T: NamedInContract + Copy + PartialEq + std::fmt::Debug,
{
    for value in all {
        assert_eq!(
            T::optional(value.to_proto(), "field").unwrap(),
            Some(*value)
        );
    }
    assert_eq!(T::optional(0, "field").unwrap(), None);
}

pub(crate) fn day(date: time::Date) -> String {
    date.to_string()
}

pub(crate) fn region_text(code: &str) -> Option<proto::RegionCode> {
    Some(proto::RegionCode {
        code: code.to_owned(),
    })
}

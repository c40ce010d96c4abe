//! The three lifecycles under one type, for what holds cases of every kind: the store, its
//! listings and the feed. It sits above [`super::inspection`], [`super::sanction`] and
//! [`super::referral`]; what they share sits below them, in [`super::cases`].

use serde::{Deserialize, Serialize};

use super::cases::{Case, named_enum};
use super::inspection::Inspection;
use super::referral::Referral;
use super::sanction::SanctionTrack;

/// A case of any kind, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaseRecord {
    Inspection(Inspection),
    Sanction(SanctionTrack),
    Referral(Referral),
}

named_enum!(
    /// The kinds of case.
    CaseKind {
        Inspection => "inspection",
        Sanction => "sanction",
        Referral => "referral",
    }
);

impl CaseRecord {
    pub fn kind(&self) -> CaseKind {
        match self {
            Self::Inspection(_) => CaseKind::Inspection,
            Self::Sanction(_) => CaseKind::Sanction,
            Self::Referral(_) => CaseKind::Referral,
        }
    }

    /// What every kind of case answers alike.
    pub fn case(&self) -> &dyn Case {
        match self {
            Self::Inspection(case) => case,
            Self::Sanction(case) => case,
            Self::Referral(case) => case,
        }
    }

    pub fn case_mut(&mut self) -> &mut dyn Case {
        match self {
            Self::Inspection(case) => case,
            Self::Sanction(case) => case,
            Self::Referral(case) => case,
        }
    }
}

/// A lifecycle as one kind of [`CaseRecord`].
pub trait KindOfCase: Case + Sized {
    const KIND: CaseKind;
    /// How a refusal names a case of this kind ("sanction track").
    const NAME: &'static str;

    fn into_record(self) -> CaseRecord;

    /// The case if it is of this kind.
    fn from_record(record: CaseRecord) -> Option<Self>;
}

macro_rules! kind_of_case {
    ($type:ty, $variant:ident, $name:literal) => {
        impl KindOfCase for $type {
            const KIND: CaseKind = CaseKind::$variant;
            const NAME: &'static str = $name;

            fn into_record(self) -> CaseRecord {
                CaseRecord::$variant(self)
            }

            fn from_record(record: CaseRecord) -> Option<Self> {
                match record {
                    CaseRecord::$variant(case) => Some(case),
                    _ => None,
                }
            }
        }
    };
}

kind_of_case!(Inspection, Inspection, "inspection");
kind_of_case!(SanctionTrack, Sanction, "sanction track");
kind_of_case!(Referral, Referral, "referral");

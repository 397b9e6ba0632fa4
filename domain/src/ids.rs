use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("{kind} must be a positive integer, got {value}")]
    NotPositive { kind: &'static str, value: i64 },
}

macro_rules! positive_id {
    ($name:ident, $kind:literal) => {
        /// A database identity: always positive, so zero or a negative value never reaches a query.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "crate::whole_number::WholeNumber", into = "i64")]
        pub struct $name(i64);

        impl $name {
            pub fn parse(value: i64) -> Result<Self, IdError> {
                if value > 0 {
                    Ok(Self(value))
                } else {
                    Err(IdError::NotPositive { kind: $kind, value })
                }
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl TryFrom<i64> for $name {
            type Error = IdError;
            fn try_from(value: i64) -> Result<Self, IdError> {
                Self::parse(value)
            }
        }

        impl TryFrom<crate::whole_number::WholeNumber> for $name {
            type Error = IdError;
            fn try_from(value: crate::whole_number::WholeNumber) -> Result<Self, IdError> {
                Self::parse(value.0)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

positive_id!(UserId, "user id");
positive_id!(PolicyId, "coupon policy id");
positive_id!(CouponId, "coupon id");
positive_id!(PointId, "ledger entry id");
positive_id!(ProductId, "product id");
positive_id!(OptionId, "product option id");
positive_id!(OrderId, "order id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_negative_ids_are_rejected() {
        assert!(UserId::parse(0).is_err());
        assert!(UserId::parse(-5).is_err());
        assert_eq!(UserId::parse(7).map(UserId::get), Ok(7));
    }

    #[test]
    fn deserializing_a_non_positive_id_fails() {
        assert!(serde_json::from_str::<PolicyId>("0").is_err());
        assert_eq!(serde_json::from_str::<PolicyId>("12").map(PolicyId::get).ok(), Some(12));
    }
}

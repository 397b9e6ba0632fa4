use serde::{Deserialize, Serialize};
use std::fmt;

/// The most points one earn, use or cancel may move: a typo in an operator's earn is not a fortune.
pub const MAX_POINTS_PER_ENTRY: i64 = 10_000_000;

/// A number of points moved by one ledger entry: a whole number in `1..=MAX_POINTS_PER_ENTRY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct PointAmount(i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("amount must be a whole number from 1 to {MAX_POINTS_PER_ENTRY}, got {0}")]
pub struct PointAmountError(pub i64);

impl PointAmount {
    pub fn parse(raw: i64) -> Result<Self, PointAmountError> {
        if (1..=MAX_POINTS_PER_ENTRY).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(PointAmountError(raw))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for PointAmount {
    type Error = PointAmountError;
    fn try_from(raw: i64) -> Result<Self, PointAmountError> {
        Self::parse(raw)
    }
}

impl From<PointAmount> for i64 {
    fn from(amount: PointAmount) -> i64 {
        amount.0
    }
}

impl fmt::Display for PointAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_positive_amounts_within_the_limit_parse() {
        assert_eq!(PointAmount::parse(1).map(PointAmount::get), Ok(1));
        assert_eq!(PointAmount::parse(MAX_POINTS_PER_ENTRY).map(PointAmount::get), Ok(MAX_POINTS_PER_ENTRY));
        for bad in [0, -5, MAX_POINTS_PER_ENTRY + 1, i64::MIN] {
            assert_eq!(PointAmount::parse(bad), Err(PointAmountError(bad)));
        }
    }

    #[test]
    fn json_amounts_must_be_integers_in_range() {
        assert!(serde_json::from_str::<PointAmount>("10").is_ok());
        for bad in ["0", "-1", "10.5", "\"10\"", "99999999999"] {
            assert!(serde_json::from_str::<PointAmount>(bad).is_err(), "{bad} parsed");
        }
    }
}

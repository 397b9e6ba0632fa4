use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a lot of points came from. Admin grants are spent first (then the soonest expiry, then the
/// oldest); a REGRANT lot gives back a cancelled use's points whose own lot had expired meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LotSource {
    Admin,
    Purchase,
    Regrant,
}

/// The longest an earn may stay spendable: five years.
pub const MAX_VALID_DAYS: u16 = 5 * 365 + 1;

/// How many days an earn's points stay spendable: `1..=MAX_VALID_DAYS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Validity(u16);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("validity must be a whole number of days from 1 to {MAX_VALID_DAYS}, got {0}")]
pub struct ValidityError(pub i64);

impl Validity {
    pub fn days(days: i64) -> Result<Self, ValidityError> {
        u16::try_from(days).ok().filter(|d| (1..=MAX_VALID_DAYS).contains(d)).map(Self).ok_or(ValidityError(days))
    }

    /// The instant a lot made at `from` stops being spendable.
    pub fn expiry_from(self, from: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        from + chrono::Duration::days(i64::from(self.0))
    }
}

impl TryFrom<i64> for Validity {
    type Error = ValidityError;
    fn try_from(days: i64) -> Result<Self, ValidityError> {
        Self::days(days)
    }
}

impl From<Validity> for i64 {
    fn from(validity: Validity) -> i64 {
        i64::from(validity.0)
    }
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} days", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validity_is_one_day_to_five_years() {
        assert!(Validity::days(1).is_ok());
        assert!(Validity::days(i64::from(MAX_VALID_DAYS)).is_ok());
        for bad in [0, -1, i64::from(MAX_VALID_DAYS) + 1, i64::MAX] {
            assert_eq!(Validity::days(bad), Err(ValidityError(bad)));
        }
    }

    #[test]
    fn a_lot_expires_its_validity_after_it_was_made() {
        let made = chrono::DateTime::parse_from_rfc3339("2026-01-31T10:00:00Z").expect("time").to_utc();
        let expiry = Validity::days(30).expect("valid").expiry_from(made);
        assert_eq!(expiry.to_rfc3339(), "2026-03-02T10:00:00+00:00");
    }
}

//! Whole numbers as JSON Schema counts them: `784`, `784.0` and, in a path or query string, `"784"` or
//! `"784.0"` are all the integer 784. The API's contract says `integer`, and clients (or generators
//! working from it) may write any of these; `784.5` or `"7e2"` stay refused.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// The largest magnitude an `f64` holds exactly (2^53): beyond it `784.0`-style input is refused.
const EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WholeNumber(pub i64);

impl From<WholeNumber> for i64 {
    fn from(number: WholeNumber) -> i64 {
        number.0
    }
}

impl<'de> serde::Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WholeNumberVisitor).map(WholeNumber)
    }
}

/// `#[serde(deserialize_with = "whole_number::int")]` for a plain `i64` field.
pub fn int<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    deserializer.deserialize_any(WholeNumberVisitor)
}

/// The same for an `Option<i64>` field (with `#[serde(default)]`).
pub fn optional_int<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    <Option<WholeNumber> as serde::Deserialize>::deserialize(deserializer).map(|number| number.map(i64::from))
}

/// `value` as an integer when it is one that an `f64` holds exactly.
pub fn integral(value: f64) -> Option<i64> {
    (value.fract() == 0.0 && value.abs() <= EXACT_FLOAT).then_some(value as i64)
}

struct WholeNumberVisitor;

impl Visitor<'_> for WholeNumberVisitor {
    type Value = i64;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<i64, E> {
        Ok(value)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<i64, E> {
        i64::try_from(value).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<i64, E> {
        integral(value).ok_or_else(|| E::invalid_value(de::Unexpected::Float(value), &self))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<i64, E> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let integral = fraction.bytes().all(|digit| digit == b'0') && !whole.is_empty();
        let digits = whole.strip_prefix('-').unwrap_or(whole);
        match whole.parse::<i64>() {
            Ok(value) if integral && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(value),
            _ => Err(E::invalid_value(de::Unexpected::Str(text), &self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WholeNumber;
    use serde::de::{value::StrDeserializer, IntoDeserializer};

    fn from_str(text: &str) -> Result<i64, serde::de::value::Error> {
        let deserializer: StrDeserializer<serde::de::value::Error> = text.into_deserializer();
        super::int(deserializer)
    }

    #[test]
    fn integral_spellings_are_integers_and_the_rest_are_refused() {
        assert_eq!(from_str("784"), Ok(784));
        assert_eq!(from_str("784.0"), Ok(784));
        assert_eq!(from_str("-3.00"), Ok(-3));
        for refused in ["784.5", "7e2", "", ".0", "+5", "0x10", "1 "] {
            assert!(from_str(refused).is_err(), "{refused:?} was taken");
        }
        let json: Vec<WholeNumber> = serde_json::from_str("[1, 1.0, 9007199254740992.0]").expect("integers");
        assert_eq!(json, [WholeNumber(1), WholeNumber(1), WholeNumber(9_007_199_254_740_992)]);
        assert!(serde_json::from_str::<WholeNumber>("1.5").is_err());
        assert!(serde_json::from_str::<WholeNumber>("18446744073709551615").is_err());
    }
}

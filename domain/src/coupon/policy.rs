use crate::validation::{FieldError, FieldErrors};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Bounds that keep a policy sane: no free-money typo survives validation.
pub const MAX_FIXED_DISCOUNT: i64 = 10_000_000;
pub const MAX_AMOUNT: i64 = 1_000_000_000;
pub const MAX_QUANTITY: i32 = 10_000_000;
pub const MAX_VALID_DAYS: i32 = 3_650;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DiscountType {
    FixedAmount,
    Percentage,
}

impl DiscountType {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscountType::FixedAmount => "FIXED_AMOUNT",
            DiscountType::Percentage => "PERCENTAGE",
        }
    }
}

/// A coupon policy as an admin creates it. The fields are `Option`s so that a missing one is reported
/// by name with the rest, not as a parse error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({ "name": "Black Friday 10%", "discountType": "PERCENTAGE", "discountValue": 10, "minimumOrderAmount": 30000, "maximumDiscountAmount": 5000, "totalQuantity": 100000, "startTime": "2026-11-27T00:00:00Z", "endTime": "2026-11-28T00:00:00Z", "couponValidDays": 7 })))]
pub struct PolicyInput {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::validation::text_schema::<200>, required = true))]
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = DiscountType))]
    pub discount_type: Option<DiscountType>,
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = i64, minimum = 1, maximum = 10_000_000))]
    pub discount_value: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000_000))]
    pub minimum_order_amount: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000_000))]
    pub maximum_discount_amount: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = i32, minimum = 1, maximum = 10_000_000))]
    pub total_quantity: Option<i32>,
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = DateTime<Utc>))]
    pub start_time: Option<DateTime<Utc>>,
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = DateTime<Utc>))]
    pub end_time: Option<DateTime<Utc>>,
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = i32, minimum = 1, maximum = 3_650))]
    pub coupon_valid_days: Option<i32>,
}

/// A policy that passed every rule; only this reaches the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPolicy {
    pub name: String,
    pub discount_type: DiscountType,
    pub discount_value: i64,
    pub minimum_order_amount: i64,
    pub maximum_discount_amount: Option<i64>,
    pub total_quantity: i32,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub coupon_valid_days: i32,
}

impl PolicyInput {
    pub fn validate(self) -> Result<NewPolicy, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let name = errors.text("name", self.name.as_deref(), 200);
        let discount_type = errors.required("discountType", self.discount_type);
        let max_discount_value = match discount_type {
            Some(DiscountType::Percentage) => 100,
            _ => MAX_FIXED_DISCOUNT,
        };
        let discount_value = errors.in_range("discountValue", self.discount_value, 1, max_discount_value);
        let minimum_order_amount =
            errors.in_range("minimumOrderAmount", Some(self.minimum_order_amount.unwrap_or(0)), 0, MAX_AMOUNT);
        if let Some(maximum) = self.maximum_discount_amount {
            errors.in_range("maximumDiscountAmount", Some(maximum), 1, MAX_AMOUNT);
        }
        let total_quantity = errors.in_range("totalQuantity", self.total_quantity, 1, MAX_QUANTITY);
        let start_time = errors.required("startTime", self.start_time);
        let end_time = errors.required("endTime", self.end_time);
        if let (Some(start), Some(end)) = (start_time, end_time) {
            if end <= start {
                errors.add("endTime", "must be after startTime");
            }
        }
        let coupon_valid_days = errors.in_range("couponValidDays", self.coupon_valid_days, 1, MAX_VALID_DAYS);
        errors.into_result(|| NewPolicy {
            name: name.unwrap_or_default(),
            discount_type: discount_type.unwrap_or(DiscountType::FixedAmount),
            discount_value: discount_value.unwrap_or_default(),
            minimum_order_amount: minimum_order_amount.unwrap_or_default(),
            maximum_discount_amount: self.maximum_discount_amount,
            total_quantity: total_quantity.unwrap_or_default(),
            start_time: start_time.unwrap_or_default(),
            end_time: end_time.unwrap_or_default(),
            coupon_valid_days: coupon_valid_days.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn valid() -> PolicyInput {
        let now = Utc::now();
        PolicyInput {
            name: Some("Black Friday".into()),
            discount_type: Some(DiscountType::Percentage),
            discount_value: Some(10),
            minimum_order_amount: Some(10_000),
            maximum_discount_amount: Some(5_000),
            total_quantity: Some(1_000),
            start_time: Some(now),
            end_time: Some(now + Duration::hours(1)),
            coupon_valid_days: Some(7),
        }
    }

    fn fields(result: Result<NewPolicy, Vec<FieldError>>) -> Vec<&'static str> {
        result.expect_err("invalid").into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_complete_policy_validates() {
        let policy = valid().validate().expect("valid");
        assert_eq!((policy.discount_value, policy.total_quantity), (10, 1_000));
    }

    #[test]
    fn every_missing_field_is_named() {
        let missing = fields(PolicyInput::default().validate());
        for field in
            ["name", "discountType", "discountValue", "totalQuantity", "startTime", "endTime", "couponValidDays"]
        {
            assert!(missing.contains(&field), "{field} not reported in {missing:?}");
        }
    }

    #[test]
    fn a_percentage_above_100_and_a_reversed_window_are_rejected() {
        let mut input = valid();
        input.discount_value = Some(101);
        input.end_time = input.start_time;
        assert_eq!(fields(input.validate()), vec!["discountValue", "endTime"]);
    }

    #[test]
    fn quantities_and_amounts_must_be_positive() {
        let mut input = valid();
        input.total_quantity = Some(0);
        input.maximum_discount_amount = Some(-1);
        input.minimum_order_amount = Some(-5);
        assert_eq!(fields(input.validate()), vec!["minimumOrderAmount", "maximumDiscountAmount", "totalQuantity"]);
    }
}

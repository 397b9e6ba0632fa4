//! Pricing an order: the subtotal from catalogue prices, then the coupon, then points. Integers only
//! (whole won), and every amount bounded so that the breakdown always adds up and never goes negative.

use crate::coupon::DiscountType;
use chrono::{DateTime, Utc};

/// What an order needs to know of a coupon the caller holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CouponTerms {
    pub discount_type: DiscountType,
    pub discount_value: i64,
    pub minimum_order_amount: i64,
    pub maximum_discount_amount: Option<i64>,
    pub valid_until: DateTime<Utc>,
    /// The order it serves, if it is used.
    pub used_by: Option<i64>,
}

/// Why a coupon cannot serve this order (its reason is part of the 409's detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotApplicable {
    #[error("the coupon is already used by order {0}")]
    AlreadyUsed(i64),
    #[error("the coupon expired")]
    Expired,
    #[error("the subtotal {subtotal} is below the coupon's minimum order amount {minimum}")]
    BelowMinimum { subtotal: i64, minimum: i64 },
}

impl NotApplicable {
    /// A stable reason code for clients.
    pub fn reason(self) -> &'static str {
        match self {
            NotApplicable::AlreadyUsed(_) => "ALREADY_USED",
            NotApplicable::Expired => "EXPIRED",
            NotApplicable::BelowMinimum { .. } => "BELOW_MINIMUM",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceBreakdown {
    pub subtotal: i64,
    pub coupon_discount: i64,
    pub points_used: i64,
    pub amount_to_pay: i64,
}

/// Points asked for beyond what the coupon leaves to pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{asked} points asked, but only {payable} is left to pay after the coupon")]
pub struct PointsAboveRemainder {
    pub asked: i64,
    pub payable: i64,
}

/// The breakdown of an order of `subtotal` with an optional coupon and `points` to spend. The balance
/// is checked where it is guarded (the ledger's row lock), not here.
pub fn price_order(
    subtotal: i64,
    coupon: Option<&CouponTerms>,
    points: i64,
    now: DateTime<Utc>,
) -> Result<Result<PriceBreakdown, PointsAboveRemainder>, NotApplicable> {
    let coupon_discount = match coupon {
        None => 0,
        Some(terms) => discount(terms, subtotal, now)?,
    };
    let payable = subtotal - coupon_discount;
    if points > payable {
        return Ok(Err(PointsAboveRemainder { asked: points, payable }));
    }
    Ok(Ok(PriceBreakdown { subtotal, coupon_discount, points_used: points, amount_to_pay: payable - points }))
}

fn discount(terms: &CouponTerms, subtotal: i64, now: DateTime<Utc>) -> Result<i64, NotApplicable> {
    if let Some(order) = terms.used_by {
        return Err(NotApplicable::AlreadyUsed(order));
    }
    if now >= terms.valid_until {
        return Err(NotApplicable::Expired);
    }
    if subtotal < terms.minimum_order_amount {
        return Err(NotApplicable::BelowMinimum { subtotal, minimum: terms.minimum_order_amount });
    }
    let raw = match terms.discount_type {
        DiscountType::FixedAmount => terms.discount_value,
        // Rounded down: the shop never gives away a fraction of a won it did not promise.
        DiscountType::Percentage => subtotal * terms.discount_value / 100,
    };
    let capped = terms.maximum_discount_amount.map_or(raw, |cap| raw.min(cap));
    Ok(capped.min(subtotal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn terms(discount_type: DiscountType, value: i64, minimum: i64, cap: Option<i64>) -> CouponTerms {
        CouponTerms {
            discount_type,
            discount_value: value,
            minimum_order_amount: minimum,
            maximum_discount_amount: cap,
            valid_until: Utc::now() + Duration::days(1),
            used_by: None,
        }
    }

    fn priced(subtotal: i64, coupon: Option<&CouponTerms>, points: i64) -> PriceBreakdown {
        price_order(subtotal, coupon, points, Utc::now()).expect("applicable").expect("points fit")
    }

    #[test]
    fn a_percentage_is_rounded_down_and_capped_by_the_maximum_discount() {
        let ten_percent_capped = terms(DiscountType::Percentage, 10, 0, Some(3_000));
        assert_eq!(priced(12_345, Some(&ten_percent_capped), 0).coupon_discount, 1_234);
        assert_eq!(priced(50_000, Some(&ten_percent_capped), 0).coupon_discount, 3_000);
    }

    #[test]
    fn a_fixed_amount_never_discounts_more_than_the_subtotal() {
        let breakdown = priced(3_000, Some(&terms(DiscountType::FixedAmount, 5_000, 0, None)), 0);
        assert_eq!((breakdown.coupon_discount, breakdown.amount_to_pay), (3_000, 0));
    }

    #[test]
    fn points_pay_at_most_what_the_coupon_leaves() {
        let coupon = terms(DiscountType::FixedAmount, 1_000, 0, None);
        let breakdown = priced(10_000, Some(&coupon), 9_000);
        assert_eq!(
            breakdown,
            PriceBreakdown { subtotal: 10_000, coupon_discount: 1_000, points_used: 9_000, amount_to_pay: 0 }
        );
        let too_many = price_order(10_000, Some(&coupon), 9_001, Utc::now()).expect("applicable");
        assert_eq!(too_many, Err(PointsAboveRemainder { asked: 9_001, payable: 9_000 }));
    }

    #[test]
    fn a_used_expired_or_below_minimum_coupon_is_not_applicable() {
        let mut coupon = terms(DiscountType::FixedAmount, 1_000, 20_000, None);
        let below = price_order(19_999, Some(&coupon), 0, Utc::now());
        assert_eq!(below, Err(NotApplicable::BelowMinimum { subtotal: 19_999, minimum: 20_000 }));
        coupon.valid_until = Utc::now() - Duration::seconds(1);
        assert_eq!(price_order(30_000, Some(&coupon), 0, Utc::now()), Err(NotApplicable::Expired));
        coupon.used_by = Some(7);
        assert_eq!(price_order(30_000, Some(&coupon), 0, Utc::now()), Err(NotApplicable::AlreadyUsed(7)));
    }

    #[test]
    fn every_breakdown_adds_up() {
        for (subtotal, value, points) in [(0, 5, 0), (1, 100, 0), (99_999, 33, 12_345), (10, 50, 5)] {
            let coupon = terms(DiscountType::Percentage, value, 0, None);
            let b = priced(subtotal, Some(&coupon), points.min(subtotal - subtotal * value / 100));
            assert_eq!(b.amount_to_pay, b.subtotal - b.coupon_discount - b.points_used);
            assert!(b.amount_to_pay >= 0 && b.coupon_discount <= b.subtotal);
        }
    }
}

/// The points a confirmed purchase earns: `rate_bps` basis points (100 = 1%) of what was paid, rounded
/// down (a fraction of a point is never given), and at most what one ledger entry may hold.
pub fn purchase_points(paid: i64, rate_bps: u32) -> i64 {
    let points = i128::from(paid.max(0)) * i128::from(rate_bps) / 10_000;
    i64::try_from(points).unwrap_or(i64::MAX).min(crate::points::MAX_POINTS_PER_ENTRY)
}

#[cfg(test)]
mod purchase_points_tests {
    use super::purchase_points;

    #[test]
    fn purchase_points_are_the_rate_of_the_amount_paid_rounded_down_and_capped() {
        assert_eq!(purchase_points(12_345, 100), 123);
        assert_eq!(purchase_points(99, 100), 0, "less than a point is nothing");
        assert_eq!(purchase_points(0, 100), 0);
        assert_eq!(purchase_points(10_000, 0), 0);
        assert_eq!(purchase_points(10_000, 10_000), 10_000);
        assert_eq!(purchase_points(i64::MAX, 10_000), crate::points::MAX_POINTS_PER_ENTRY);
    }
}

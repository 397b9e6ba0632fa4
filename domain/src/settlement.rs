//! Daily sales settlement's money rules: how one order's coupon discount, points, payment and the
//! provider's fee are split over its items, so that the item lines add up exactly to the order, and what
//! the provider's fee on a payment is.
//!
//! Splitting is pro rata with the largest remainder: each item first gets the whole won of its share
//! (rounded down), then the won left over go one each to the items whose shares lost the largest
//! fractions (the earlier item on a tie). The coupon is split over the line totals; the points over what
//! each line still costs after its coupon share, and the provider's fee over what each line paid, so no
//! line ever goes below zero.

pub mod payments;

use crate::shop::PaymentMethod;
use std::collections::HashMap;

/// One item line's amounts for one settlement event (a reversal carries them negated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineAmounts {
    /// Unit price × quantity.
    pub gross: i64,
    pub coupon_discount: i64,
    pub points: i64,
    /// What the buyer paid the provider for this line: gross − coupon − points.
    pub paid: i64,
    /// The provider's fee on what was paid.
    pub fee: i64,
    /// What the shop receives for the line: paid − fee.
    pub net: i64,
}

impl std::ops::Add for LineAmounts {
    type Output = LineAmounts;

    /// Line by line: the amounts of several lines together.
    fn add(self, other: LineAmounts) -> LineAmounts {
        LineAmounts {
            gross: self.gross + other.gross,
            coupon_discount: self.coupon_discount + other.coupon_discount,
            points: self.points + other.points,
            paid: self.paid + other.paid,
            fee: self.fee + other.fee,
            net: self.net + other.net,
        }
    }
}

/// What an order's row says it took, and the fee the provider keeps of its payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderAmounts {
    pub subtotal: i64,
    pub coupon_discount: i64,
    pub points_used: i64,
    pub amount_paid: i64,
    pub fee: i64,
}

/// Why an order's amounts cannot be split over its items: its row contradicts itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("the order has no items")]
    NoItems,
    #[error("a line total is negative")]
    NegativeLine,
    #[error("the items add up to {items}, the order's subtotal is {subtotal}")]
    SubtotalDiffers { items: i64, subtotal: i64 },
    #[error("coupon {coupon}, points {points} and payment {paid} do not add up to the subtotal {subtotal}")]
    AmountsDoNotAddUp { subtotal: i64, coupon: i64, points: i64, paid: i64 },
    #[error("an amount is negative, or the fee {fee} exceeds the payment {paid}")]
    OutOfRange { fee: i64, paid: i64 },
}

/// Splits `order` over items whose line totals are `line_totals` (in the order's item order).
pub fn split_order(order: &OrderAmounts, line_totals: &[i64]) -> Result<Vec<LineAmounts>, SplitError> {
    if line_totals.is_empty() {
        return Err(SplitError::NoItems);
    }
    if line_totals.iter().any(|&total| total < 0) {
        return Err(SplitError::NegativeLine);
    }
    let items: i64 = line_totals.iter().sum();
    if items != order.subtotal {
        return Err(SplitError::SubtotalDiffers { items, subtotal: order.subtotal });
    }
    let OrderAmounts { subtotal, coupon_discount: coupon, points_used: points, amount_paid: paid, fee } = *order;
    if coupon < 0 || points < 0 || paid < 0 || fee < 0 || fee > paid {
        return Err(SplitError::OutOfRange { fee, paid });
    }
    if coupon + points + paid != subtotal {
        return Err(SplitError::AmountsDoNotAddUp { subtotal, coupon, points, paid });
    }
    let coupons = allocate(coupon, line_totals);
    let after_coupon: Vec<i64> = line_totals.iter().zip(&coupons).map(|(total, c)| total - c).collect();
    let point_shares = allocate(points, &after_coupon);
    let paid_shares: Vec<i64> = after_coupon.iter().zip(&point_shares).map(|(rest, p)| rest - p).collect();
    let fees = allocate(fee, &paid_shares);
    Ok((0..line_totals.len())
        .map(|i| LineAmounts {
            gross: line_totals[i],
            coupon_discount: coupons[i],
            points: point_shares[i],
            paid: paid_shares[i],
            fee: fees[i],
            net: paid_shares[i] - fees[i],
        })
        .collect())
}

/// Splits `amount` (0 ≤ amount ≤ Σ weights, weights ≥ 0) pro rata to `weights` with the largest
/// remainder: the shares add up to `amount` exactly and none exceeds its weight.
pub fn allocate(amount: i64, weights: &[i64]) -> Vec<i64> {
    let total: i128 = weights.iter().map(|&w| i128::from(w)).sum();
    if total == 0 || amount == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<i128> = weights.iter().map(|&w| i128::from(amount) * i128::from(w)).collect();
    let mut shares: Vec<i64> = exact.iter().map(|e| (e / total) as i64).collect();
    let left = amount - shares.iter().sum::<i64>();
    let mut by_fraction: Vec<usize> = (0..weights.len()).collect();
    // Largest lost fraction first; the sort is stable, so an earlier item wins a tie.
    by_fraction.sort_by_key(|&i| std::cmp::Reverse(exact[i] % total));
    for &i in by_fraction.iter().take(left as usize) {
        shares[i] += 1;
    }
    shares
}

/// The provider's fee on a payment, in basis points (1/100 of a percent) of the amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRate(u16);

impl FeeRate {
    pub fn from_basis_points(bps: u16) -> Result<Self, FeeRatesError> {
        if bps > 10_000 {
            return Err(FeeRatesError(format!("{bps} basis points is more than the whole payment")));
        }
        Ok(FeeRate(bps))
    }

    pub fn basis_points(self) -> u16 {
        self.0
    }

    /// The fee on `amount`, rounded toward zero to the won (as the provider computes it: it never
    /// charges a fraction, so a refund's fee mirrors its sale's).
    pub fn fee_on(self, amount: i64) -> i64 {
        (i128::from(amount) * i128::from(self.0) / 10_000) as i64
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PAYMENT_FEE_RATES: {0}")]
pub struct FeeRatesError(String);

/// The fee rate of every payment method (`PAYMENT_FEE_RATES`, e.g. `CARD=250,BANK_TRANSFER=150,...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeRates(HashMap<PaymentMethodKey, FeeRate>);

/// A payment method as a map key (the stored enum is not Hash).
type PaymentMethodKey = &'static str;

impl FeeRates {
    /// Parses `METHOD=BASIS_POINTS` pairs separated by commas; every payment method must have one.
    pub fn parse(raw: &str) -> Result<Self, FeeRatesError> {
        let mut rates = HashMap::new();
        for pair in raw.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
            let (method, bps) =
                pair.split_once('=').ok_or_else(|| FeeRatesError(format!("{pair:?} is not METHOD=BASIS_POINTS")))?;
            let method = method_key(method.trim())
                .ok_or_else(|| FeeRatesError(format!("{method:?} is not a payment method ({})", METHODS.join(", "))))?;
            let bps: u16 =
                bps.trim().parse().map_err(|_| FeeRatesError(format!("{bps:?} is not whole basis points")))?;
            if rates.insert(method, FeeRate::from_basis_points(bps)?).is_some() {
                return Err(FeeRatesError(format!("{method} is given twice")));
            }
        }
        if let Some(missing) = METHODS.iter().find(|method| !rates.contains_key(*method)) {
            return Err(FeeRatesError(format!("{missing} has no rate")));
        }
        Ok(FeeRates(rates))
    }

    pub fn of(&self, method: PaymentMethod) -> FeeRate {
        self.0[method_name(method)]
    }
}

/// As [`FeeRates::parse`] reads them, methods in a fixed order.
impl std::fmt::Display for FeeRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs: Vec<String> = METHODS.iter().map(|method| format!("{method}={}", self.0[method].0)).collect();
        f.write_str(&pairs.join(","))
    }
}

const METHODS: [&str; 4] = ["CARD", "BANK_TRANSFER", "VIRTUAL_ACCOUNT", "MOBILE"];

fn method_name(method: PaymentMethod) -> PaymentMethodKey {
    match method {
        PaymentMethod::Card => METHODS[0],
        PaymentMethod::BankTransfer => METHODS[1],
        PaymentMethod::VirtualAccount => METHODS[2],
        PaymentMethod::Mobile => METHODS[3],
    }
}

fn method_key(name: &str) -> Option<PaymentMethodKey> {
    METHODS.into_iter().find(|method| *method == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_won_left_over_goes_to_the_largest_lost_fraction() {
        // 100 over 1:1:1 is 33.33 each: one won is left, and the first item (on a tie) takes it.
        assert_eq!(allocate(100, &[1, 1, 1]), vec![34, 33, 33]);
        // 10 over 3:7 is exact.
        assert_eq!(allocate(10, &[3, 7]), vec![3, 7]);
        // 5 over 1:2 is 1.67 and 3.33: the first lost more, so it takes the won.
        assert_eq!(allocate(5, &[1, 2]), vec![2, 3]);
        assert_eq!(allocate(0, &[5, 5]), vec![0, 0]);
    }

    #[test]
    fn an_order_splits_into_lines_that_add_up() {
        let order = OrderAmounts {
            subtotal: 30_000,
            coupon_discount: 3_000,
            points_used: 1_000,
            amount_paid: 26_000,
            fee: 650,
        };
        let lines = split_order(&order, &[10_000, 20_000]).expect("a consistent order");
        assert_eq!(
            lines[0],
            LineAmounts { gross: 10_000, coupon_discount: 1_000, points: 333, paid: 8_667, fee: 217, net: 8_450 }
        );
        assert_eq!(
            lines[1],
            LineAmounts { gross: 20_000, coupon_discount: 2_000, points: 667, paid: 17_333, fee: 433, net: 16_900 }
        );
    }

    #[test]
    fn an_order_that_contradicts_itself_is_refused() {
        let order = OrderAmounts { subtotal: 100, coupon_discount: 10, points_used: 0, amount_paid: 80, fee: 0 };
        assert!(matches!(split_order(&order, &[100]), Err(SplitError::AmountsDoNotAddUp { .. })));
        let order = OrderAmounts { subtotal: 100, coupon_discount: 0, points_used: 0, amount_paid: 100, fee: 0 };
        assert_eq!(split_order(&order, &[60, 30]), Err(SplitError::SubtotalDiffers { items: 90, subtotal: 100 }));
        assert_eq!(split_order(&order, &[]), Err(SplitError::NoItems));
    }

    #[test]
    fn fee_rates_name_every_method_once() {
        let rates = FeeRates::parse("CARD=250, BANK_TRANSFER=150,VIRTUAL_ACCOUNT=100,MOBILE=350").expect("valid");
        assert_eq!(rates.of(PaymentMethod::Mobile).basis_points(), 350);
        assert_eq!(FeeRates::parse(&rates.to_string()), Ok(rates.clone()), "{rates} reads back");
        assert_eq!(rates.of(PaymentMethod::Card).fee_on(10_001), 250, "rounded toward zero");
        assert_eq!(rates.of(PaymentMethod::Card).fee_on(-10_001), -250, "a refund's fee mirrors its sale's");
        let missing = FeeRates::parse("CARD=250").expect_err("three methods have no rate");
        assert!(missing.to_string().contains("BANK_TRANSFER has no rate"), "{missing}");
        assert!(FeeRates::parse("CARD=250,CARD=1,BANK_TRANSFER=1,VIRTUAL_ACCOUNT=1,MOBILE=1").is_err());
        assert!(FeeRates::parse("CASH=1").is_err());
        assert!(FeeRates::parse("CARD=10001,BANK_TRANSFER=1,VIRTUAL_ACCOUNT=1,MOBILE=1").is_err());
    }

    /// An order as the shop can place it: line totals, a coupon of at most the subtotal, points of at
    /// most the rest, the remainder paid, and a fee rate.
    fn orders() -> impl Strategy<Value = (Vec<i64>, OrderAmounts)> {
        (prop::collection::vec((0i64..=10_000_000, 1i64..=999), 1..=50), any::<u64>(), any::<u64>(), 0u16..=10_000)
            .prop_map(|(lines, coupon_seed, points_seed, bps)| {
                let totals: Vec<i64> = lines.iter().map(|(price, quantity)| price * quantity).collect();
                let subtotal: i64 = totals.iter().sum();
                let coupon = (coupon_seed % (subtotal as u64 + 1)) as i64;
                let points = (points_seed % ((subtotal - coupon) as u64 + 1)) as i64;
                let paid = subtotal - coupon - points;
                let fee = FeeRate::from_basis_points(bps).expect("within bounds").fee_on(paid);
                (
                    totals,
                    OrderAmounts { subtotal, coupon_discount: coupon, points_used: points, amount_paid: paid, fee },
                )
            })
    }

    proptest! {
        #[test]
        fn lines_add_up_to_the_order_exactly_and_none_is_negative((totals, order) in orders()) {
            let lines = split_order(&order, &totals).expect("a placeable order splits");
            let sum = |field: fn(&LineAmounts) -> i64| lines.iter().map(field).sum::<i64>();
            prop_assert_eq!(sum(|l| l.gross), order.subtotal);
            prop_assert_eq!(sum(|l| l.coupon_discount), order.coupon_discount);
            prop_assert_eq!(sum(|l| l.points), order.points_used);
            prop_assert_eq!(sum(|l| l.paid), order.amount_paid);
            prop_assert_eq!(sum(|l| l.fee), order.fee);
            for (line, total) in lines.iter().zip(&totals) {
                prop_assert!(line.coupon_discount >= 0 && line.points >= 0 && line.paid >= 0 && line.fee >= 0 && line.net >= 0);
                prop_assert_eq!(line.gross, *total);
                prop_assert_eq!(line.coupon_discount + line.points + line.paid, line.gross);
                prop_assert_eq!(line.paid - line.fee, line.net);
            }
        }

        #[test]
        fn each_share_is_within_one_won_of_its_exact_pro_rata_share(
            weights in prop::collection::vec(0i64..=1_000_000_000, 1..=50), seed in any::<u64>()
        ) {
            let total: i64 = weights.iter().sum();
            let amount = (seed % (total as u64 + 1)) as i64;
            let shares = allocate(amount, &weights);
            prop_assert_eq!(shares.iter().sum::<i64>(), amount);
            for (share, weight) in shares.iter().zip(&weights) {
                let exact = i128::from(amount) * i128::from(*weight);
                let floor = if total == 0 { 0 } else { (exact / i128::from(total)) as i64 };
                prop_assert!(*share == floor || *share == floor + 1, "share {} of exact floor {}", share, floor);
                prop_assert!(share <= weight);
            }
        }
    }
}

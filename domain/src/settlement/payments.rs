//! Payment reconciliation's rule: how the provider's settlement lines of a day are matched with the
//! payments we recorded for it, and what counts as a mismatch. Both sides are keyed by payment key and
//! event (a sale, or a cancel that gave the money back); every difference is reported with both sides.

use super::FeeRates;
use crate::shop::PaymentMethod;
use chrono::{Days, NaiveDate};
use std::collections::HashMap;

/// A sale (money taken) or a cancel (money given back, negative on the provider's lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentEvent {
    Sale,
    Cancel,
}

/// A payment event we recorded on the day: an approval, or a refund the provider confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurPayment {
    pub payment_key: String,
    pub order_id: i64,
    pub event: PaymentEvent,
    /// Signed as the provider's lines are: negative for a cancel.
    pub amount: i64,
    pub method: PaymentMethod,
}

/// One of the provider's settlement lines for the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderLine {
    pub payment_key: String,
    pub event: PaymentEvent,
    pub amount: i64,
    pub fee: i64,
    pub paid_out_date: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MismatchKind {
    /// The provider took (or gave back) money we have no record of on this day.
    MissingHere,
    /// We recorded money taken (or given back) that the provider's lines do not show.
    MissingThere,
    AmountDiffers,
    /// The provider gave the money back; we still count it as paid.
    StatusDiffers,
    /// The provider's fee is not what the method's rate gives.
    FeeDiffers,
    /// The payout is not on the day the provider's terms say.
    PayoutDateDiffers,
}

impl MismatchKind {
    pub const ALL: [MismatchKind; 6] = [
        MismatchKind::MissingHere,
        MismatchKind::MissingThere,
        MismatchKind::AmountDiffers,
        MismatchKind::StatusDiffers,
        MismatchKind::FeeDiffers,
        MismatchKind::PayoutDateDiffers,
    ];

    /// As stored (`payment_reconciliation_mismatches.kind`).
    pub fn code(self) -> &'static str {
        match self {
            MismatchKind::MissingHere => "MISSING_HERE",
            MismatchKind::MissingThere => "MISSING_THERE",
            MismatchKind::AmountDiffers => "AMOUNT_DIFFERS",
            MismatchKind::StatusDiffers => "STATUS_DIFFERS",
            MismatchKind::FeeDiffers => "FEE_DIFFERS",
            MismatchKind::PayoutDateDiffers => "PAYOUT_DATE_DIFFERS",
        }
    }
}

/// One difference, with what each side says (None: that side has no line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub kind: MismatchKind,
    pub payment_key: String,
    pub event: PaymentEvent,
    pub ours: Option<OurPayment>,
    pub theirs: Option<ProviderLine>,
    /// The fee and payout date our terms expect, for the line we have.
    pub expected_fee: Option<i64>,
    pub expected_payout: Option<NaiveDate>,
}

/// The terms a day's lines are checked against.
#[derive(Debug, Clone)]
pub struct Terms<'a> {
    pub day: NaiveDate,
    pub rates: &'a FeeRates,
    /// Days from the sale to the payout.
    pub payout_days: u64,
}

/// What matching found: the mismatches, and how many lines agreed entirely.
#[derive(Debug, Default)]
pub struct Matched {
    pub agreed: usize,
    pub mismatches: Vec<Mismatch>,
}

/// Matches our payments of the day with the provider's lines of the day.
pub fn reconcile(ours: Vec<OurPayment>, theirs: Vec<ProviderLine>, terms: &Terms<'_>) -> Matched {
    let mut ours: HashMap<(String, PaymentEvent), OurPayment> =
        ours.into_iter().map(|p| ((p.payment_key.clone(), p.event), p)).collect();
    let mut matched = Matched::default();
    for line in theirs {
        let key = (line.payment_key.clone(), line.event);
        let Some(our) = ours.remove(&key) else {
            // A cancel there for a sale we hold as paid is a status difference; anything else unknown here.
            let kind = match line.event {
                PaymentEvent::Cancel => MismatchKind::StatusDiffers,
                PaymentEvent::Sale => MismatchKind::MissingHere,
            };
            matched.mismatches.push(mismatch(kind, key, None, Some(line), terms));
            continue;
        };
        let expected_fee = terms.rates.of(our.method).fee_on(our.amount);
        let expected_payout = terms.day.checked_add_days(Days::new(terms.payout_days));
        let mut kinds = Vec::new();
        if line.amount != our.amount {
            kinds.push(MismatchKind::AmountDiffers);
        }
        if line.fee != expected_fee {
            kinds.push(MismatchKind::FeeDiffers);
        }
        if Some(line.paid_out_date) != expected_payout {
            kinds.push(MismatchKind::PayoutDateDiffers);
        }
        if kinds.is_empty() {
            matched.agreed += 1;
        }
        for kind in kinds {
            matched.mismatches.push(mismatch(kind, key.clone(), Some(our.clone()), Some(line.clone()), terms));
        }
    }
    let mut left: Vec<OurPayment> = ours.into_values().collect();
    left.sort_by(|a, b| a.payment_key.cmp(&b.payment_key));
    for our in left {
        let key = (our.payment_key.clone(), our.event);
        matched.mismatches.push(mismatch(MismatchKind::MissingThere, key, Some(our), None, terms));
    }
    matched
}

fn mismatch(
    kind: MismatchKind,
    (payment_key, event): (String, PaymentEvent),
    ours: Option<OurPayment>,
    theirs: Option<ProviderLine>,
    terms: &Terms<'_>,
) -> Mismatch {
    Mismatch {
        kind,
        payment_key,
        event,
        expected_fee: ours.as_ref().map(|o| terms.rates.of(o.method).fee_on(o.amount)),
        expected_payout: ours.as_ref().and_then(|_| terms.day.checked_add_days(Days::new(terms.payout_days))),
        ours,
        theirs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates() -> FeeRates {
        FeeRates::parse("CARD=250,BANK_TRANSFER=150,VIRTUAL_ACCOUNT=100,MOBILE=350").expect("rates")
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 1).expect("a date")
    }

    fn ours(key: &str, event: PaymentEvent, amount: i64) -> OurPayment {
        OurPayment { payment_key: key.into(), order_id: 1, event, amount, method: PaymentMethod::Card }
    }

    fn theirs(key: &str, event: PaymentEvent, amount: i64) -> ProviderLine {
        let fee = amount * 250 / 10_000;
        ProviderLine { payment_key: key.into(), event, amount, fee, paid_out_date: day() + Days::new(2) }
    }

    fn kinds(matched: &Matched) -> Vec<(String, MismatchKind)> {
        matched.mismatches.iter().map(|m| (m.payment_key.clone(), m.kind)).collect()
    }

    #[test]
    fn a_clean_day_agrees_line_for_line() {
        let rates = rates();
        let terms = Terms { day: day(), rates: &rates, payout_days: 2 };
        let matched = reconcile(
            vec![ours("a", PaymentEvent::Sale, 10_000), ours("b", PaymentEvent::Cancel, -5_001)],
            vec![theirs("a", PaymentEvent::Sale, 10_000), theirs("b", PaymentEvent::Cancel, -5_001)],
            &terms,
        );
        assert_eq!((matched.agreed, kinds(&matched)), (2, vec![]));
    }

    #[test]
    fn every_kind_of_difference_is_reported_with_both_sides() {
        let rates = rates();
        let terms = Terms { day: day(), rates: &rates, payout_days: 2 };
        let mut fee = theirs("fee", PaymentEvent::Sale, 10_000);
        fee.fee += 1;
        let mut late = theirs("late", PaymentEvent::Sale, 10_000);
        late.paid_out_date = day() + Days::new(3);
        let matched = reconcile(
            vec![
                ours("gone", PaymentEvent::Sale, 1_000),
                ours("amount", PaymentEvent::Sale, 1_000),
                ours("fee", PaymentEvent::Sale, 10_000),
                ours("late", PaymentEvent::Sale, 10_000),
            ],
            vec![
                theirs("stranger", PaymentEvent::Sale, 7_000),
                theirs("amount", PaymentEvent::Sale, 1_100),
                theirs("cancelled-there", PaymentEvent::Cancel, -3_000),
                fee,
                late,
            ],
            &terms,
        );
        let mut found = kinds(&matched);
        found.sort();
        let mut expected = vec![
            ("stranger".to_owned(), MismatchKind::MissingHere),
            ("gone".to_owned(), MismatchKind::MissingThere),
            ("amount".to_owned(), MismatchKind::AmountDiffers),
            ("amount".to_owned(), MismatchKind::FeeDiffers),
            ("cancelled-there".to_owned(), MismatchKind::StatusDiffers),
            ("fee".to_owned(), MismatchKind::FeeDiffers),
            ("late".to_owned(), MismatchKind::PayoutDateDiffers),
        ];
        expected.sort();
        assert_eq!(found, expected);
        let amount = matched.mismatches.iter().find(|m| m.kind == MismatchKind::AmountDiffers).expect("amount");
        assert_eq!(
            (amount.ours.as_ref().map(|o| o.amount), amount.theirs.as_ref().map(|t| t.amount)),
            (Some(1_000), Some(1_100))
        );
        assert_eq!(matched.agreed, 0);
    }
}

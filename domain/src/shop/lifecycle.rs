//! The order lifecycle: one table decides every move an order can make, who may ask for it is the
//! caller's business. An order is PENDING_PAYMENT when placed (PAID at once when nothing is left to pay),
//! then PAID → SHIPPED → DELIVERED → CONFIRMED; it can end CANCELLED (before shipping), EXPIRED (unpaid
//! past its window) or REFUNDED (delivered, within the return window; or confirmed, by an after-sales
//! refund, which settlement books as a reversal on the day it happens).
//!
//! Stock, the coupon and the points are taken at placement and come back on exactly the moves that say
//! `releases`. Each of those ends in a final status, which no move leaves: so they come back once.

use super::OrderStatus;
use chrono::{DateTime, Duration, Utc};

/// What can be asked of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderAction {
    Pay,
    Ship,
    Deliver,
    /// Purchase confirmation (구매확정): the buyer accepts the goods; points are earned for it.
    Confirm,
    Cancel,
    Expire,
    Refund,
    /// An admin gives a confirmed purchase's money back (a return accepted after confirmation, a
    /// chargeback): no time limit, since the decision is the shop's.
    AfterSalesRefund,
}

impl OrderAction {
    pub const ALL: [OrderAction; 8] = [
        OrderAction::Pay,
        OrderAction::Ship,
        OrderAction::Deliver,
        OrderAction::Confirm,
        OrderAction::Cancel,
        OrderAction::Expire,
        OrderAction::Refund,
        OrderAction::AfterSalesRefund,
    ];

    /// The statuses this action can start from (the guard of the move's UPDATE).
    pub fn sources(self) -> Vec<OrderStatus> {
        OrderStatus::ALL.into_iter().filter(|&from| table(from, self).is_ok()).collect()
    }
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Confirmed,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::Refunded,
    ];

    /// No move leaves a final status.
    pub fn is_final(self) -> bool {
        OrderAction::ALL.into_iter().all(|action| table(self, action).is_err())
    }

    /// Whether the order still holds what it took (stock, coupon, points): every status but those
    /// reached by a releasing move.
    pub fn holds_goods(self) -> bool {
        !matches!(self, OrderStatus::Cancelled | OrderStatus::Expired | OrderStatus::Refunded)
    }
}

/// A move the table allows, and what it does besides changing the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub to: OrderStatus,
    /// Stock, the coupon and the points come back in the move's transaction.
    pub releases: bool,
    /// The money the provider took goes back to the buyer before the move commits.
    pub returns_payment: bool,
}

/// Why the table refuses a move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveRefusal {
    /// The order reached a final status; nothing more happens to it.
    Closed(OrderStatus),
    /// Payment is asked of an order that is not waiting for one.
    NotPayable(OrderStatus),
    /// Payment comes after the order's payment window closed (it expires instead).
    PaymentWindowClosed,
    /// Expiry is asked before the payment window closed.
    NotDue,
    /// A shipped order is not cancelled: once delivered, it can be refunded.
    RefundInstead,
    /// A refund is asked after the return window closed.
    ReturnWindowClosed,
    /// The action does not follow from this status (e.g. shipping an unpaid order).
    OutOfOrder(OrderStatus),
}

/// The facts a move may depend on besides the status, read with the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderFacts {
    pub now: DateTime<Utc>,
    pub payment_due_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub return_window: Duration,
    pub amount_to_pay: i64,
}

/// The one decision: may `action` move an order in `from`, given `facts`, and to where.
pub fn decide(from: OrderStatus, action: OrderAction, facts: &OrderFacts) -> Result<Move, MoveRefusal> {
    let mut allowed = table(from, action)?;
    match action {
        OrderAction::Pay if facts.now >= facts.payment_due_at => return Err(MoveRefusal::PaymentWindowClosed),
        OrderAction::Expire if facts.now < facts.payment_due_at => return Err(MoveRefusal::NotDue),
        OrderAction::Refund => {
            let delivered = facts.delivered_at.unwrap_or(facts.now);
            if facts.now - delivered > facts.return_window {
                return Err(MoveRefusal::ReturnWindowClosed);
            }
        }
        _ => {}
    }
    // An order with nothing to pay never went through the provider: there is no payment to return.
    allowed.returns_payment &= facts.amount_to_pay > 0;
    Ok(allowed)
}

/// The table by status alone: the time rules and the amount come on top, in [`decide`].
fn table(from: OrderStatus, action: OrderAction) -> Result<Move, MoveRefusal> {
    use OrderAction as A;
    use OrderStatus as S;
    let step = |to| Ok(Move { to, releases: false, returns_payment: false });
    let release = |to, returns_payment| Ok(Move { to, releases: true, returns_payment });
    match (from, action) {
        (S::Confirmed, A::AfterSalesRefund) => release(S::Refunded, true),
        (S::Confirmed | S::Cancelled | S::Expired | S::Refunded, _) => Err(MoveRefusal::Closed(from)),
        (S::PendingPayment, A::Pay) => step(S::Paid),
        (S::PendingPayment, A::Cancel) => release(S::Cancelled, false),
        (S::PendingPayment, A::Expire) => release(S::Expired, false),
        (S::Paid, A::Ship) => step(S::Shipped),
        (S::Paid, A::Cancel) => release(S::Cancelled, true),
        (S::Shipped, A::Deliver) => step(S::Delivered),
        (S::Shipped | S::Delivered, A::Cancel) => Err(MoveRefusal::RefundInstead),
        (S::Delivered, A::Confirm) => step(S::Confirmed),
        (S::Delivered, A::Refund) => release(S::Refunded, true),
        (_, A::Pay) => Err(MoveRefusal::NotPayable(from)),
        _ => Err(MoveRefusal::OutOfOrder(from)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderAction as A;
    use OrderStatus as S;

    fn facts() -> OrderFacts {
        let now = Utc::now();
        OrderFacts {
            now,
            payment_due_at: now + Duration::minutes(10),
            delivered_at: Some(now - Duration::days(1)),
            return_window: Duration::days(7),
            amount_to_pay: 10_000,
        }
    }

    /// Every status × every action, written out: the expected outcome of each of the 64 cells.
    #[test]
    fn every_status_and_action_has_the_expected_outcome() {
        use MoveRefusal as R;
        let step = |to| Ok(Move { to, releases: false, returns_payment: false });
        let release = |to, returns_payment| Ok(Move { to, releases: true, returns_payment });
        let expected = |from: S, action: A| -> Result<Move, MoveRefusal> {
            match (from, action) {
                (S::PendingPayment, A::Pay) => step(S::Paid),
                (S::PendingPayment, A::Ship | A::Deliver | A::Confirm | A::Refund | A::AfterSalesRefund) => {
                    Err(R::OutOfOrder(from))
                }
                (S::PendingPayment, A::Cancel) => release(S::Cancelled, false),
                (S::PendingPayment, A::Expire) => Err(R::NotDue),
                (S::Paid, A::Pay) => Err(R::NotPayable(S::Paid)),
                (S::Paid, A::Ship) => step(S::Shipped),
                (S::Paid, A::Deliver | A::Confirm | A::Expire | A::Refund | A::AfterSalesRefund) => {
                    Err(R::OutOfOrder(from))
                }
                (S::Paid, A::Cancel) => release(S::Cancelled, true),
                (S::Shipped, A::Pay) => Err(R::NotPayable(S::Shipped)),
                (S::Shipped, A::Deliver) => step(S::Delivered),
                (S::Shipped, A::Cancel) => Err(R::RefundInstead),
                (S::Shipped, A::Ship | A::Confirm | A::Expire | A::Refund | A::AfterSalesRefund) => {
                    Err(R::OutOfOrder(from))
                }
                (S::Delivered, A::Pay) => Err(R::NotPayable(S::Delivered)),
                (S::Delivered, A::Confirm) => step(S::Confirmed),
                (S::Delivered, A::Refund) => release(S::Refunded, true),
                (S::Delivered, A::Cancel) => Err(R::RefundInstead),
                (S::Delivered, A::Ship | A::Deliver | A::Expire | A::AfterSalesRefund) => Err(R::OutOfOrder(from)),
                (S::Confirmed, A::AfterSalesRefund) => release(S::Refunded, true),
                (S::Confirmed | S::Cancelled | S::Expired | S::Refunded, _) => Err(R::Closed(from)),
            }
        };
        let facts = facts();
        let mut cells = 0;
        for from in S::ALL {
            for action in A::ALL {
                assert_eq!(decide(from, action, &facts), expected(from, action), "{from:?} × {action:?}");
                cells += 1;
            }
        }
        assert_eq!(cells, 64);
    }

    #[test]
    fn payment_is_refused_once_the_window_closed_and_expiry_allowed_from_then_on() {
        let mut facts = facts();
        facts.now = facts.payment_due_at;
        assert_eq!(decide(S::PendingPayment, A::Pay, &facts), Err(MoveRefusal::PaymentWindowClosed));
        let expired = decide(S::PendingPayment, A::Expire, &facts).expect("due");
        assert_eq!((expired.to, expired.releases, expired.returns_payment), (S::Expired, true, false));
        facts.now -= Duration::milliseconds(1);
        assert!(decide(S::PendingPayment, A::Pay, &facts).is_ok());
        assert_eq!(decide(S::PendingPayment, A::Expire, &facts), Err(MoveRefusal::NotDue));
    }

    #[test]
    fn a_refund_is_allowed_up_to_the_end_of_the_return_window_only() {
        let mut facts = facts();
        let delivered = facts.now - facts.return_window;
        facts.delivered_at = Some(delivered);
        assert!(decide(S::Delivered, A::Refund, &facts).is_ok(), "the last instant of the window");
        facts.delivered_at = Some(delivered - Duration::seconds(1));
        assert_eq!(decide(S::Delivered, A::Refund, &facts), Err(MoveRefusal::ReturnWindowClosed));
    }

    #[test]
    fn an_order_with_nothing_to_pay_returns_no_payment() {
        let facts = OrderFacts { amount_to_pay: 0, ..facts() };
        assert!(!decide(S::Paid, A::Cancel, &facts).expect("cancellable").returns_payment);
        assert!(!decide(S::Delivered, A::Refund, &facts).expect("refundable").returns_payment);
    }

    #[test]
    fn releases_lead_to_final_statuses_only_so_they_happen_once() {
        let facts = OrderFacts { payment_due_at: Utc::now() - Duration::minutes(1), ..facts() };
        for from in S::ALL {
            for action in A::ALL {
                if let Ok(step) = decide(from, action, &facts) {
                    assert_eq!(step.releases, step.to.is_final() && !step.to.holds_goods(), "{from:?} × {action:?}");
                    assert!(from.holds_goods(), "only an order holding its goods moves: {from:?}");
                }
            }
        }
        let finals: Vec<_> = S::ALL.into_iter().filter(|status| status.is_final()).collect();
        assert_eq!(finals, [S::Cancelled, S::Expired, S::Refunded]);
    }

    #[test]
    fn each_action_names_the_statuses_it_starts_from() {
        assert_eq!(A::Pay.sources(), [S::PendingPayment]);
        assert_eq!(A::Cancel.sources(), [S::PendingPayment, S::Paid]);
        assert_eq!(A::Expire.sources(), [S::PendingPayment]);
        assert_eq!(A::Refund.sources(), [S::Delivered]);
        assert_eq!(A::Confirm.sources(), [S::Delivered]);
        assert_eq!(A::AfterSalesRefund.sources(), [S::Confirmed]);
    }
}

//! Orders: placing one is ONE transaction (prices from the catalogue, the coupon used, points spent, stock
//! taken, events appended); every later move is another (`lifecycle`), and the moves that end an order
//! early (cancel, expiry, refund) undo exactly what the placement took, once.
//!
//! Lock order, the same on every path so that no two transactions wait on each other in a cycle: the
//! idempotency key, the user's cart (its user row, `carts::lock_cart`, taken by every writer of cart lines)
//! and lines, the order row (a move), the coupon, the point balance, and last
//! the stock rows in option id order. Stock goes last because it is the one row many buyers share: it is
//! held only for its UPDATE and the commit.

use crate::points::cache::BalanceChange;

mod bulk;
mod deposit;
mod late;
mod lifecycle;
mod payment;
mod place;
mod read;
mod refund;
mod resolution;

pub use bulk::{confirm_delivered, expire_unattempted, BulkActor, IdSlice};
pub use deposit::{account_of, close_waiting_account, on_deposit, Account, AccountClosed, DepositCallback, Deposited};
pub use lifecycle::{
    history_of, move_order, HistoryRow, LifecycleRules, MoveFailure, MoveRequest, OrderActor, Shipment,
};
pub use payment::{
    begin as begin_payment, latest_attempt, payment_order_id, settle as settle_payment, Attempt, Began, Outcome,
    PayRefusal,
};
pub use place::{place, LineSource, OrderLines, OrderRefusal, OrderRequest, Shipping};
pub use read::{order, orders_of, OrderItemRow, OrderRow, PlacedOrder};
pub use refund::{begin_refund, settle_refund, Refund, RefundOutcome};
pub use resolution::{resolve, Resolved};

/// Each option's stock as committed by an order or a cancel: (option id, units left), for the gate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockLeft(pub Vec<(i64, i32)>);

/// What an order's transaction changed besides the order, for the caches to learn once it committed: the
/// stock gate, and the balance cache (`BalanceCache::commit`) when points were spent or refunded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    pub stock_left: StockLeft,
    pub balance: Option<BalanceChange>,
}

impl Effects {
    /// Tells the caches what a committed background move changed: the balance it left and each option's
    /// stock (the API's own moves tell them on their commit path).
    pub async fn announce(&self, balances: &crate::points::cache::BalanceCache, stock_gate: &super::StockGate) {
        if let Some(change) = self.balance {
            balances.offer(change.user, change.version, change.balance).await;
        }
        if !self.stock_left.0.is_empty() {
            stock_gate.sync(&self.stock_left.0).await;
        }
    }
}

//! Moving an order along its lifecycle. The order row is locked and read, the table
//! (`domain::shop::decide`) decides from what it says, and one guarded UPDATE makes the move. The history
//! row, the outbox event and, for a releasing move, the coupon, the points and the stock coming back go
//! in the same transaction (the caller's, which commits them together).

use super::{
    read::{items_of, OrderItemRow, OrderRow, PlacedOrder},
    Effects, StockLeft,
};
use crate::{
    coupons::usage,
    outbox::{self, NewEvent},
    points::ledger,
};
use chrono::{Duration, Utc};
use domain::{
    shop::{decide, Move, MoveRefusal, OrderAction, OrderFacts, OrderStatus, PaymentMethod},
    OrderId, UserId,
};
use serde_json::json;
use sqlx::{PgExecutor, Postgres, Transaction};

/// Who asks for a move: a buyer may move only their own orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderActor {
    Buyer(UserId),
    Admin(UserId),
    /// A background pass (expiry, payment resolution, auto-confirmation), named for the history.
    System(&'static str),
}

impl OrderActor {
    pub(super) fn label(self) -> String {
        match self {
            OrderActor::Buyer(user) => format!("user:{user}"),
            OrderActor::Admin(user) => format!("admin:{user}"),
            OrderActor::System(what) => format!("system:{what}"),
        }
    }

    fn may_move(self, owner: i64) -> bool {
        match self {
            OrderActor::Buyer(user) => user.get() == owner,
            OrderActor::Admin(_) | OrderActor::System(_) => true,
        }
    }
}

/// The carrier and tracking number a shipment is recorded with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub carrier: String,
    pub tracking_number: String,
}

#[derive(Debug, Clone)]
pub struct MoveRequest {
    pub order: OrderId,
    pub action: OrderAction,
    pub actor: OrderActor,
    pub reason: Option<String>,
    /// Required by `Ship`, ignored otherwise.
    pub shipment: Option<Shipment>,
    /// Set once the provider gave the money back (a move that returns a payment needs it).
    pub payment_returned: bool,
    /// When the action was asked, if not now: a payment counts from when the buyer made it.
    pub asked_at: Option<chrono::DateTime<Utc>>,
    pub trace_id: Option<String>,
}

/// Why a move did not happen (the transaction wrote nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveFailure {
    /// No such order, or not the buyer's.
    UnknownOrder,
    Refused(MoveRefusal),
    /// The move gives money back and the provider has not returned it yet.
    PaymentNotReturned,
    /// A payment of the order is being asked of the provider: the order cannot end before its outcome.
    PaymentInProgress,
}

impl MoveRequest {
    /// Why the move is made, as the history and the provider are told: the reason given, or the move.
    pub fn stated_reason(&self) -> String {
        self.reason.clone().unwrap_or_else(|| format!("order {}: {:?}", self.order, self.action))
    }
}

/// The rules a move depends on besides the table.
#[derive(Debug, Clone, Copy)]
pub struct LifecycleRules {
    pub return_window: Duration,
    /// How long the points of a released order come back for where their lot expired meanwhile.
    pub points_validity: domain::points::Validity,
}

/// Makes `request`'s move in `tx` if the table allows it.
pub async fn move_order(
    tx: &mut Transaction<'_, Postgres>,
    request: MoveRequest,
    rules: LifecycleRules,
) -> anyhow::Result<Result<(PlacedOrder, Effects), MoveFailure>> {
    let Some(locked) = lock(tx, request.order).await? else { return Ok(Err(MoveFailure::UnknownOrder)) };
    move_locked(tx, locked, request, rules).await
}

/// `move_order` for an order whose row `tx` has locked already (with [`lock`]).
pub(super) async fn move_locked(
    tx: &mut Transaction<'_, Postgres>,
    locked: Locked,
    request: MoveRequest,
    rules: LifecycleRules,
) -> anyhow::Result<Result<(PlacedOrder, Effects), MoveFailure>> {
    let step = match decide_on(tx, &locked, &request, rules).await? {
        Ok(step) => step,
        Err(failure) => return Ok(Err(failure)),
    };
    if step.returns_payment && !request.payment_returned {
        return Ok(Err(MoveFailure::PaymentNotReturned));
    }
    if request.action == OrderAction::Ship && request.shipment.is_none() {
        anyhow::bail!("shipping order {} without a carrier and tracking number", request.order);
    }
    let order = write_move(tx, &request, locked.status, step).await?;
    let (reason, trace_id) = (request.reason.as_deref(), request.trace_id.as_deref());
    record(&mut **tx, order.id, Some(locked.status), step.to, request.actor, reason, trace_id).await?;
    let items = items_of(&mut **tx, order.id).await?;
    let units: Vec<_> = items.iter().map(|item| (item.option_id, item.quantity)).collect();
    outbox::append(&mut **tx, moved_event(&MovedFacts::from(&order), locked.status, &units, trace_id)).await?;
    let effects = if step.releases { release(tx, &order, &items, rules, trace_id).await? } else { Effects::default() };
    Ok(Ok((PlacedOrder { order, items }, effects)))
}

/// Locks the order and asks the table about `request`'s move, as every move (and the start of a refund)
/// does: the caller acts on the decision under the same lock.
pub(super) async fn decide_locked(
    tx: &mut Transaction<'_, Postgres>,
    request: &MoveRequest,
    rules: LifecycleRules,
) -> anyhow::Result<Result<(Locked, Move), MoveFailure>> {
    let Some(locked) = lock(tx, request.order).await? else { return Ok(Err(MoveFailure::UnknownOrder)) };
    Ok(decide_on(tx, &locked, request, rules).await?.map(|step| (locked, step)))
}

/// The table's answer for `request` on the order `locked` read, under its lock.
async fn decide_on(
    tx: &mut Transaction<'_, Postgres>,
    locked: &Locked,
    request: &MoveRequest,
    rules: LifecycleRules,
) -> anyhow::Result<Result<Move, MoveFailure>> {
    if !request.actor.may_move(locked.user_id) {
        return Ok(Err(MoveFailure::UnknownOrder));
    }
    // While the provider is asked to take or give back the order's money, the order waits for the answer.
    if super::payment::has_open_attempt(tx, request.order).await? {
        return Ok(Err(MoveFailure::PaymentInProgress));
    }
    let facts = OrderFacts {
        now: request.asked_at.unwrap_or_else(Utc::now),
        payment_due_at: locked.payment_due_at,
        delivered_at: locked.delivered_at,
        return_window: rules.return_window,
        amount_to_pay: locked.amount_to_pay,
    };
    Ok(decide(locked.status, request.action, &facts).map_err(MoveFailure::Refused))
}

/// What the table decides on, read under the order's row lock.
pub(super) struct Locked {
    user_id: i64,
    status: OrderStatus,
    payment_due_at: chrono::DateTime<Utc>,
    delivered_at: Option<chrono::DateTime<Utc>>,
    amount_to_pay: i64,
}

/// Locks the order's row (`FOR UPDATE`) and reads what the table decides on.
pub(super) async fn lock(tx: &mut Transaction<'_, Postgres>, order: OrderId) -> sqlx::Result<Option<Locked>> {
    sqlx::query_as!(
        Locked,
        r#"SELECT user_id, status AS "status: OrderStatus", payment_due_at, delivered_at, amount_to_pay
           FROM orders WHERE id = $1 FOR UPDATE"#,
        order.get()
    )
    .fetch_optional(&mut **tx)
    .await
}

/// The guarded UPDATE: it moves the order only from the status the decision was made on.
async fn write_move(
    tx: &mut Transaction<'_, Postgres>,
    request: &MoveRequest,
    from: OrderStatus,
    step: Move,
) -> anyhow::Result<OrderRow> {
    let shipment = request.shipment.as_ref();
    let moved = sqlx::query_as!(
        OrderRow,
        r#"UPDATE orders SET status = $3, status_changed_at = now(),
             paid_at = CASE WHEN $3 = 'PAID' THEN now() ELSE paid_at END,
             cancelled_at = CASE WHEN $3 = 'CANCELLED' THEN now() ELSE cancelled_at END,
             delivered_at = CASE WHEN $3 = 'DELIVERED' THEN now() ELSE delivered_at END,
             carrier = coalesce($4, carrier), tracking_number = coalesce($5, tracking_number)
           WHERE id = $1 AND status = $2
           RETURNING id, user_id, status AS "status: OrderStatus", subtotal, coupon_id, coupon_discount, points_used,
             point_use_id, amount_to_pay, receiver_name, phone, address,
             payment_method AS "payment_method: PaymentMethod", created_at, cancelled_at, payment_due_at, paid_at,
             carrier, tracking_number, delivered_at, status_changed_at, payment_round"#,
        request.order.get(),
        from as OrderStatus,
        step.to as OrderStatus,
        shipment.map(|s| s.carrier.as_str()),
        shipment.map(|s| s.tracking_number.as_str()),
    )
    .fetch_optional(&mut **tx)
    .await?;
    // The row is locked since it was read: another status here means a bug, not a race.
    moved.ok_or_else(|| anyhow::anyhow!("order {} left {from:?} under its row lock", request.order))
}

/// Appends one line of the order's history.
pub(super) async fn record<'e>(
    executor: impl PgExecutor<'e>,
    order: i64,
    from: Option<OrderStatus>,
    to: OrderStatus,
    actor: OrderActor,
    reason: Option<&str>,
    trace_id: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO order_status_history (order_id, from_status, to_status, actor, reason, trace_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
        order,
        from as Option<OrderStatus>,
        to as OrderStatus,
        actor.label(),
        reason,
        trace_id
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// The coupon, the points and the stock the order took come back (lock order: coupon, balance, stock).
async fn release(
    tx: &mut Transaction<'_, Postgres>,
    order: &OrderRow,
    items: &[OrderItemRow],
    rules: LifecycleRules,
    trace_id: Option<&str>,
) -> anyhow::Result<Effects> {
    let balance = give_back_coupon_and_points(tx, &MovedFacts::from(order), rules.points_validity, trace_id).await?;
    let stock_left = restock(tx, items).await?;
    Ok(Effects { stock_left, balance })
}

/// The coupon (AVAILABLE again) and the points (a CANCEL entry linked to the use, each part back into its
/// lot or regranted for `regrant`) an ending order took; the balance the refund left, for the cache.
pub(super) async fn give_back_coupon_and_points(
    tx: &mut Transaction<'_, Postgres>,
    order: &MovedFacts,
    regrant: domain::points::Validity,
    trace_id: Option<&str>,
) -> anyhow::Result<Option<crate::points::cache::BalanceChange>> {
    if let Some(coupon) = order.coupon_id {
        usage::mark_returned(tx, coupon, order.id, trace_id).await?;
    }
    let Some(point_use) = order.point_use_id else { return Ok(None) };
    let owner = UserId::parse(order.user_id)?;
    match ledger::reverse(tx, point_use, owner, -order.points_used, regrant, trace_id).await? {
        Ok(refund) => Ok(refund.balance_change()),
        Err(refusal) => anyhow::bail!("order {}'s points could not be refunded: {refusal:?}", order.id),
    }
}

/// Puts the items' units back, in option id order (items are read in that order), last in the transaction.
async fn restock(tx: &mut Transaction<'_, Postgres>, items: &[OrderItemRow]) -> sqlx::Result<StockLeft> {
    let mut stock_left = Vec::with_capacity(items.len());
    for item in items {
        let left = sqlx::query_scalar!(
            "UPDATE product_options SET stock = stock + $2 WHERE id = $1 RETURNING stock",
            item.option_id,
            item.quantity
        )
        .fetch_one(&mut **tx)
        .await?;
        stock_left.push((item.option_id, left));
    }
    Ok(StockLeft(stock_left))
}

/// `OrderPaid`, `OrderShipped`, …: the event of reaching `order.status`.
pub(super) fn event_type(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::PendingPayment => "OrderPlaced",
        OrderStatus::Paid => "OrderPaid",
        OrderStatus::Shipped => "OrderShipped",
        OrderStatus::Delivered => "OrderDelivered",
        OrderStatus::Confirmed => "OrderConfirmed",
        OrderStatus::Cancelled => "OrderCancelled",
        OrderStatus::Expired => "OrderExpired",
        OrderStatus::Refunded => "OrderRefunded",
    }
}

/// What an order's moved event tells of the order.
pub(super) struct MovedFacts {
    pub id: i64,
    pub user_id: i64,
    pub status: OrderStatus,
    pub amount_to_pay: i64,
    pub coupon_id: Option<i64>,
    pub points_used: i64,
    pub point_use_id: Option<i64>,
    pub status_changed_at: chrono::DateTime<Utc>,
}

impl From<&OrderRow> for MovedFacts {
    fn from(order: &OrderRow) -> Self {
        MovedFacts {
            id: order.id,
            user_id: order.user_id,
            status: order.status,
            amount_to_pay: order.amount_to_pay,
            coupon_id: order.coupon_id,
            points_used: order.points_used,
            point_use_id: order.point_use_id,
            status_changed_at: order.status_changed_at,
        }
    }
}

/// The event of a move from `from` to `order.status`; a releasing move names what came back (`units`:
/// option and quantity of each item).
pub(super) fn moved_event<'a>(
    order: &MovedFacts,
    from: OrderStatus,
    units: &[(i64, i32)],
    trace_id: Option<&'a str>,
) -> NewEvent<'a> {
    let released = !order.status.holds_goods();
    let items: Vec<_> =
        units.iter().map(|(option, quantity)| json!({ "optionId": option, "quantity": quantity })).collect();
    NewEvent {
        aggregate: outbox::Aggregate::Order,
        aggregate_id: order.id.to_string(),
        event_type: event_type(order.status),
        payload: json!({
            "orderId": order.id,
            "userId": order.user_id,
            "from": from,
            "status": order.status,
            "amountToPay": order.amount_to_pay,
            "couponId": order.coupon_id,
            "pointsRefunded": if released { order.points_used } else { 0 },
            "items": if released { items } else { Vec::new() },
            "at": order.status_changed_at,
        }),
        trace_id,
    }
}

/// One line of an order's history.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub from_status: Option<OrderStatus>,
    pub to_status: OrderStatus,
    pub actor: String,
    pub reason: Option<String>,
    pub trace_id: Option<String>,
    pub changed_at: chrono::DateTime<Utc>,
}

/// The order's history, oldest first.
pub async fn history_of<'e>(executor: impl PgExecutor<'e>, order: i64) -> sqlx::Result<Vec<HistoryRow>> {
    sqlx::query_as!(
        HistoryRow,
        r#"SELECT from_status AS "from_status: OrderStatus", to_status AS "to_status: OrderStatus", actor, reason,
             trace_id, changed_at
           FROM order_status_history WHERE order_id = $1 ORDER BY id"#,
        order
    )
    .fetch_all(executor)
    .await
}

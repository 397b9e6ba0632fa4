//! Moves of many orders at once, for the jobs that end orders by the clock: each chunk is one
//! transaction of a few statements (the guarded UPDATE of the chunk's orders, their history rows, their
//! outbox events and, for a releasing move, their items and one restock of every option), whatever its
//! size. The coupon and points an order took come back per order, by the same code as a single move.
//!
//! The chunk's orders are claimed with `FOR UPDATE SKIP LOCKED`, so a buyer's own move of one of them
//! (which locks the row) is never waited for nor overwritten, and several runs may share the work. The
//! move is a second statement: its snapshot is taken once the rows are locked, so it sees a payment or
//! refund that began on one of them before (which locks the row without changing it) and leaves that
//! order alone, as `lifecycle::decide_locked` does for a single move.

use super::{
    lifecycle::{give_back_coupon_and_points, moved_event, MovedFacts, OrderActor},
    Effects, StockLeft,
};
use crate::outbox;
use chrono::{DateTime, Utc};
use domain::shop::{decide, Move, OrderAction, OrderFacts, OrderStatus};
use std::collections::BTreeMap;

/// Who makes a bulk move and why, for each order's history.
pub struct BulkActor<'a> {
    pub actor: OrderActor,
    pub reason: &'a str,
    pub trace_id: Option<&'a str>,
}

/// Which orders a bulk move may take: those whose id is `index` modulo `of` (`(1, 0)`: all).
#[derive(Debug, Clone, Copy)]
pub struct IdSlice {
    pub of: i32,
    pub index: i32,
}

impl IdSlice {
    pub const ALL: IdSlice = IdSlice { of: 1, index: 0 };
}

/// Confirms (구매확정) at most `limit` orders of `slice` delivered at or before `delivered_before`, oldest
/// first, in `tx`: what the buyer did not confirm within the window the shop confirms for them. Returns
/// how many.
pub async fn confirm_delivered(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    delivered_before: DateTime<Utc>,
    slice: IdSlice,
    limit: i64,
    by: &BulkActor<'_>,
) -> anyhow::Result<usize> {
    let (from, action) = (OrderStatus::Delivered, OrderAction::Confirm);
    let to = table_step(from, action, false)?;
    let claimed = sqlx::query_scalar!(
        "SELECT id FROM orders WHERE status = $1 AND delivered_at <= $2 AND id % $4 = $5
         ORDER BY delivered_at LIMIT $3 FOR UPDATE SKIP LOCKED",
        from as OrderStatus,
        delivered_before,
        limit,
        i64::from(slice.of),
        i64::from(slice.index),
    )
    .fetch_all(&mut **tx)
    .await?;
    // A new statement, so it sees every payment or refund committed before the rows were locked: an
    // order whose refund is at the provider is the refund's to move.
    let moved = sqlx::query_as!(
        MovedFacts,
        r#"UPDATE orders o SET status = $3, status_changed_at = now()
           WHERE o.id = ANY($1) AND o.status = $2
             AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.order_id = o.id
                             AND (a.status IN ('IN_FLIGHT', 'UNKNOWN', 'WAITING_FOR_DEPOSIT')
                                  OR a.refund_status IN ('IN_FLIGHT', 'UNKNOWN')))
           RETURNING o.id, o.user_id, o.status AS "status: OrderStatus", o.amount_to_pay, o.coupon_id, o.points_used,
             o.point_use_id, o.status_changed_at"#,
        &claimed,
        from as OrderStatus,
        to as OrderStatus,
    )
    .fetch_all(&mut **tx)
    .await?;
    record_all(tx, &moved, from, by, &BTreeMap::new()).await?;
    Ok(moved.len())
}

/// The status `action` takes an order in `from` to, as the table says; whether it gives back what the
/// order took must be what the caller handles. A move that returns a payment is never made in bulk.
fn table_step(from: OrderStatus, action: OrderAction, releases: bool) -> anyhow::Result<OrderStatus> {
    let now = Utc::now();
    // The facts that let the table allow the move in principle: the chunk's query applies the clock.
    let facts = OrderFacts {
        now,
        payment_due_at: now - chrono::Duration::seconds(1),
        delivered_at: Some(now),
        return_window: chrono::Duration::zero(),
        amount_to_pay: 0,
    };
    match decide(from, action, &facts) {
        Ok(Move { to, releases: r, returns_payment: false }) if r == releases => Ok(to),
        other => anyhow::bail!("{action:?} from {from:?} cannot be made in bulk: {other:?}"),
    }
}

/// The history rows and outbox events of `moved`, one statement each.
async fn record_all(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    moved: &[MovedFacts],
    from: OrderStatus,
    by: &BulkActor<'_>,
    units: &BTreeMap<i64, Vec<(i64, i32)>>,
) -> anyhow::Result<()> {
    let Some(to) = moved.first().map(|order| order.status) else { return Ok(()) };
    let ids: Vec<i64> = moved.iter().map(|order| order.id).collect();
    sqlx::query!(
        "INSERT INTO order_status_history (order_id, from_status, to_status, actor, reason, trace_id)
         SELECT id, $2, $3, $4, $5, $6 FROM unnest($1::bigint[]) AS id",
        &ids,
        from as OrderStatus,
        to as OrderStatus,
        by.actor.label(),
        by.reason,
        by.trace_id
    )
    .execute(&mut **tx)
    .await?;
    let events: Vec<_> = moved
        .iter()
        .map(|order| moved_event(order, from, units.get(&order.id).map_or(&[], Vec::as_slice), by.trace_id))
        .collect();
    outbox::append_all(&mut **tx, &events).await?;
    Ok(())
}

/// Expires at most `limit` unpaid orders past their due time at `now`, oldest due first, in `tx`, with
/// everything they took coming back; the caches' news per order. Only orders that never had a payment
/// attempt: the provider approves a payment only when settle confirms it, and every confirm is recorded
/// as an attempt first, so the provider cannot hold money for these and is not asked. An order with an
/// attempt is expired one by one after the provider's look-up (`resolution`). Points whose lot expired
/// meanwhile come back for `regrant`.
pub async fn expire_unattempted(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    now: DateTime<Utc>,
    limit: i64,
    by: &BulkActor<'_>,
    regrant: domain::points::Validity,
) -> anyhow::Result<(usize, Vec<Effects>)> {
    let (from, action) = (OrderStatus::PendingPayment, OrderAction::Expire);
    let to = table_step(from, action, true)?;
    let claimed = sqlx::query_scalar!(
        "SELECT o.id FROM orders o
         WHERE o.status = $1 AND o.payment_due_at <= $2
           AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.order_id = o.id)
         ORDER BY o.payment_due_at LIMIT $3 FOR UPDATE SKIP LOCKED",
        from as OrderStatus,
        now,
        limit
    )
    .fetch_all(&mut **tx)
    .await?;
    // A new statement, so it sees an attempt committed between the claim's snapshot and its lock (the
    // attempt's confirm may be at the provider now): that order is the payment's, not the expiry's.
    let moved = sqlx::query_as!(
        MovedFacts,
        r#"UPDATE orders o SET status = $3, status_changed_at = now()
           WHERE o.id = ANY($1) AND o.status = $2
             AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.order_id = o.id)
           RETURNING o.id, o.user_id, o.status AS "status: OrderStatus", o.amount_to_pay, o.coupon_id, o.points_used,
             o.point_use_id, o.status_changed_at"#,
        &claimed,
        from as OrderStatus,
        to as OrderStatus,
    )
    .fetch_all(&mut **tx)
    .await?;
    let units = units_of(tx, &moved).await?;
    record_all(tx, &moved, from, by, &units).await?;
    let mut effects = Vec::new();
    // Point balances in user order: chunks running at once never wait on each other in a cycle.
    let mut holders: Vec<&MovedFacts> =
        moved.iter().filter(|o| o.coupon_id.is_some() || o.point_use_id.is_some()).collect();
    holders.sort_by_key(|order| (order.user_id, order.id));
    for order in holders {
        let balance = give_back_coupon_and_points(tx, order, regrant, by.trace_id).await?;
        effects.push(Effects { balance, ..Effects::default() });
    }
    let stock_left = restock_all(tx, units.values().flatten()).await?;
    effects.push(Effects { stock_left, balance: None });
    Ok((moved.len(), effects))
}

/// Each moved order's (option, quantity) items.
async fn units_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    moved: &[MovedFacts],
) -> sqlx::Result<BTreeMap<i64, Vec<(i64, i32)>>> {
    let ids: Vec<i64> = moved.iter().map(|order| order.id).collect();
    let rows = sqlx::query!(
        "SELECT order_id, option_id, quantity FROM order_items WHERE order_id = ANY($1) ORDER BY order_id, option_id",
        &ids
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut units: BTreeMap<i64, Vec<(i64, i32)>> = BTreeMap::new();
    for row in rows {
        units.entry(row.order_id).or_default().push((row.option_id, row.quantity));
    }
    Ok(units)
}

/// Puts `units` back, one statement for all options, the rows locked in option id order first (the
/// order every stock writer takes them in), last in the transaction.
async fn restock_all<'a>(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    units: impl Iterator<Item = &'a (i64, i32)>,
) -> sqlx::Result<StockLeft> {
    let mut per_option: BTreeMap<i64, i32> = BTreeMap::new();
    for &(option, quantity) in units {
        *per_option.entry(option).or_default() += quantity;
    }
    if per_option.is_empty() {
        return Ok(StockLeft::default());
    }
    let (options, quantities): (Vec<i64>, Vec<i32>) = per_option.into_iter().unzip();
    sqlx::query!("SELECT id FROM product_options WHERE id = ANY($1) ORDER BY id FOR UPDATE", &options)
        .fetch_all(&mut **tx)
        .await?;
    let left = sqlx::query!(
        "UPDATE product_options p SET stock = p.stock + u.quantity
         FROM unnest($1::bigint[], $2::int[]) AS u(id, quantity) WHERE p.id = u.id RETURNING p.id, p.stock",
        &options,
        &quantities
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut left: Vec<(i64, i32)> = left.into_iter().map(|row| (row.id, row.stock)).collect();
    left.sort_unstable();
    Ok(StockLeft(left))
}

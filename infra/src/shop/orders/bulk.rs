//! Moves of many orders at once, for the jobs that end orders by the clock: each chunk is one
//! transaction of three statements (the guarded UPDATE of the chunk's orders, their history rows, their
//! outbox events), whatever its size. Only moves that give nothing back go this way: a releasing move
//! (stock, coupon, points) is made per order by `lifecycle::move_order`.
//!
//! The chunk's orders are claimed with `FOR UPDATE SKIP LOCKED`, so a buyer's own move of one of them
//! (which locks the row) is never waited for nor overwritten, and several runs may share the work.

use super::lifecycle::{moved_event, MovedFacts, OrderActor};
use crate::outbox;
use chrono::{DateTime, Utc};
use domain::shop::{decide, OrderAction, OrderFacts, OrderStatus};

/// Who makes a bulk move and why, for each order's history.
pub struct BulkActor<'a> {
    pub actor: OrderActor,
    pub reason: &'a str,
    pub trace_id: Option<&'a str>,
}

/// Confirms (구매확정) at most `limit` orders delivered at or before `delivered_before`, oldest first, in
/// `tx`: what the buyer did not confirm within the window the shop confirms for them. Returns how many.
pub async fn confirm_delivered(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    delivered_before: DateTime<Utc>,
    limit: i64,
    by: &BulkActor<'_>,
) -> anyhow::Result<usize> {
    let (from, action) = (OrderStatus::Delivered, OrderAction::Confirm);
    let to = silent_move(from, action)?;
    let moved = sqlx::query_as!(
        MovedFacts,
        r#"UPDATE orders SET status = $3, status_changed_at = now()
           WHERE id IN (SELECT id FROM orders WHERE status = $1 AND delivered_at <= $2
                        ORDER BY delivered_at LIMIT $4 FOR UPDATE SKIP LOCKED)
             AND status = $1
           RETURNING id, user_id, status AS "status: OrderStatus", amount_to_pay, coupon_id, points_used,
             status_changed_at"#,
        from as OrderStatus,
        delivered_before,
        to as OrderStatus,
        limit
    )
    .fetch_all(&mut **tx)
    .await?;
    record_all(tx, &moved, from, by).await?;
    Ok(moved.len())
}

/// The status `action` takes an order in `from` to, if the table allows it there and it neither gives
/// anything back nor returns a payment (a move this module can make without looking at each order).
fn silent_move(from: OrderStatus, action: OrderAction) -> anyhow::Result<OrderStatus> {
    let facts = OrderFacts {
        now: Utc::now(),
        payment_due_at: Utc::now(),
        delivered_at: Some(Utc::now()),
        return_window: chrono::Duration::zero(),
        amount_to_pay: 0,
    };
    match decide(from, action, &facts) {
        Ok(step) if !step.releases && !step.returns_payment => Ok(step.to),
        other => anyhow::bail!("{action:?} from {from:?} cannot be made in bulk: {other:?}"),
    }
}

/// The history rows and outbox events of `moved`, one statement each.
async fn record_all(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    moved: &[MovedFacts],
    from: OrderStatus,
    by: &BulkActor<'_>,
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
    let events: Vec<_> = moved.iter().map(|order| moved_event(order, from, &[], by.trace_id)).collect();
    outbox::append_all(&mut **tx, &events).await?;
    Ok(())
}

//! Cancelling an order: under the order's row lock, PLACED becomes CANCELLED once, and the coupon, the
//! points and the stock it took come back in the same transaction.

use super::{
    read::{items_of, OrderItemRow, OrderRow, PlacedOrder},
    Effects, StockLeft,
};
use crate::{
    coupons::usage,
    outbox::{self, NewEvent},
    points::ledger::{self, Actor},
};
use domain::{
    shop::{OrderStatus, PaymentMethod},
    OrderId, UserId,
};
use serde_json::json;
use sqlx::{Postgres, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRefusal {
    /// No such order, or not the caller's.
    UnknownOrder,
    AlreadyCancelled,
}

pub async fn cancel(
    tx: &mut Transaction<'_, Postgres>,
    order_id: OrderId,
    actor: Actor,
    trace_id: Option<&str>,
) -> anyhow::Result<Result<(PlacedOrder, Effects), CancelRefusal>> {
    let locked = sqlx::query_scalar!(
        r#"SELECT status AS "status: OrderStatus" FROM orders WHERE id = $1 AND (user_id = $2 OR $3) FOR UPDATE"#,
        order_id.get(),
        actor.user.get(),
        actor.is_admin
    )
    .fetch_optional(&mut **tx)
    .await?;
    match locked {
        None => return Ok(Err(CancelRefusal::UnknownOrder)),
        Some(OrderStatus::Cancelled) => return Ok(Err(CancelRefusal::AlreadyCancelled)),
        Some(OrderStatus::Placed) => {}
    }
    let order = mark_cancelled(tx, order_id.get()).await?;
    if let Some(coupon) = order.coupon_id {
        usage::mark_returned(tx, coupon, order.id, trace_id).await?;
    }
    let mut balance = None;
    if let Some(point_use) = order.point_use_id {
        let owner = UserId::parse(order.user_id)?;
        match ledger::reverse(tx, point_use, owner, -order.points_used, trace_id).await? {
            Ok(refund) => balance = refund.balance_change(),
            Err(refusal) => anyhow::bail!("order {}'s points could not be refunded: {refusal:?}", order.id),
        }
    }
    let items = items_of(&mut **tx, order.id).await?;
    outbox::append(&mut **tx, cancelled_event(&order, &items, trace_id)).await?;
    let stock_left = restock(tx, &items).await?;
    Ok(Ok((PlacedOrder { order, items }, Effects { stock_left, balance })))
}

async fn mark_cancelled(tx: &mut Transaction<'_, Postgres>, order: i64) -> sqlx::Result<OrderRow> {
    sqlx::query_as!(
        OrderRow,
        r#"UPDATE orders SET status = $2, cancelled_at = now() WHERE id = $1
           RETURNING id, user_id, status AS "status: OrderStatus", subtotal, coupon_id, coupon_discount, points_used,
             point_use_id, amount_to_pay, receiver_name, phone, address,
             payment_method AS "payment_method: PaymentMethod", created_at, cancelled_at"#,
        order,
        OrderStatus::Cancelled as OrderStatus
    )
    .fetch_one(&mut **tx)
    .await
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

fn cancelled_event<'a>(order: &OrderRow, items: &[OrderItemRow], trace_id: Option<&'a str>) -> NewEvent<'a> {
    let items: Vec<_> =
        items.iter().map(|item| json!({ "optionId": item.option_id, "quantity": item.quantity })).collect();
    NewEvent {
        aggregate: outbox::Aggregate::Order,
        aggregate_id: order.id.to_string(),
        event_type: "OrderCancelled",
        payload: json!({
            "orderId": order.id,
            "userId": order.user_id,
            "couponId": order.coupon_id,
            "pointsRefunded": order.points_used,
            "items": items,
            "cancelledAt": order.cancelled_at,
        }),
        trace_id,
    }
}

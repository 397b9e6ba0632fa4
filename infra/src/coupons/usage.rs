//! Using a coupon for an order and cancelling that use: owner only, one row lock, one outbox event.

use super::repo::CouponRow;
use crate::outbox::{self, NewEvent};
use chrono::Utc;
use domain::{
    coupon::{decide_cancel, decide_use, Change, CouponState, CouponStatus, UsageError},
    shop::OrderStatus,
    UserId,
};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageFailure {
    NotFound,
    NotOwner,
    /// The order named for a direct use is not one of the caller's.
    UnknownOrder,
    /// The use was made by placing this order: it comes back only by cancelling the order.
    BelongsToOrder(i64),
    Rule(UsageError),
}

pub async fn use_coupon(
    pool: &PgPool,
    coupon: i64,
    user: UserId,
    order: i64,
    trace_id: Option<&str>,
) -> anyhow::Result<Result<CouponRow, UsageFailure>> {
    let (mut tx, current) = match lock_owned(pool, coupon, user).await? {
        Ok(locked) => locked,
        Err(failure) => return Ok(Err(failure)),
    };
    let order_owner =
        sqlx::query_scalar!("SELECT user_id FROM orders WHERE id = $1", order).fetch_optional(&mut *tx).await?;
    if order_owner != Some(user.get()) {
        return Ok(Err(UsageFailure::UnknownOrder));
    }
    match decide_use(&state_of(&current), order, Utc::now()) {
        Err(rule) => Ok(Err(UsageFailure::Rule(rule))),
        Ok(Change::AlreadyDone) => Ok(Ok(current)),
        Ok(Change::Apply) => {
            let used = mark_used(&mut tx, coupon, order, trace_id).await?;
            tx.commit().await?;
            Ok(Ok(used))
        }
    }
}

pub async fn cancel_use(
    pool: &PgPool,
    coupon: i64,
    user: UserId,
    trace_id: Option<&str>,
) -> anyhow::Result<Result<CouponRow, UsageFailure>> {
    let (mut tx, current) = match lock_owned(pool, coupon, user).await? {
        Ok(locked) => locked,
        Err(failure) => return Ok(Err(failure)),
    };
    if let Some(order) = placed_order_using(&mut tx, coupon).await? {
        return Ok(Err(UsageFailure::BelongsToOrder(order)));
    }
    match decide_cancel(&state_of(&current)) {
        Err(rule) => Ok(Err(UsageFailure::Rule(rule))),
        Ok(Change::AlreadyDone) => Ok(Ok(current)),
        Ok(Change::Apply) => {
            let available = mark_returned(&mut tx, coupon, current.order_id.unwrap_or_default(), trace_id).await?;
            tx.commit().await?;
            Ok(Ok(available))
        }
    }
}

/// Marks `coupon` used by `order`, with its event, in `tx` (whose caller holds the coupon's row lock).
pub async fn mark_used(
    tx: &mut Transaction<'_, Postgres>,
    coupon: i64,
    order: i64,
    trace_id: Option<&str>,
) -> sqlx::Result<CouponRow> {
    let used = sqlx::query_as!(
        CouponRow,
        r#"UPDATE coupons SET status = $3, order_id = $2, used_at = now() WHERE id = $1
           RETURNING id, policy_id, user_id, request_id, status AS "status: CouponStatus", order_id,
             issued_at, valid_until, used_at, cancelled_order_id"#,
        coupon,
        order,
        CouponStatus::Used as CouponStatus,
    )
    .fetch_one(&mut **tx)
    .await?;
    outbox::append(&mut **tx, event("CouponUsed", &used, order, trace_id)).await?;
    Ok(used)
}

/// Makes `coupon`, used by `order`, available again, with its event, in `tx`.
pub async fn mark_returned(
    tx: &mut Transaction<'_, Postgres>,
    coupon: i64,
    order: i64,
    trace_id: Option<&str>,
) -> sqlx::Result<CouponRow> {
    let available = sqlx::query_as!(
        CouponRow,
        r#"UPDATE coupons SET status = $2, cancelled_order_id = order_id, order_id = NULL, used_at = NULL
           WHERE id = $1
           RETURNING id, policy_id, user_id, request_id, status AS "status: CouponStatus", order_id,
             issued_at, valid_until, used_at, cancelled_order_id"#,
        coupon,
        CouponStatus::Available as CouponStatus,
    )
    .fetch_one(&mut **tx)
    .await?;
    outbox::append(&mut **tx, event("CouponUseCancelled", &available, order, trace_id)).await?;
    Ok(available)
}

/// The order that used `coupon` and still holds it (not cancelled, expired or refunded), if any.
pub async fn placed_order_using(tx: &mut Transaction<'_, Postgres>, coupon: i64) -> sqlx::Result<Option<i64>> {
    let holding: Vec<OrderStatus> = OrderStatus::ALL.into_iter().filter(|status| status.holds_goods()).collect();
    sqlx::query_scalar!(
        "SELECT id FROM orders WHERE coupon_id = $1 AND status = ANY($2)",
        coupon,
        &holding as &[OrderStatus]
    )
    .fetch_optional(&mut **tx)
    .await
}

/// A transaction holding the row lock of `user`'s coupon.
async fn lock_owned(
    pool: &PgPool,
    coupon: i64,
    user: UserId,
) -> sqlx::Result<Result<(Transaction<'static, Postgres>, CouponRow), UsageFailure>> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as!(
        CouponRow,
        r#"SELECT id, policy_id, user_id, request_id, status AS "status: CouponStatus", order_id, issued_at,
             valid_until, used_at, cancelled_order_id
           FROM coupons WHERE id = $1 FOR UPDATE"#,
        coupon
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match row {
        None => Err(UsageFailure::NotFound),
        Some(row) if row.user_id != user.get() => Err(UsageFailure::NotOwner),
        Some(row) => Ok((tx, row)),
    })
}

fn state_of(row: &CouponRow) -> CouponState {
    CouponState { used_for: row.order_id, cancelled_for: row.cancelled_order_id, valid_until: row.valid_until }
}

fn event<'a>(event_type: &'a str, coupon: &CouponRow, order: i64, trace_id: Option<&'a str>) -> NewEvent<'a> {
    NewEvent {
        aggregate: outbox::Aggregate::Coupon,
        aggregate_id: coupon.id.to_string(),
        event_type,
        payload: json!({
            "couponId": coupon.id,
            "policyId": coupon.policy_id,
            "userId": coupon.user_id,
            "orderId": order,
        }),
        trace_id,
    }
}

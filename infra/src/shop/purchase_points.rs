//! Points for confirmed purchases (구매확정 적립): each CONFIRMED order earns its buyer a share of what
//! was paid, once. The order's id is the key (`purchase_points`' primary key): the consumer of
//! `OrderConfirmed` may see an event any number of times and the points are earned in the first
//! transaction that records the order. What is earned is read from the order itself, not the event.

use crate::points::{
    cache::{BalanceCache, BalanceChange},
    ledger,
    lots::LotTerms,
};
use domain::{
    points::{LotSource, PointAmount},
    shop::purchase_points,
    UserId,
};
use sqlx::PgPool;
use std::collections::BTreeMap;

/// What one call did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Awarded {
    /// (order, points) of each order recorded now, points 0 when its share rounds to nothing.
    pub earned: Vec<(i64, i64)>,
    /// Orders named that were recorded before (a redelivered event) or are not CONFIRMED.
    pub skipped: usize,
}

struct Confirmed {
    id: i64,
    user_id: i64,
    amount_to_pay: i64,
}

/// Earns the purchase points of the CONFIRMED orders among `orders` not earned before, in one
/// transaction, at `rate_bps`; then offers the new balances to the cache.
pub async fn award(
    pool: &PgPool,
    balances: &BalanceCache,
    orders: &[i64],
    rate_bps: u32,
    validity: domain::points::Validity,
    trace_id: Option<&str>,
) -> anyhow::Result<Awarded> {
    let mut orders = orders.to_vec();
    orders.sort_unstable();
    orders.dedup();
    let mut tx = pool.begin().await?;
    let confirmed = sqlx::query_as!(
        Confirmed,
        "SELECT id, user_id, amount_to_pay FROM orders WHERE id = ANY($1) AND status = 'CONFIRMED'",
        &orders
    )
    .fetch_all(&mut *tx)
    .await?;
    let (mut ids, mut users, mut paid, mut amounts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for order in &confirmed {
        ids.push(order.id);
        users.push(order.user_id);
        paid.push(order.amount_to_pay);
        amounts.push(purchase_points(order.amount_to_pay, rate_bps));
    }
    let recorded = sqlx::query!(
        "INSERT INTO purchase_points (order_id, user_id, paid, rate_bps, amount)
         SELECT o, u, p, $5, a FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) AS t(o, u, p, a)
         ON CONFLICT (order_id) DO NOTHING RETURNING order_id, user_id, amount",
        &ids,
        &users,
        &paid,
        &amounts,
        rate_bps as i32
    )
    .fetch_all(&mut *tx)
    .await?;
    // Balances in user order, like every other path that takes several: no two batches wait in a cycle.
    let mut by_user: Vec<_> = recorded.iter().map(|row| (row.user_id, row.order_id, row.amount)).collect();
    by_user.sort_unstable();
    let mut changes = BTreeMap::new();
    for &(user, order, amount) in &by_user {
        let Ok(points) = PointAmount::parse(amount) else { continue };
        let reason = format!("purchase confirmed: order {order}");
        let terms = LotTerms { source: LotSource::Purchase, validity };
        let entry = match ledger::earn(&mut tx, UserId::parse(user)?, points, terms, Some(&reason), trace_id).await? {
            Ok(entry) => entry,
            Err(refusal) => anyhow::bail!("order {order}'s purchase points could not be earned: {refusal:?}"),
        };
        sqlx::query!("UPDATE purchase_points SET point_id = $2 WHERE order_id = $1", order, entry.point_id)
            .execute(&mut *tx)
            .await?;
        if let Some(change) = entry.balance_change() {
            changes.insert(user, change);
        }
    }
    tx.commit().await?;
    for BalanceChange { user, version, balance } in changes.into_values() {
        balances.offer(user, version, balance).await;
    }
    let earned: Vec<_> = recorded.iter().map(|row| (row.order_id, row.amount)).collect();
    Ok(Awarded { skipped: orders.len() - earned.len(), earned })
}

//! The background pass that settles what an answer never said, and ends unpaid orders. Each step is
//! bounded per pass, idempotent, and safe with several replicas: work is leased with `FOR UPDATE SKIP
//! LOCKED` (a lease moves the row's `updated_at`, so another replica skips it until the lease runs out),
//! and no lock is held across a call to the provider.
//!
//! - An open payment attempt (UNKNOWN, or IN_FLIGHT longer than a call can take) is settled by the
//!   provider's look-up: approved there → APPROVED and the order PAID; anything else → FAILED, the order
//!   stays payable.
//! - An open refund is settled the same way: the money is back there → the order's move is made.
//! - An unpaid order past its payment window expires, with everything it took coming back, but only once
//!   the provider confirms that it holds no money for it (money it holds is given back first). An order
//!   that never had a payment attempt cannot have money there: those expire in bulk, without asking.
//! - An attempt a look-up failed is looked up once more, later: a confirm approved after the look-up
//!   (its request reached the provider late) is given back, so no money is left without an order.
//! - A virtual account past its due time is looked up: paid (a lost callback) → approved; else it is
//!   closed at the provider and the attempt fails, so the order can expire and no deposit follows.

use super::{
    bulk::{expire_unattempted, BulkActor},
    deposit::{claim_overdue, close_account, AccountClosing},
    late::{claim_rechecks, recheck, Recheck, NOT_APPROVED},
    lifecycle::{move_order, LifecycleRules, MoveFailure, MoveRequest, OrderActor},
    payment::{payment_order_id, settle, Attempt, Outcome},
    refund::{settle_refund, Refund, RefundOutcome},
    Effects,
};
use crate::payments::{PaymentGateway, ProviderStatus};
use domain::{
    shop::{OrderAction, OrderStatus, PaymentAttemptStatus},
    OrderId,
};
use sqlx::PgPool;
use std::time::Duration;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub approved: usize,
    pub failed: usize,
    pub refunded: usize,
    pub expired: usize,
    /// Virtual accounts left unpaid past their due time, closed at the provider.
    pub accounts_closed: usize,
    /// Payments the provider approved after they were settled as failed, given back.
    pub late_given_back: usize,
    /// Asked again, still without an answer: left for a later pass.
    pub still_unknown: usize,
}

/// One pass over at most `limit` items of each kind. `stale_after` is how long an attempt may be in
/// flight before it counts as unanswered (longer than a call can take), and the lease of a claimed item.
pub async fn resolve<G: PaymentGateway>(
    pool: &PgPool,
    gateway: &G,
    rules: LifecycleRules,
    stale_after: Duration,
    limit: i64,
) -> anyhow::Result<(Resolved, Vec<Effects>)> {
    let mut resolved = Resolved::default();
    let mut effects = Vec::new();
    // Before this pass fails any attempt: a recheck comes at least one pass after the look-up it checks.
    for attempt in claim_rechecks(pool, stale_after, limit).await? {
        match recheck(pool, gateway, &attempt).await? {
            Recheck::GivenBack => resolved.late_given_back += 1,
            Recheck::Later => resolved.still_unknown += 1,
            Recheck::NothingHeld => {}
        }
    }
    for attempt in claim_attempts(pool, stale_after, limit).await? {
        match payment_outcome(gateway, &attempt).await {
            Some(outcome) => {
                let approved = matches!(outcome, Outcome::Approved { .. });
                let (settled, _) = settle(pool, &attempt, outcome, rules, None).await?;
                match settled.status {
                    PaymentAttemptStatus::Approved if approved => resolved.approved += 1,
                    // A virtual account handed out: its deposit is still to come.
                    PaymentAttemptStatus::WaitingForDeposit => {}
                    _ => resolved.failed += 1,
                }
            }
            None => resolved.still_unknown += 1,
        }
    }
    for refund in claim_refunds(pool, stale_after, limit).await? {
        match refund_outcome(gateway, &refund).await {
            RefundOutcome::Unknown => resolved.still_unknown += 1,
            outcome => {
                if let Some(moved) = settle_refund_of(pool, &refund, outcome, rules).await? {
                    effects.push(moved);
                    resolved.refunded += 1;
                }
            }
        }
    }
    for attempt in claim_overdue(pool, stale_after, limit).await? {
        match close_account(gateway, &attempt, AccountClosing::PastDue).await {
            Some(outcome) => {
                let approved = matches!(outcome, Outcome::Approved { .. });
                settle(pool, &attempt, outcome, rules, None).await?;
                if approved {
                    resolved.approved += 1
                } else {
                    resolved.accounts_closed += 1
                }
            }
            None => resolved.still_unknown += 1,
        }
    }
    let (expired, released) = expire_never_attempted(pool, limit, rules).await?;
    resolved.expired += expired;
    effects.extend(released);
    for (order, round) in due_orders(pool, limit).await? {
        if let Some(moved) = expire(pool, gateway, order, round, rules).await? {
            effects.push(moved);
            resolved.expired += 1;
        }
    }
    Ok((resolved, effects))
}

/// Leases open attempts that have waited `stale_after`, oldest first.
async fn claim_attempts(pool: &PgPool, stale_after: Duration, limit: i64) -> sqlx::Result<Vec<Attempt>> {
    let stale_ms = stale_after.as_millis() as i64;
    sqlx::query_as!(
        Attempt,
        r#"UPDATE payment_attempts SET updated_at = now()
           WHERE id IN (SELECT id FROM payment_attempts
                        WHERE status IN ('IN_FLIGHT', 'UNKNOWN') AND updated_at < now() - make_interval(secs => $1 / 1000.0)
                        ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING id, order_id, payment_key, amount, status AS "status: PaymentAttemptStatus", idempotency_key,
             failure_code, failure_message, method, approved_at, created_at, refund_idempotency_key, payment_round"#,
        stale_ms as f64,
        limit
    )
    .fetch_all(pool)
    .await
}

/// What the provider's look-up says of `attempt`; `None` while it cannot say.
async fn payment_outcome<G: PaymentGateway>(gateway: &G, attempt: &Attempt) -> Option<Outcome> {
    let found = gateway.payment_of_order(&attempt.order_ref()).await.ok()?;
    let approval = found.and_then(|payment| Outcome::approval_of(attempt, &payment));
    let outcome = approval.unwrap_or_else(|| Outcome::Failed {
        code: NOT_APPROVED.to_owned(),
        message: "the provider's look-up shows no approval of this payment".to_owned(),
    });
    Some(outcome)
}

/// Leases open refunds that have waited `stale_after`.
async fn claim_refunds(pool: &PgPool, stale_after: Duration, limit: i64) -> anyhow::Result<Vec<Refund>> {
    let stale_ms = stale_after.as_millis() as i64;
    let rows = sqlx::query_as!(
        Attempt,
        r#"UPDATE payment_attempts SET updated_at = now()
           WHERE id IN (SELECT id FROM payment_attempts
                        WHERE refund_status IN ('IN_FLIGHT', 'UNKNOWN') AND updated_at < now() - make_interval(secs => $1 / 1000.0)
                        ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING id, order_id, payment_key, amount, status AS "status: PaymentAttemptStatus", idempotency_key,
             failure_code, failure_message, method, approved_at, created_at, refund_idempotency_key, payment_round"#,
        stale_ms as f64,
        limit
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(Refund::of).collect()
}

async fn refund_outcome<G: PaymentGateway>(gateway: &G, refund: &Refund) -> RefundOutcome {
    match gateway.payment_of_order(&refund.attempt.order_ref()).await {
        Ok(Some(payment)) if payment.payment_key == refund.attempt.payment_key && payment.balance_amount == 0 => {
            RefundOutcome::Returned
        }
        Ok(_) => RefundOutcome::NotReturned,
        Err(_) => RefundOutcome::Unknown,
    }
}

/// Commits a refund the look-up settled: the order's move (cancel when PAID, refund when DELIVERED, the
/// after-sales refund when CONFIRMED).
async fn settle_refund_of(
    pool: &PgPool,
    refund: &Refund,
    outcome: RefundOutcome,
    rules: LifecycleRules,
) -> anyhow::Result<Option<Effects>> {
    let mut tx = pool.begin().await?;
    let status = sqlx::query_scalar!(
        r#"SELECT status AS "status: OrderStatus" FROM orders WHERE id = $1 FOR UPDATE"#,
        refund.attempt.order_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let action = match status {
        OrderStatus::Delivered => OrderAction::Refund,
        OrderStatus::Confirmed => OrderAction::AfterSalesRefund,
        _ => OrderAction::Cancel,
    };
    let request = system_move(refund.attempt.order_id, action, "the provider's look-up shows the refund")?;
    let moved = settle_refund(&mut tx, refund, outcome, request, rules).await?;
    tx.commit().await?;
    Ok(moved.and_then(Result::ok).map(|(_, effects)| effects))
}

fn system_move(order: i64, action: OrderAction, reason: &str) -> anyhow::Result<MoveRequest> {
    Ok(MoveRequest {
        order: OrderId::parse(order)?,
        action,
        actor: OrderActor::System("payment-resolution"),
        reason: Some(reason.to_owned()),
        shipment: None,
        payment_returned: false,
        asked_at: None,
        trace_id: None,
    })
}

/// Up to `limit` unpaid orders past their window that never had a payment attempt, in one transaction:
/// the provider cannot hold money for them (see `bulk::expire_unattempted`).
async fn expire_never_attempted(
    pool: &PgPool,
    limit: i64,
    rules: LifecycleRules,
) -> anyhow::Result<(usize, Vec<Effects>)> {
    let by = BulkActor {
        actor: OrderActor::System("payment-resolution"),
        reason: "unpaid past the payment window",
        trace_id: None,
    };
    let mut tx = pool.begin().await?;
    let expired = expire_unattempted(&mut tx, chrono::Utc::now(), limit, &by, rules.points_validity).await?;
    tx.commit().await?;
    Ok(expired)
}

/// Unpaid orders past their window that had a payment attempt, none of them open, oldest first, with
/// their payment round.
async fn due_orders(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<(i64, i32)>> {
    let rows = sqlx::query!(
        "SELECT o.id, o.payment_round FROM orders o
         WHERE o.status = 'PENDING_PAYMENT' AND o.payment_due_at <= now()
           AND EXISTS (SELECT 1 FROM payment_attempts a WHERE a.order_id = o.id)
           AND NOT EXISTS (SELECT 1 FROM payment_attempts a
                           WHERE a.order_id = o.id AND a.status IN ('IN_FLIGHT', 'UNKNOWN', 'WAITING_FOR_DEPOSIT'))
         ORDER BY o.payment_due_at LIMIT $1",
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|row| (row.id, row.payment_round)).collect())
}

/// Expires `order` once the provider confirms it holds nothing for it; money it does hold (paid with no
/// record here) is given back first. `None` when nothing changed (another replica expired it, a payment
/// is open, or the provider could not be asked).
async fn expire<G: PaymentGateway>(
    pool: &PgPool,
    gateway: &G,
    order: i64,
    round: i32,
    rules: LifecycleRules,
) -> anyhow::Result<Option<Effects>> {
    let order_ref = payment_order_id(order, round);
    let Ok(found) = gateway.payment_of_order(&order_ref).await else { return Ok(None) };
    if let Some(payment) = found.filter(|payment| payment.balance_amount > 0 && payment.status == ProviderStatus::Done)
    {
        tracing::error!(order, payment_key = %payment.payment_key, "the provider holds money for an unpaid order past its window; giving it back");
        let key = format!("settle-expiry-{order}");
        if gateway.cancel(&payment.payment_key, "the order expired unpaid", &key).await.is_err() {
            return Ok(None);
        }
    }
    let mut tx = pool.begin().await?;
    let request = system_move(order, OrderAction::Expire, "unpaid past the payment window")?;
    match move_order(&mut tx, request, rules).await? {
        Ok((_, effects)) => {
            tx.commit().await?;
            Ok(Some(effects))
        }
        Err(MoveFailure::Refused(_) | MoveFailure::PaymentInProgress | MoveFailure::UnknownOrder) => Ok(None),
        Err(other) => anyhow::bail!("expiring order {order}: {other:?}"),
    }
}

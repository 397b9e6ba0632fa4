//! Approvals that come too late. An attempt the provider's look-up settled as not approved may still be
//! approved afterwards, if its confirm reached the provider later than settle waited. Each such attempt
//! is looked up once more, `stale_after` after it was settled; money found then is given back at the
//! provider: the buyer was told the payment failed, and the order may have ended or been paid with
//! another payment since, so no order keeps it. An order still unpaid is then paid under a new order id
//! (its next payment round), as the provider takes no second payment under one it approved.

use super::payment::{end_round, Attempt};
use crate::payments::{PaymentGateway, ProviderStatus};
use domain::shop::PaymentAttemptStatus;
use sqlx::PgPool;
use std::time::Duration;

/// The failure code of an attempt a look-up found no approval for.
pub(super) const NOT_APPROVED: &str = "NOT_APPROVED";

/// Leases attempts failed by a look-up at least `stale_after` ago and not looked up again yet.
pub(super) async fn claim_rechecks(pool: &PgPool, stale_after: Duration, limit: i64) -> sqlx::Result<Vec<Attempt>> {
    sqlx::query_as!(
        Attempt,
        r#"UPDATE payment_attempts SET rechecked_at = now()
           WHERE id IN (SELECT id FROM payment_attempts
                        WHERE status = 'FAILED' AND failure_code = $3 AND rechecked_at IS NULL
                          AND updated_at < now() - make_interval(secs => $1 / 1000.0)
                        ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING id, order_id, payment_key, amount, status AS "status: PaymentAttemptStatus", idempotency_key,
             failure_code, failure_message, method, approved_at, created_at, refund_idempotency_key, payment_round"#,
        stale_after.as_millis() as f64,
        limit,
        NOT_APPROVED
    )
    .fetch_all(pool)
    .await
}

/// What the second look-up of an attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recheck {
    /// Nothing was approved after all.
    NothingHeld,
    /// It was approved late; the money went back.
    GivenBack,
    /// The provider could not be asked, or refused to give the money back: asked again next pass.
    Later,
}

pub(super) async fn recheck<G: PaymentGateway>(pool: &PgPool, gateway: &G, attempt: &Attempt) -> sqlx::Result<Recheck> {
    let held = match gateway.payment_of_order(&attempt.order_ref()).await {
        Ok(found) => found.filter(|payment| {
            payment.payment_key == attempt.payment_key
                && payment.status == ProviderStatus::Done
                && payment.balance_amount > 0
        }),
        Err(_) => return again_later(pool, attempt).await,
    };
    let Some(payment) = held else { return Ok(Recheck::NothingHeld) };
    tracing::error!(
        attempt = attempt.id,
        order = attempt.order_id,
        amount = payment.balance_amount,
        "the provider approved a payment after it was settled as failed; giving it back"
    );
    let key = format!("settle-late-approval-{}", attempt.id);
    if gateway.cancel(&payment.payment_key, "approved after the payment was settled as failed", &key).await.is_err() {
        return again_later(pool, attempt).await;
    }
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "UPDATE payment_attempts SET failure_code = 'LATE_APPROVAL_GIVEN_BACK',
           failure_message = 'approved by the provider after it was settled as failed; given back', updated_at = now()
         WHERE id = $1",
        attempt.id
    )
    .execute(&mut *tx)
    .await?;
    end_round(&mut *tx, attempt).await?;
    tx.commit().await?;
    Ok(Recheck::GivenBack)
}

async fn again_later(pool: &PgPool, attempt: &Attempt) -> sqlx::Result<Recheck> {
    sqlx::query!("UPDATE payment_attempts SET rechecked_at = NULL WHERE id = $1", attempt.id).execute(pool).await?;
    Ok(Recheck::Later)
}

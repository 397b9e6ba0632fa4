//! Giving an order's payment back, the way the payment was taken: `begin_refund` records the refund on the
//! approved attempt (its own idempotency key, kept for every retry) and commits; the caller asks the
//! provider; `settle_refund` commits the outcome, and a refund the provider made moves the order (cancel or
//! refund) in the same transaction. A refund whose answer never came stays open until the provider says.

use super::{
    lifecycle::{decide_locked, move_order, LifecycleRules, MoveFailure, MoveRequest},
    payment::Attempt,
    Effects, PlacedOrder,
};
use domain::shop::PaymentAttemptStatus;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// An approved payment being given back, with the key every try of it is sent under.
#[derive(Debug, Clone)]
pub struct Refund {
    pub attempt: Attempt,
    pub idempotency_key: Uuid,
}

/// Records the refund of the order's approved payment that `request`'s move needs, deciding under the
/// order's lock that the move is still allowed and still gives the payment back (the order may have
/// moved since the caller looked: shipped, or cancelled by another request). `Ok(None)` when the move
/// no longer needs a refund: the caller makes it as it is.
pub async fn begin_refund(
    pool: &PgPool,
    request: &MoveRequest,
    rules: LifecycleRules,
) -> anyhow::Result<Result<Option<Refund>, MoveFailure>> {
    let mut tx = pool.begin().await?;
    let step = match decide_locked(&mut tx, request, rules).await? {
        Ok((_, step)) => step,
        Err(failure) => return Ok(Err(failure)),
    };
    if !step.returns_payment {
        return Ok(Ok(None));
    }
    let reason = request.stated_reason();
    let row = sqlx::query_as!(
        Attempt,
        r#"UPDATE payment_attempts
           SET refund_status = 'IN_FLIGHT', refund_idempotency_key = coalesce(refund_idempotency_key, $2),
               refund_reason = coalesce(refund_reason, $3), updated_at = now()
           WHERE order_id = $1 AND status = 'APPROVED' AND refund_status IS DISTINCT FROM 'DONE'
           RETURNING id, order_id, payment_key, amount, status AS "status: PaymentAttemptStatus", idempotency_key,
             failure_code, failure_message, method, approved_at, created_at, refund_idempotency_key, payment_round"#,
        request.order.get(),
        Uuid::new_v4(),
        reason
    )
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let attempt =
        row.ok_or_else(|| anyhow::anyhow!("order {} must give back a payment it has no record of", request.order))?;
    Ok(Ok(Some(Refund::of(attempt)?)))
}

impl Refund {
    /// The refund of an attempt whose refund was asked for (it has its key).
    pub(super) fn of(attempt: Attempt) -> anyhow::Result<Self> {
        let key = attempt.refund_idempotency_key;
        let idempotency_key = key.ok_or_else(|| anyhow::anyhow!("attempt {} has no refund", attempt.id))?;
        Ok(Refund { attempt, idempotency_key })
    }
}

/// What the provider's answer to a refund came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The provider gave the money back: the move is made.
    Returned,
    /// The provider refused or was never reached: nothing was given back, the order stays as it was.
    NotReturned,
    /// No answer says what happened: the provider's look-up settles it later.
    Unknown,
}

/// Writes a refund's outcome in `tx` (the caller commits); when the money went back, `request`'s move
/// (with `payment_returned`) goes in the same transaction.
pub async fn settle_refund(
    tx: &mut Transaction<'_, Postgres>,
    refund: &Refund,
    outcome: RefundOutcome,
    mut request: MoveRequest,
    rules: LifecycleRules,
) -> anyhow::Result<Option<Result<(PlacedOrder, Effects), MoveFailure>>> {
    sqlx::query!("SELECT id FROM orders WHERE id = $1 FOR UPDATE", refund.attempt.order_id)
        .fetch_one(&mut **tx)
        .await?;
    let (status, refunded) = match outcome {
        RefundOutcome::Returned => (Some("DONE"), true),
        RefundOutcome::NotReturned => (None, false),
        RefundOutcome::Unknown => (Some("UNKNOWN"), false),
    };
    sqlx::query!(
        "UPDATE payment_attempts SET refund_status = $2, refunded_at = CASE WHEN $3 THEN now() END, updated_at = now()
         WHERE id = $1 AND refund_status IN ('IN_FLIGHT', 'UNKNOWN')",
        refund.attempt.id,
        status,
        refunded
    )
    .execute(&mut **tx)
    .await?;
    if !refunded {
        return Ok(None);
    }
    request.payment_returned = true;
    let moved = move_order(tx, request, rules).await?;
    if moved.is_err() {
        // The money is back with the buyer whatever the order says; the order keeps its status and the
        // refund stays recorded, for an operator to see.
        tracing::error!(order = refund.attempt.order_id, ?moved, "a refunded payment's order could not move");
    }
    Ok(Some(moved))
}

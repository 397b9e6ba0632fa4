//! Virtual accounts (가상계좌): a confirm the provider answers with an account leaves the attempt
//! WAITING_FOR_DEPOSIT. The provider announces the buyer's deposit with a callback that carries the
//! payment's secret (handed out with the account): verified against the stored one, it pays the order,
//! once however often it comes. An account still unpaid at its due time is closed at the provider, and
//! the order then expires like any unpaid one (`resolution`).

use super::{
    lifecycle::LifecycleRules,
    payment::{settle, Attempt, Outcome},
    Effects,
};
use chrono::{DateTime, Utc};
use domain::shop::PaymentAttemptStatus;
use sqlx::PgPool;

/// The provider's deposit callback (its DEPOSIT_CALLBACK webhook body).
#[derive(Debug, Clone)]
pub struct DepositCallback {
    /// The order id the payment was made under (`settle-order-<id>`).
    pub order_ref: String,
    pub secret: String,
    /// `DONE` when the money arrived; `WAITING_FOR_DEPOSIT` or `CANCELED` otherwise.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// What a deposit callback came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deposited {
    /// The order is PAID now.
    Paid,
    /// It was paid before: a repeated callback.
    AlreadyPaid,
    /// The callback says no money arrived (a deposit taken back, or still waiting): nothing changes.
    NotDeposited,
    /// No virtual account of settle's has this order id.
    UnknownOrder,
    /// The secret is not the account's: not the provider speaking.
    NotVerified,
}

/// The account a waiting payment was handed out, to show the buyer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub account_number: String,
    pub bank: String,
    pub due_at: DateTime<Utc>,
}

/// Settles `callback`: verified by the account's secret, a deposit pays the order in one transaction.
pub async fn on_deposit(
    pool: &PgPool,
    callback: &DepositCallback,
    rules: LifecycleRules,
) -> anyhow::Result<(Deposited, Option<Effects>)> {
    let Some(order) = callback.order_ref.strip_prefix("settle-order-").and_then(|id| id.parse::<i64>().ok()) else {
        return Ok((Deposited::UnknownOrder, None));
    };
    let Some((attempt, secret)) = account_attempt(pool, order).await? else {
        return Ok((Deposited::UnknownOrder, None));
    };
    if !same_secret(&secret, &callback.secret) {
        return Ok((Deposited::NotVerified, None));
    }
    match (attempt.status, callback.status.as_str()) {
        (PaymentAttemptStatus::Approved, _) => Ok((Deposited::AlreadyPaid, None)),
        (PaymentAttemptStatus::WaitingForDeposit, "DONE") => {
            let outcome = Outcome::Approved { method: "VIRTUAL_ACCOUNT".to_owned(), approved_at: callback.created_at };
            let (settled, moved) = settle(pool, &attempt, outcome, rules, None).await?;
            let answer = if settled.status == PaymentAttemptStatus::Approved {
                Deposited::Paid
            } else {
                Deposited::NotDeposited
            };
            Ok((answer, moved.map(|(_, effects)| effects)))
        }
        _ => Ok((Deposited::NotDeposited, None)),
    }
}

/// The order's latest attempt that was handed an account, with the account's secret.
async fn account_attempt(pool: &PgPool, order: i64) -> sqlx::Result<Option<(Attempt, String)>> {
    let row = sqlx::query!(
        r#"SELECT id, order_id, payment_key, amount, status AS "status: PaymentAttemptStatus", idempotency_key,
             failure_code, failure_message, method, approved_at, created_at, refund_idempotency_key,
             deposit_secret AS "deposit_secret!"
           FROM payment_attempts WHERE order_id = $1 AND deposit_secret IS NOT NULL ORDER BY id DESC LIMIT 1"#,
        order
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| {
        let attempt = Attempt {
            id: row.id,
            order_id: row.order_id,
            payment_key: row.payment_key,
            amount: row.amount,
            status: row.status,
            idempotency_key: row.idempotency_key,
            failure_code: row.failure_code,
            failure_message: row.failure_message,
            method: row.method,
            approved_at: row.approved_at,
            created_at: row.created_at,
            refund_idempotency_key: row.refund_idempotency_key,
        };
        (attempt, row.deposit_secret)
    }))
}

/// Compares in time that does not depend on where the two differ.
fn same_secret(stored: &str, given: &str) -> bool {
    stored.len() == given.len() && stored.bytes().zip(given.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// The account attempt `attempt` was handed, if any.
pub async fn account_of(pool: &PgPool, attempt: i64) -> sqlx::Result<Option<Account>> {
    let row = sqlx::query!(
        r#"SELECT account_number AS "account_number!", account_bank AS "bank!", deposit_due_at AS "due_at!"
           FROM payment_attempts WHERE id = $1 AND account_number IS NOT NULL"#,
        attempt
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| Account { account_number: row.account_number, bank: row.bank, due_at: row.due_at }))
}

/// Leases waiting accounts past their due time (the lease moves `updated_at`, as for open attempts).
pub(super) async fn claim_overdue(pool: &PgPool, lease: std::time::Duration, limit: i64) -> sqlx::Result<Vec<Attempt>> {
    sqlx::query_as!(
        Attempt,
        r#"UPDATE payment_attempts SET updated_at = now()
           WHERE id IN (SELECT id FROM payment_attempts
                        WHERE status = 'WAITING_FOR_DEPOSIT' AND deposit_due_at <= now()
                          AND updated_at < now() - make_interval(secs => $1 / 1000.0)
                        ORDER BY deposit_due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING id, order_id, payment_key, amount, status AS "status: PaymentAttemptStatus", idempotency_key,
             failure_code, failure_message, method, approved_at, created_at, refund_idempotency_key"#,
        lease.as_millis() as f64,
        limit
    )
    .fetch_all(pool)
    .await
}

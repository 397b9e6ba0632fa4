//! Virtual accounts (가상계좌): a confirm the provider answers with an account leaves the attempt
//! WAITING_FOR_DEPOSIT. The provider announces the buyer's deposit with a callback that carries the
//! payment's secret (handed out with the account): verified against the stored one, it pays the order,
//! once however often it comes. An account still unpaid at its due time is closed at the provider, and
//! the order then expires like any unpaid one (`resolution`); a buyer who cancels the order before paying
//! has the account closed first ([`close_waiting_account`]).

use super::{
    lifecycle::LifecycleRules,
    payment::{parse_payment_order_id, settle, Attempt, Outcome},
    Effects,
};
use crate::payments::PaymentGateway;
use chrono::{DateTime, Utc};
use domain::{shop::PaymentAttemptStatus, OrderId};
use sqlx::PgPool;

/// The provider's deposit callback (its DEPOSIT_CALLBACK webhook body).
#[derive(Debug, Clone)]
pub struct DepositCallback {
    /// The order id the payment was made under (`payment_order_id`).
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
    let Some((order, round)) = parse_payment_order_id(&callback.order_ref) else {
        return Ok((Deposited::UnknownOrder, None));
    };
    let Some((attempt, secret)) = account_attempt(pool, order, Some(round)).await? else {
        return Ok((Deposited::UnknownOrder, None));
    };
    if !crate::secret::same_secret(&secret, &callback.secret) {
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

/// The order's latest attempt that was handed an account (in payment `round`, if given), with the account's
/// secret.
async fn account_attempt(pool: &PgPool, order: i64, round: Option<i32>) -> sqlx::Result<Option<(Attempt, String)>> {
    let row = sqlx::query!(
        r#"SELECT id, order_id, payment_key, amount, status AS "status: PaymentAttemptStatus", idempotency_key,
             failure_code, failure_message, method, approved_at, created_at, refund_idempotency_key, payment_round,
             deposit_secret AS "deposit_secret!"
           FROM payment_attempts WHERE order_id = $1 AND payment_round = coalesce($2, payment_round) AND deposit_secret IS NOT NULL
           ORDER BY id DESC LIMIT 1"#,
        order,
        round
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
            payment_round: row.payment_round,
        };
        (attempt, row.deposit_secret)
    }))
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
             failure_code, failure_message, method, approved_at, created_at, refund_idempotency_key, payment_round"#,
        lease.as_millis() as f64,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Why a waiting virtual account is closed at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountClosing {
    /// Its due time passed without a deposit.
    PastDue,
    /// The buyer cancelled the order before paying into it.
    BuyerCancelled,
}

impl AccountClosing {
    /// The attempt's failure (code, message) once closed, and the idempotency key's word: one key per
    /// account and reason, so a retry after a lost answer is the same request to the provider.
    fn terms(self) -> (&'static str, &'static str, &'static str) {
        match self {
            AccountClosing::PastDue => {
                ("DEPOSIT_DUE_PASSED", "the virtual account was not paid by its due time", "due")
            }
            AccountClosing::BuyerCancelled => {
                ("CANCELLED_BEFORE_DEPOSIT", "the buyer cancelled the order before paying into the account", "cancel")
            }
        }
    }
}

/// Closes `attempt`'s virtual account at the provider, unless the deposit arrived (its callback still on
/// the way): what the attempt comes to (approved, or failed once no deposit can follow), or `None` when
/// the provider did not say (the account stays waiting, asked again later).
pub(super) async fn close_account<G: PaymentGateway>(
    gateway: &G,
    attempt: &Attempt,
    why: AccountClosing,
) -> Option<Outcome> {
    let (code, message, key_word) = why.terms();
    let found = gateway.payment_of_order(&attempt.order_ref()).await.ok()?;
    match found.as_ref().and_then(|payment| Outcome::approval_of(attempt, payment)) {
        Some(approved @ Outcome::Approved { .. }) => return Some(approved),
        Some(_waiting) => {
            let key = format!("settle-account-{key_word}-{}", attempt.id);
            gateway.cancel(&attempt.payment_key, message, &key).await.ok()?;
        }
        None => {}
    }
    Some(Outcome::Failed { code: code.to_owned(), message: message.to_owned() })
}

/// What closing an order's waiting account came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountClosed {
    /// The order has no account waiting for a deposit.
    NoneWaiting,
    /// Closed, or found paid (with what paying it changed): the attempt is settled and the order may move on.
    Settled(Option<Effects>),
    /// The provider did not answer: the account still waits.
    Unanswered,
}

/// Before the buyer's cancel of an order that waits for a deposit: its account is closed at the provider
/// (no lock is held across the call) and the attempt settled, so the cancel then finds the order unpaid,
/// or paid (the deposit came first) and gives the money back like any paid order's.
pub async fn close_waiting_account<G: PaymentGateway>(
    pool: &PgPool,
    gateway: &G,
    order: OrderId,
    rules: LifecycleRules,
    trace_id: Option<&str>,
) -> anyhow::Result<AccountClosed> {
    let Some((attempt, _)) = account_attempt(pool, order.get(), None).await? else {
        return Ok(AccountClosed::NoneWaiting);
    };
    if attempt.status != PaymentAttemptStatus::WaitingForDeposit {
        return Ok(AccountClosed::NoneWaiting);
    }
    let Some(outcome) = close_account(gateway, &attempt, AccountClosing::BuyerCancelled).await else {
        return Ok(AccountClosed::Unanswered);
    };
    let (_, moved) = settle(pool, &attempt, outcome, rules, trace_id).await?;
    Ok(AccountClosed::Settled(moved.map(|(_, effects)| effects)))
}

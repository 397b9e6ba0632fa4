//! Paying an order without holding a transaction across the provider's call: `begin` records the attempt
//! (one open attempt per order, under the order's row lock) and commits; the caller asks the provider;
//! `settle` commits the outcome, and an approval moves the order to PAID in the same transaction. An
//! attempt whose answer never came stays open (IN_FLIGHT, or UNKNOWN when the call said nothing) until the
//! provider's look-up settles it.

use super::{
    lifecycle::{lock, move_locked, LifecycleRules, MoveRequest, OrderActor},
    Effects, PlacedOrder,
};
use crate::payments::{ProviderPayment, ProviderStatus, VirtualAccountDue};
use chrono::{DateTime, Utc};
use domain::{
    shop::{decide, MoveRefusal, OrderAction, OrderFacts, OrderStatus, PaymentAttemptStatus},
    OrderId, UserId,
};
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};
use uuid::Uuid;

const ORDER_ID_PREFIX: &str = "settle-order-";

/// The order id the provider knows an order by in its payment `round` (6 to 64 of `[A-Za-z0-9_-]`, as it
/// requires): the buyer's payment window is opened with it, and the look-up finds the payment by it. The
/// provider takes one approved payment per order id, even once cancelled, so an order whose late approval
/// was given back is paid in the next round, under a new id.
pub fn payment_order_id(order: i64, round: i32) -> String {
    match round {
        0 => format!("{ORDER_ID_PREFIX}{order}"),
        _ => format!("{ORDER_ID_PREFIX}{order}-{round}"),
    }
}

/// The order and round of a provider's order id made by `payment_order_id`.
pub fn parse_payment_order_id(text: &str) -> Option<(i64, i32)> {
    let rest = text.strip_prefix(ORDER_ID_PREFIX)?;
    let (order, round) = match rest.split_once('-') {
        Some((order, round)) => (order, round.parse().ok().filter(|round: &i32| *round > 0)?),
        None => (rest, 0),
    };
    Some((order.parse().ok().filter(|order: &i64| *order > 0)?, round))
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: i64,
    pub order_id: i64,
    pub payment_key: String,
    pub amount: i64,
    pub status: PaymentAttemptStatus,
    pub idempotency_key: Uuid,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub method: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The key its refund is sent under, once one was asked for.
    pub refund_idempotency_key: Option<Uuid>,
    /// The order's payment round it was made in.
    pub payment_round: i32,
}

impl Attempt {
    /// The order id the provider knows this attempt's payment by.
    pub fn order_ref(&self) -> String {
        payment_order_id(self.order_id, self.payment_round)
    }
}

/// What `begin` found.
#[derive(Debug)]
pub enum Began {
    /// A new attempt: ask the provider.
    Fresh(Attempt),
    /// This payment key was tried before: its recorded outcome is the answer.
    Recorded(Attempt),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayRefusal {
    /// No such order, or not the buyer's.
    UnknownOrder,
    Refused(MoveRefusal),
    /// The amount is not what the order has to pay (checked before any call to the provider).
    AmountMismatch {
        to_pay: i64,
    },
    /// Another attempt of the order waits for its outcome.
    InProgress,
    /// The payment key was used to pay another order.
    KeyOfAnotherOrder,
}

/// What the provider's answer came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Approved {
        method: String,
        approved_at: DateTime<Utc>,
    },
    /// The buyer's payment was refused: the order stays payable with another payment.
    Declined {
        code: String,
        message: String,
    },
    /// The request was refused or never sent: nothing happened at the provider.
    Failed {
        code: String,
        message: String,
    },
    /// Nothing says what happened: the provider's look-up settles it later.
    Unknown {
        reason: String,
    },
    /// A virtual account was handed out: the order waits for the buyer's deposit, which the provider's
    /// callback (carrying `secret`) announces, until `due_at`.
    WaitingForDeposit {
        account: VirtualAccountDue,
        secret: String,
    },
}

impl Outcome {
    /// The approval of `attempt` if the provider's `payment` is it (its key, for its amount, done; or a
    /// virtual account waiting for its deposit): the one rule for the confirm's answer and for the
    /// look-up that settles an unanswered one.
    pub fn approval_of(attempt: &Attempt, payment: &ProviderPayment) -> Option<Outcome> {
        if payment.payment_key != attempt.payment_key || payment.total_amount != attempt.amount {
            return None;
        }
        match (payment.status, &payment.virtual_account, &payment.secret) {
            (ProviderStatus::Done, _, _) => Some(Outcome::Approved {
                method: payment.method.code().to_owned(),
                approved_at: payment.approved_at.map_or_else(Utc::now, |at| at.with_timezone(&Utc)),
            }),
            (ProviderStatus::WaitingForDeposit, Some(account), Some(secret)) => {
                Some(Outcome::WaitingForDeposit { account: account.clone(), secret: secret.clone() })
            }
            _ => None,
        }
    }
}

/// Records an attempt to pay `order` with `payment_key` for `amount`, if the order may be paid so: one
/// guarded INSERT holding the order's row lock records it only if the order is the buyer's, in a status
/// the table lets one pay from, inside its window (the table's `PaymentWindowClosed`), for its amount, with
/// no other attempt of it open (the partial unique index) and no refund of it at the provider. Anything
/// else goes the slow way, which asks the table and tells the caller why. The window is judged by the
/// database's clock at the statement's start, the instant the attempt records as its `created_at`, which
/// the approval's move later decides on: a statement that waited for the lock past the due time still
/// counts from when it was asked (a clock read before sending it let such an approval be refused).
pub async fn begin(
    pool: &PgPool,
    order: OrderId,
    buyer: UserId,
    payment_key: &str,
    amount: i64,
    trace_id: Option<&str>,
) -> anyhow::Result<Result<Began, PayRefusal>> {
    let attempt = sqlx::query_as!(
        Attempt,
        r#"WITH payable AS (
             SELECT id, payment_round FROM orders
             WHERE id = $1 AND user_id = $6 AND status = ANY($7) AND payment_due_at > now() AND amount_to_pay = $3
             FOR UPDATE)
           INSERT INTO payment_attempts (order_id, payment_key, amount, status, idempotency_key, trace_id, payment_round)
           SELECT id, $2, $3, 'IN_FLIGHT', $4, $5, payment_round FROM payable
           WHERE NOT EXISTS (SELECT 1 FROM payment_attempts
                             WHERE order_id = $1 AND refund_status IN ('IN_FLIGHT', 'UNKNOWN'))
           ON CONFLICT DO NOTHING
           RETURNING id, order_id, payment_key, amount, status AS "status: PaymentAttemptStatus", idempotency_key,
             failure_code, failure_message, method, approved_at, created_at, refund_idempotency_key, payment_round"#,
        order.get(),
        payment_key,
        amount,
        Uuid::new_v4(),
        trace_id,
        buyer.get(),
        &OrderAction::Pay.sources() as &[OrderStatus],
    )
    .fetch_optional(pool)
    .await?;
    match attempt {
        Some(attempt) => Ok(Ok(Began::Fresh(attempt))),
        None => why_not(pool, order, buyer, payment_key, amount).await,
    }
}

/// What the table says of `buyer` paying `order` `amount` now: None for no such order of theirs.
async fn payability(
    pool: &PgPool,
    order: OrderId,
    buyer: UserId,
    amount: i64,
) -> sqlx::Result<Option<Result<(), PayRefusal>>> {
    let row = sqlx::query!(
        r#"SELECT user_id, status AS "status: OrderStatus", payment_due_at, delivered_at, amount_to_pay
           FROM orders WHERE id = $1"#,
        order.get()
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row.filter(|row| row.user_id == buyer.get()) else { return Ok(None) };
    let facts = OrderFacts {
        now: Utc::now(),
        payment_due_at: row.payment_due_at,
        delivered_at: row.delivered_at,
        return_window: chrono::Duration::zero(),
        amount_to_pay: row.amount_to_pay,
    };
    Ok(Some(match decide(row.status, OrderAction::Pay, &facts) {
        Err(refusal) => Err(PayRefusal::Refused(refusal)),
        Ok(_) if amount != row.amount_to_pay => Err(PayRefusal::AmountMismatch { to_pay: row.amount_to_pay }),
        Ok(_) => Ok(()),
    }))
}

/// Why no attempt was recorded: a key used before answers its recorded outcome (or belongs to another
/// order), else the table's refusal, else another payment or a refund of the order is at the provider.
async fn why_not(
    pool: &PgPool,
    order: OrderId,
    buyer: UserId,
    payment_key: &str,
    amount: i64,
) -> anyhow::Result<Result<Began, PayRefusal>> {
    let Some(payability) = payability(pool, order, buyer, amount).await? else {
        return Ok(Err(PayRefusal::UnknownOrder));
    };
    if let Some(previous) = attempt_with_key(pool, payment_key).await? {
        if previous.order_id != order.get() {
            return Ok(Err(PayRefusal::KeyOfAnotherOrder));
        }
        return Ok(Ok(Began::Recorded(previous)));
    }
    Ok(Err(payability.err().unwrap_or(PayRefusal::InProgress)))
}

async fn attempt_with_key<'e>(executor: impl PgExecutor<'e>, payment_key: &str) -> sqlx::Result<Option<Attempt>> {
    sqlx::query_as!(
        Attempt,
        r#"SELECT id, order_id, payment_key, amount, status AS "status: PaymentAttemptStatus", idempotency_key,
             failure_code, failure_message, method, approved_at, created_at, refund_idempotency_key, payment_round
           FROM payment_attempts WHERE payment_key = $1"#,
        payment_key
    )
    .fetch_optional(executor)
    .await
}

/// Whether a payment of `order`, or the refund of one, still waits for its outcome.
pub(super) async fn has_open_attempt(tx: &mut Transaction<'_, Postgres>, order: OrderId) -> sqlx::Result<bool> {
    let open = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM payment_attempts WHERE order_id = $1
             AND (status IN ('IN_FLIGHT', 'UNKNOWN', 'WAITING_FOR_DEPOSIT') OR refund_status IN ('IN_FLIGHT', 'UNKNOWN')))
           AS "open!""#,
        order.get()
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(open)
}

/// Commits `outcome` for `attempt`; an approval moves the order to PAID in the same transaction. Settling
/// an attempt that was settled already changes nothing and returns it as it is.
pub async fn settle(
    pool: &PgPool,
    attempt: &Attempt,
    outcome: Outcome,
    rules: LifecycleRules,
    trace_id: Option<&str>,
) -> anyhow::Result<(Attempt, Option<(PlacedOrder, Effects)>)> {
    let mut tx = pool.begin().await?;
    // The order's lock first, as `begin` takes it: the two never wait on each other in a cycle.
    let order = OrderId::parse(attempt.order_id)?;
    let locked = lock(&mut tx, order).await?.ok_or_else(|| anyhow::anyhow!("order {order} vanished"))?;
    let (status, code, message, method, approved_at) = match &outcome {
        Outcome::Approved { method, approved_at } => {
            (PaymentAttemptStatus::Approved, None, None, Some(method.as_str()), Some(*approved_at))
        }
        Outcome::Declined { code, message } => {
            (PaymentAttemptStatus::Declined, Some(code.as_str()), Some(message.as_str()), None, None)
        }
        Outcome::Failed { code, message } => {
            (PaymentAttemptStatus::Failed, Some(code.as_str()), Some(message.as_str()), None, None)
        }
        Outcome::Unknown { reason } => (PaymentAttemptStatus::Unknown, None, Some(reason.as_str()), None, None),
        Outcome::WaitingForDeposit { .. } => {
            (PaymentAttemptStatus::WaitingForDeposit, None, None, Some("VIRTUAL_ACCOUNT"), None)
        }
    };
    let account = match &outcome {
        Outcome::WaitingForDeposit { account, secret } => Some((account, secret.as_str())),
        _ => None,
    };
    let settled = sqlx::query_as!(
        Attempt,
        r#"UPDATE payment_attempts SET status = $2, failure_code = $3, failure_message = $4,
             method = coalesce($5, method), approved_at = $6, updated_at = now(),
             deposit_secret = coalesce($7, deposit_secret), deposit_due_at = coalesce($8, deposit_due_at),
             account_number = coalesce($9, account_number), account_bank = coalesce($10, account_bank)
           WHERE id = $1 AND status IN ('IN_FLIGHT', 'UNKNOWN', 'WAITING_FOR_DEPOSIT')
           RETURNING id, order_id, payment_key, amount, status AS "status: PaymentAttemptStatus", idempotency_key,
             failure_code, failure_message, method, approved_at, created_at, refund_idempotency_key, payment_round"#,
        attempt.id,
        status as PaymentAttemptStatus,
        code,
        message,
        method,
        approved_at,
        account.map(|(_, secret)| secret),
        account.map(|(account, _)| account.due_date.with_timezone(&Utc)),
        account.map(|(account, _)| account.account_number.as_str()),
        account.map(|(account, _)| account.bank.as_str()),
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(settled) = settled else {
        // Settled by someone else meanwhile (the resolution pass, a retry): theirs stands.
        let current = attempt_with_key(&mut *tx, &attempt.payment_key).await?;
        return Ok((current.ok_or_else(|| anyhow::anyhow!("attempt {} vanished", attempt.id))?, None));
    };
    if settled.status == PaymentAttemptStatus::Failed && attempt.status == PaymentAttemptStatus::WaitingForDeposit {
        // The provider issued an account under this order id: it takes no other payment under it.
        end_round(&mut *tx, &settled).await?;
    }
    let mut moved = None;
    if settled.status == PaymentAttemptStatus::Approved {
        let request = MoveRequest {
            order,
            action: OrderAction::Pay,
            actor: OrderActor::System("payment"),
            reason: Some(format!("approved by the provider: {}", settled.method.as_deref().unwrap_or("?"))),
            shipment: None,
            payment_returned: false,
            // The buyer paid when the attempt began, inside the window; the answer may come after it.
            asked_at: Some(settled.created_at),
            trace_id: trace_id.map(str::to_owned),
        };
        match move_locked(&mut tx, locked, request, rules).await? {
            Ok(done) => moved = Some(done),
            // Cancels and expiry wait for open attempts, so the order is still waiting for this payment.
            Err(failure) => anyhow::bail!(
                "order {} could not take the payment approved by attempt {}: {failure:?}",
                settled.order_id,
                settled.id
            ),
        }
    }
    tx.commit().await?;
    Ok((settled, moved))
}

/// Moves `attempt`'s order to its next payment round, once: the provider took a payment under the round's
/// order id that did not pay the order (given back, or an account closed unpaid), and takes no other
/// payment under that id.
pub(super) async fn end_round<'e>(executor: impl PgExecutor<'e>, attempt: &Attempt) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE orders SET payment_round = payment_round + 1 WHERE id = $1 AND payment_round = $2",
        attempt.order_id,
        attempt.payment_round
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// The order's payment to show: its approved attempt, else its latest.
pub async fn latest_attempt(pool: &PgPool, order: i64) -> sqlx::Result<Option<Attempt>> {
    sqlx::query_as!(
        Attempt,
        r#"SELECT id, order_id, payment_key, amount, status AS "status: PaymentAttemptStatus", idempotency_key,
             failure_code, failure_message, method, approved_at, created_at, refund_idempotency_key, payment_round
           FROM payment_attempts WHERE order_id = $1 ORDER BY (status = 'APPROVED') DESC, id DESC LIMIT 1"#,
        order
    )
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_order_id_reads_back_as_its_order_and_round() {
        for (order, round) in [(1, 0), (42, 0), (42, 1), (i64::MAX, i32::MAX)] {
            assert_eq!(parse_payment_order_id(&payment_order_id(order, round)), Some((order, round)));
        }
        assert_eq!(payment_order_id(42, 0), "settle-order-42", "round 0 keeps the id orders were paid under before");
        for text in
            ["settle-order-", "settle-order-x", "settle-order-42-0", "settle-order-42-", "settle-order--1", "order-42"]
        {
            assert_eq!(parse_payment_order_id(text), None, "{text}");
        }
    }
}

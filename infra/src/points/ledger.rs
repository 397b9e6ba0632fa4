use super::{
    cache::BalanceChange,
    lots::{self, LotTerms},
};
use crate::outbox::{self, NewEvent};
use chrono::{DateTime, Utc};
use domain::{
    points::{PointAmount, PointKind, Validity},
    UserId,
};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};

/// A ledger entry as written, with the balance and version it left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub point_id: i64,
    pub user_id: i64,
    pub kind: PointKind,
    pub amount: i64,
    pub balance: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

impl Entry {
    /// The balance this entry left, for the cache (`BalanceCache::commit`).
    pub fn balance_change(&self) -> Option<BalanceChange> {
        let user = UserId::parse(self.user_id).ok()?;
        Some(BalanceChange { user, version: self.version, balance: self.balance })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownUser,
    InsufficientBalance {
        balance: i64,
    },
    UnknownEntry,
    /// Users cancel their own uses; only admins cancel earns.
    NotAllowed,
    AlreadyCancelled,
    /// A cancel entry is not itself cancelled, nor is an expiry.
    NotCancellable,
    /// The use was made by placing this order: it comes back only by cancelling the order.
    BelongsToOrder(i64),
    /// Points of this earn were spent or expired: only an untouched earn can be cancelled.
    EarnTouched,
}

/// Who asks for a change that depends on ownership.
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub user: UserId,
    pub is_admin: bool,
}

/// Reverses one earn or use with a linked CANCEL entry, once, never taking the balance below zero.
pub async fn cancel(
    tx: &mut Transaction<'_, Postgres>,
    point_id: i64,
    actor: Actor,
    regrant: Validity,
    trace_id: Option<&str>,
) -> anyhow::Result<Result<Entry, Refusal>> {
    let original =
        sqlx::query!(r#"SELECT user_id, kind AS "kind: PointKind", amount FROM points WHERE id = $1"#, point_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(original) = original else { return Ok(Err(Refusal::UnknownEntry)) };
    let (owner, kind, amount) = (UserId::parse(original.user_id)?, original.kind, original.amount);
    if !actor.is_admin && actor.user != owner {
        // Another user's entry answers as an unknown one: a stranger learns nothing of it.
        return Ok(Err(Refusal::UnknownEntry));
    }
    if !actor.is_admin && kind != PointKind::Use {
        return Ok(Err(Refusal::NotAllowed));
    }
    if matches!(kind, PointKind::Cancel | PointKind::Expire) {
        return Ok(Err(Refusal::NotCancellable));
    }
    let order = sqlx::query_scalar!("SELECT id FROM orders WHERE point_use_id = $1", point_id)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(order) = order {
        return Ok(Err(Refusal::BelongsToOrder(order)));
    }
    reverse(tx, point_id, owner, amount, regrant, trace_id).await
}

/// Appends the CANCEL entry of `point_id` (an entry of `owner` of `amount`), once, never taking the
/// balance below zero. The caller decided that it may. A cancelled earn closes its lot, only if nothing
/// was taken from it; a cancelled use puts its parts back into their lots, and regrants for `regrant`
/// the parts whose lots expired meanwhile.
pub async fn reverse(
    tx: &mut Transaction<'_, Postgres>,
    point_id: i64,
    owner: UserId,
    amount: i64,
    regrant: Validity,
    trace_id: Option<&str>,
) -> anyhow::Result<Result<Entry, Refusal>> {
    // Lock the balance row first: it serializes every change of this user, cancels included, and every
    // refusal below is decided before anything is written (the caller commits refusals too, to keep the
    // idempotent answer).
    let balance = lock_balance(tx, owner).await?;
    let already = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM points WHERE user_id = $1 AND cancels_point_id = $2) AS "already!""#,
        owner.get(),
        point_id
    )
    .fetch_one(&mut **tx)
    .await?;
    if already {
        return Ok(Err(Refusal::AlreadyCancelled));
    }
    // An untouched earn's lot holds all of it, so the balance covers taking it back.
    if amount > 0 && !lots::close_untouched(tx, owner, point_id).await? {
        return Ok(Err(Refusal::EarnTouched));
    }
    let balance = balance.unwrap_or(0);
    if balance - amount < 0 {
        return Ok(Err(Refusal::InsufficientBalance { balance }));
    }
    let after = sqlx::query!(
        "UPDATE point_balances SET balance = balance - $2, version = version + 1, updated_at = now()
         WHERE user_id = $1 RETURNING balance, version",
        owner.get(),
        amount
    )
    .fetch_one(&mut **tx)
    .await?;
    let entry = append(tx, owner, Change::cancel(-amount, point_id), (after.balance, after.version)).await?;
    if amount < 0 {
        // The clock after the lock, not the transaction's start: a lot that ended while this cancel waited for
        // the lock is regranted, not refilled.
        lots::put_back(tx, owner, (point_id, entry.point_id), -amount, regrant, Utc::now()).await?;
    }
    record_event(tx, "PointsCancelled", &entry, trace_id).await?;
    Ok(Ok(entry))
}

/// Adds `amount` to the user's balance (creating the balance row on the first earn) as a lot made on
/// `terms`, in `tx`.
pub async fn earn(
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    amount: PointAmount,
    terms: LotTerms,
    reason: Option<&str>,
    trace_id: Option<&str>,
) -> anyhow::Result<Result<Entry, Refusal>> {
    // A savepoint, so that an unknown user's foreign-key error leaves the caller's transaction usable.
    let mut tx = sqlx::Connection::begin(&mut **tx).await?;
    let updated = sqlx::query!(
        "INSERT INTO point_balances (user_id, balance, version) VALUES ($1, $2, 1)
         ON CONFLICT (user_id) DO UPDATE SET balance = point_balances.balance + EXCLUDED.balance,
             version = point_balances.version + 1, updated_at = now()
         RETURNING balance, version",
        user.get(),
        amount.get()
    )
    .fetch_one(&mut *tx)
    .await;
    let after = match updated {
        Ok(row) => (row.balance, row.version),
        Err(error) if is_unknown_user(&error) => return Ok(Err(Refusal::UnknownUser)),
        Err(error) => return Err(error.into()),
    };
    let change =
        Change { kind: PointKind::Earn, amount: amount.get(), reason, order_id: None, cancels: None, id: None };
    let entry = append(&mut tx, user, change, after).await?;
    lots::open(&mut tx, user, entry.point_id, amount.get(), terms, entry.created_at).await?;
    record_event(&mut tx, "PointsEarned", &entry, trace_id).await?;
    tx.commit().await?;
    Ok(Ok(entry))
}

/// Takes `amount` from the user's balance, only if their lots still spendable now cover it, in `tx`.
pub async fn spend(
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    amount: PointAmount,
    order_id: Option<i64>,
    trace_id: Option<&str>,
) -> anyhow::Result<Result<Entry, Refusal>> {
    // The balance row's lock first: it serializes every change of the user's lots.
    let Some(_) = lock_balance(tx, user).await? else {
        return Ok(Err(Refusal::InsufficientBalance { balance: 0 }));
    };
    let use_point_id = match lots::take(tx, user, amount.get(), Utc::now()).await? {
        Ok(use_point_id) => use_point_id,
        // An expired lot's points still count in the balance until the expiry job takes them.
        Err(spendable) => return Ok(Err(Refusal::InsufficientBalance { balance: spendable })),
    };
    let after = sqlx::query!(
        "UPDATE point_balances SET balance = balance - $2, version = version + 1, updated_at = now()
         WHERE user_id = $1 RETURNING balance, version",
        user.get(),
        amount.get()
    )
    .fetch_one(&mut **tx)
    .await?;
    let change = Change::spend(use_point_id, amount.get(), order_id);
    let entry = append(tx, user, change, (after.balance, after.version)).await?;
    record_event(tx, "PointsUsed", &entry, trace_id).await?;
    Ok(Ok(entry))
}

/// The stored balance and its version, or None for a user who never earned.
pub async fn balance(pool: &PgPool, user: UserId) -> sqlx::Result<Option<(i64, i64)>> {
    let row = sqlx::query!("SELECT balance, version FROM point_balances WHERE user_id = $1", user.get())
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|row| (row.balance, row.version)))
}

/// The user's balance, locking its row for the rest of `tx` (None for a user who never earned): every
/// change of a user's balance, ledger and lots holds it.
async fn lock_balance(tx: &mut Transaction<'_, Postgres>, user: UserId) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT balance FROM point_balances WHERE user_id = $1 FOR UPDATE", user.get())
        .fetch_optional(&mut **tx)
        .await
}

/// One ledger entry to append: its kind, signed amount and links, and its id when drawn before.
struct Change<'a> {
    kind: PointKind,
    amount: i64,
    reason: Option<&'a str>,
    order_id: Option<i64>,
    cancels: Option<i64>,
    id: Option<i64>,
}

impl Change<'_> {
    fn cancel(amount: i64, cancels: i64) -> Self {
        Change { kind: PointKind::Cancel, amount, reason: None, order_id: None, cancels: Some(cancels), id: None }
    }

    /// A use whose id was drawn when its lots were taken (the allocations name it).
    fn spend(id: i64, amount: i64, order_id: Option<i64>) -> Self {
        Change { kind: PointKind::Use, amount: -amount, reason: None, order_id, cancels: None, id: Some(id) }
    }
}

async fn append(
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    change: Change<'_>,
    (balance, version): (i64, i64),
) -> sqlx::Result<Entry> {
    let written = sqlx::query!(
        "INSERT INTO points (id, user_id, kind, amount, reason, order_id, cancels_point_id)
         VALUES (coalesce($7, nextval('points_id_seq')), $1, $2, $3, $4, $5, $6) RETURNING id, created_at",
        user.get(),
        change.kind as PointKind,
        change.amount,
        change.reason,
        change.order_id,
        change.cancels,
        change.id,
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(Entry {
        point_id: written.id,
        user_id: user.get(),
        kind: change.kind,
        amount: change.amount,
        balance,
        version,
        created_at: written.created_at,
    })
}

async fn record_event(
    tx: &mut Transaction<'_, Postgres>,
    event_type: &str,
    entry: &Entry,
    trace_id: Option<&str>,
) -> sqlx::Result<()> {
    let event = NewEvent {
        aggregate: outbox::Aggregate::Points,
        aggregate_id: entry.user_id.to_string(),
        event_type,
        payload: json!({
            "pointId": entry.point_id,
            "userId": entry.user_id,
            "amount": entry.amount,
            "balance": entry.balance,
            "version": entry.version,
        }),
        trace_id,
    };
    outbox::append(&mut **tx, event).await.map(|_| ())
}

fn is_unknown_user(error: &sqlx::Error) -> bool {
    crate::db::violated_constraint(error) == Some("point_balances_user_id_fkey")
}

//! The lots behind a balance: every earn makes one, a use takes from them in the spending order (admin
//! grants first, then the soonest expiry, then the oldest) and records each part, a cancelled use puts
//! each part back (or regrants it where its lot expired). Always called in the ledger's transaction,
//! under the user's balance row lock, which is what serializes every change of a user's lots.

use super::cache::ExpiringSoon;
use chrono::{DateTime, Utc};
use domain::{
    points::{LotSource, Validity},
    UserId,
};
use sqlx::{Postgres, Transaction};

/// How an earn's lot is made: where its points come from and how long they stay spendable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LotTerms {
    pub source: LotSource,
    pub validity: Validity,
}

/// Makes the lot of the ledger entry `point_id`.
pub(super) async fn open(
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    point_id: i64,
    amount: i64,
    terms: LotTerms,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO point_lots (user_id, source, amount, remaining, expires_at, point_id, created_at)
         VALUES ($1, $2, $3, $3, $4, $5, $6)",
        user.get(),
        terms.source as LotSource,
        amount,
        terms.validity.expiry_from(now),
        point_id,
        now,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Takes `amount` from the user's lots still spendable at `now`, in the spending order, recording one
/// allocation per lot under a ledger entry id drawn here (returned, for the USE entry): all of it, or
/// nothing when the lots do not cover it (then what is still spendable is returned as the refusal).
pub(super) async fn take(
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    amount: i64,
    now: DateTime<Utc>,
) -> sqlx::Result<Result<i64, i64>> {
    let row = sqlx::query!(
        r#"WITH drawn AS (SELECT nextval('points_id_seq') AS id),
           spendable AS (
             SELECT id, remaining,
                    (sum(remaining) OVER (ORDER BY (source <> 'ADMIN'), expires_at, id))::bigint AS through
             FROM point_lots WHERE user_id = $1 AND remaining > 0 AND expires_at > $3),
           covered AS (SELECT coalesce(max(through), 0) AS available FROM spendable),
           taken AS (
             SELECT s.id, LEAST(s.remaining, $2::bigint - (s.through - s.remaining)) AS part
             FROM spendable s, covered c
             WHERE c.available >= $2 AND s.through - s.remaining < $2),
           lowered AS (
             UPDATE point_lots l SET remaining = l.remaining - t.part
             FROM taken t WHERE l.user_id = $1 AND l.id = t.id
             RETURNING l.id, t.part),
           recorded AS (
             INSERT INTO point_allocations (user_id, use_point_id, lot_id, amount)
             SELECT $1, (SELECT id FROM drawn), id, part FROM lowered)
           SELECT (SELECT available FROM covered) AS "available!: i64", (SELECT id FROM drawn) AS "use_point_id!""#,
        user.get(),
        amount,
        now,
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(if row.available >= amount { Ok(row.use_point_id) } else { Err(row.available) })
}

/// Puts the parts the use `use_point_id` took back into their lots where those are still spendable at
/// `now`; the rest (parts of expired lots, or all of a use made before lots existed: `amount` less what
/// went back) comes back as a REGRANT lot of the cancel entry `cancel_point_id`, valid for `validity`.
pub(super) async fn put_back(
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    (use_point_id, cancel_point_id): (i64, i64),
    amount: i64,
    validity: Validity,
    now: DateTime<Utc>,
) -> sqlx::Result<i64> {
    let restored = sqlx::query_scalar!(
        r#"WITH parts AS (
             SELECT a.lot_id, a.amount FROM point_allocations a
             JOIN point_lots l ON l.user_id = a.user_id AND l.id = a.lot_id
             WHERE a.user_id = $1 AND a.use_point_id = $2 AND l.expires_at > $3 AND l.closed_at IS NULL),
           raised AS (
             UPDATE point_lots l SET remaining = l.remaining + p.amount
             FROM parts p WHERE l.user_id = $1 AND l.id = p.lot_id
             RETURNING p.amount)
           SELECT coalesce(sum(amount), 0)::bigint AS "restored!" FROM raised"#,
        user.get(),
        use_point_id,
        now,
    )
    .fetch_one(&mut **tx)
    .await?;
    let regranted = amount - restored;
    if regranted > 0 {
        let terms = LotTerms { source: LotSource::Regrant, validity };
        open(tx, user, cancel_point_id, regranted, terms, now).await?;
    }
    Ok(regranted)
}

/// Closes the lot of the earn `earn_point_id` if nothing was taken from it; false if something was (or it
/// expired and the expiry took what was left): such an earn can no longer be cancelled.
pub(super) async fn close_untouched(
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    earn_point_id: i64,
) -> sqlx::Result<bool> {
    let closed = sqlx::query!(
        "UPDATE point_lots SET remaining = 0, closed_at = now()
         WHERE user_id = $1 AND point_id = $2 AND remaining = amount AND closed_at IS NULL",
        user.get(),
        earn_point_id
    )
    .execute(&mut **tx)
    .await?;
    Ok(closed.rows_affected() == 1)
}

/// What is left of a lot that is still spendable, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiringLot {
    pub expires_at: DateTime<Utc>,
    pub remaining: i64,
    pub source: LotSource,
}

/// The user's lots still spendable now that stop being so by `until`, soonest first.
pub async fn expiring(pool: &sqlx::PgPool, user: UserId, until: DateTime<Utc>) -> sqlx::Result<Vec<ExpiringLot>> {
    sqlx::query_as!(
        ExpiringLot,
        r#"SELECT expires_at, remaining, source AS "source: LotSource" FROM point_lots
           WHERE user_id = $1 AND remaining > 0 AND expires_at > now() AND expires_at <= $2
           ORDER BY expires_at, id"#,
        user.get(),
        until
    )
    .fetch_all(pool)
    .await
}

/// The user's balance, its version and the part of it in lots that stop being spendable within
/// `window_days`, read in one snapshot (None for a user who never earned).
pub async fn balance_with_expiring(
    pool: &sqlx::PgPool,
    user: UserId,
    window_days: i32,
) -> sqlx::Result<Option<(i64, ExpiringSoon)>> {
    let row = sqlx::query!(
        r#"WITH w AS (SELECT make_interval(days => $2) AS span)
           SELECT b.balance, b.version,
                  coalesce(sum(l.remaining) FILTER (WHERE l.expires_at <= now() + w.span), 0)::bigint AS "expiring!",
                  min(CASE WHEN l.expires_at <= now() + w.span THEN l.expires_at ELSE l.expires_at - w.span END)
                    AS until
           FROM w, point_balances b
           LEFT JOIN point_lots l ON l.user_id = b.user_id AND l.remaining > 0 AND l.expires_at > now()
           WHERE b.user_id = $1
           GROUP BY b.balance, b.version"#,
        user.get(),
        window_days,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| (row.balance, ExpiringSoon { version: row.version, amount: row.expiring, until: row.until })))
}

/// A lot as support reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lot {
    pub id: i64,
    pub source: LotSource,
    pub amount: i64,
    pub remaining: i64,
    pub expires_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// The user's latest `limit` lots, newest first, spent, expired and closed ones too.
pub async fn lots_of(pool: &sqlx::PgPool, user: UserId, limit: i64) -> sqlx::Result<Vec<Lot>> {
    sqlx::query_as!(
        Lot,
        r#"SELECT id, source AS "source: LotSource", amount, remaining, expires_at, closed_at FROM point_lots
           WHERE user_id = $1 ORDER BY id DESC LIMIT $2"#,
        user.get(),
        limit
    )
    .fetch_all(pool)
    .await
}

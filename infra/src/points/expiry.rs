//! Expiry: what was left of the lots whose validity ended leaves the balance. One chunk of users at a
//! time, under their balance row locks (the lock every change of a user's lots takes): a use racing the
//! job either committed first, and the job expires only what it left, or waits for the job and then
//! finds the lot closed. Each user gets one EXPIRE entry and one `PointsExpired` event per chunk.

use super::cache::BalanceChange;
use crate::outbox::{self, Aggregate, NewEvent};
use chrono::{DateTime, Utc};
use domain::UserId;
use serde_json::json;
use sqlx::{Postgres, Transaction};

/// What the expiry took from one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub user_id: i64,
    /// The EXPIRE ledger entry.
    pub point_id: i64,
    /// Points taken (positive).
    pub amount: i64,
    pub lots: i64,
    pub balance: i64,
    pub version: i64,
}

impl Expired {
    /// The balance the expiry left, for the cache.
    pub fn balance_change(&self) -> Option<BalanceChange> {
        let user = UserId::parse(self.user_id).ok()?;
        Some(BalanceChange { user, version: self.version, balance: self.balance })
    }
}

/// Locks, in user order, the balance rows of the next `limit` users after `after` in hash partition
/// `partition` holding a lot with something left that stopped being spendable by `cutoff`.
pub async fn lock_due_users(
    tx: &mut Transaction<'_, Postgres>,
    partition: i32,
    after: i64,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<i64>> {
    // Not a macro: the partition is part of the table name. Reading one partition's lots walks its
    // own indexes instead of all sixteen; its balances live in the partition of the same number.
    sqlx::query_scalar(&format!(
        "SELECT user_id FROM point_balances_p{partition} WHERE user_id IN (
           SELECT DISTINCT user_id FROM point_lots_p{partition}
           WHERE remaining > 0 AND expires_at <= $2 AND user_id > $1 ORDER BY user_id LIMIT $3)
         ORDER BY user_id FOR UPDATE"
    ))
    .bind(after)
    .bind(cutoff)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
}

/// Closes the due lots of `users` (whose balance rows `tx` holds locked), takes what they held off each
/// balance with an EXPIRE entry whose reason is `reason`, and appends a `PointsExpired` event per user.
pub async fn expire_locked(
    tx: &mut Transaction<'_, Postgres>,
    users: &[i64],
    cutoff: DateTime<Utc>,
    reason: &str,
    trace_id: Option<&str>,
) -> sqlx::Result<Vec<Expired>> {
    // A statement of its own after the locks: its snapshot sees every change committed before them.
    let expired = sqlx::query_as!(
        Expired,
        r#"WITH due AS (
             SELECT user_id, id, remaining FROM point_lots
             WHERE user_id = ANY($1) AND remaining > 0 AND expires_at <= $2),
           closed AS (
             UPDATE point_lots l SET remaining = 0, closed_at = now()
             FROM due d WHERE l.user_id = d.user_id AND l.id = d.id
             RETURNING d.user_id, d.remaining),
           per_user AS (
             SELECT user_id, sum(remaining)::bigint AS amount, count(*) AS lots FROM closed GROUP BY user_id),
           lowered AS (
             UPDATE point_balances b SET balance = b.balance - p.amount, version = b.version + 1, updated_at = now()
             FROM per_user p WHERE b.user_id = p.user_id
             RETURNING b.user_id, nextval('points_id_seq') AS point_id, b.balance, b.version, p.amount, p.lots),
           -- Ids drawn above, so the answer needs no join back to the inserted rows (a nested loop the
           -- planner cannot size: it took three quarters of a chunk's time).
           entries AS (
             INSERT INTO points (id, user_id, kind, amount, reason)
             SELECT point_id, user_id, 'EXPIRE', -amount, $3 FROM lowered)
           SELECT user_id AS "user_id!", point_id AS "point_id!", amount AS "amount!", lots AS "lots!",
                  balance AS "balance!", version AS "version!"
           FROM lowered ORDER BY user_id"#,
        users,
        cutoff,
        reason,
    )
    .fetch_all(&mut **tx)
    .await?;
    let events: Vec<NewEvent> = expired
        .iter()
        .map(|e| NewEvent {
            aggregate: Aggregate::Points,
            aggregate_id: e.user_id.to_string(),
            event_type: "PointsExpired",
            payload: payload(e, reason),
            trace_id,
        })
        .collect();
    outbox::append_all(&mut **tx, &events).await?;
    Ok(expired)
}

/// The event of one user's expiry: the ledger event's fields (amount signed, as in the ledger), and the
/// lots it closed.
fn payload(expired: &Expired, reason: &str) -> serde_json::Value {
    json!({
        "pointId": expired.point_id,
        "userId": expired.user_id,
        "amount": -expired.amount,
        "balance": expired.balance,
        "version": expired.version,
        "lots": expired.lots,
        "reason": reason,
    })
}

//! Parked outbox rows: deliveries that failed `OUTBOX_MAX_ATTEMPTS` times. The relay skips them and the
//! rest of their aggregate; an operator lists them and re-drives each once its cause is fixed.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedRow {
    pub id: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub parked_at: DateTime<Utc>,
    /// Later unsent rows of the same aggregate, waiting behind this one.
    pub waiting: i64,
}

/// Every parked row, oldest first, with how many rows of its aggregate wait behind it.
pub async fn list(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<ParkedRow>> {
    sqlx::query_as!(
        ParkedRow,
        r#"SELECT p.id, p.aggregate_type, p.aggregate_id, p.event_type, p.attempts, p.last_error, p.created_at,
                p.parked_at AS "parked_at!",
                (SELECT count(*) FROM outbox_events w WHERE w.sent_at IS NULL AND w.parked_at IS NULL
                   AND w.aggregate_type = p.aggregate_type AND w.aggregate_id = p.aggregate_id) AS "waiting!"
           FROM outbox_events p WHERE p.parked_at IS NOT NULL ORDER BY p.id LIMIT $1"#,
        limit
    )
    .fetch_all(pool)
    .await
}

/// How many rows are parked now.
pub async fn count(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "parked!" FROM outbox_events WHERE parked_at IS NOT NULL"#)
        .fetch_one(pool)
        .await
}

/// Puts a parked row back in the relay's queue with a fresh attempt count and wakes the relays; false if
/// no row `id` is parked.
pub async fn retry(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let retried = sqlx::query!(
        "UPDATE outbox_events SET parked_at = NULL, attempts = 0 WHERE id = $1 AND parked_at IS NOT NULL",
        id
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if retried == 1 {
        sqlx::query!("SELECT pg_notify('outbox_events', '')").fetch_one(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(retried == 1)
}

/// The relay's queue now: rows not sent and not parked, and when the oldest of them was written.
pub async fn backlog(pool: &PgPool) -> sqlx::Result<(i64, Option<DateTime<Utc>>)> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "unsent!", min(created_at) AS oldest FROM outbox_events
           WHERE sent_at IS NULL AND parked_at IS NULL"#
    )
    .fetch_one(pool)
    .await?;
    Ok((row.unsent, row.oldest))
}

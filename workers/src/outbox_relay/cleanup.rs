//! Retention: sent outbox rows, consumers' dedupe rows and the API's idempotency keys are deleted once
//! older than their retention, in small chunks so cleanup never holds many row locks or competes with
//! the relay for long. Unsent and parked outbox rows are never deleted, however old.

use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const CHUNK: i64 = 5_000;
const EVERY: Duration = Duration::from_secs(60);

/// How long each kind of row is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Sent outbox rows and consumers' dedupe rows.
    pub outbox: Duration,
    pub idempotency_keys: Duration,
}

/// What one round deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub outbox: u64,
    pub processed: u64,
    pub idempotency_keys: u64,
}

/// Deletes everything past its retention. Oldest first, `CHUNK` rows per statement, skipping rows
/// someone else holds (the relay, an operator's script).
pub async fn delete_expired(pool: &PgPool, retention: Retention) -> sqlx::Result<Deleted> {
    let outbox = seconds(retention.outbox);
    let keys = seconds(retention.idempotency_keys);
    let sent = delete_in_chunks(|| {
        sqlx::query!(
            "DELETE FROM outbox_events WHERE id IN (
                 SELECT id FROM outbox_events WHERE sent_at < now() - $1::bigint * interval '1 second'
                 ORDER BY sent_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
            outbox,
            CHUNK
        )
        .execute(pool)
    })
    .await?;
    let processed = delete_in_chunks(|| {
        sqlx::query!(
            "DELETE FROM processed_events WHERE (consumer, event_id) IN (
                 SELECT consumer, event_id FROM processed_events WHERE processed_at < now() - $1::bigint * interval '1 second'
                 ORDER BY processed_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
            outbox,
            CHUNK
        )
        .execute(pool)
    })
    .await?;
    // A key past its retention answers as new: a client retrying later than that repeats the effect.
    let idempotency_keys = delete_in_chunks(|| {
        sqlx::query!(
            "DELETE FROM idempotency_keys WHERE (user_id, idempotency_key) IN (
                 SELECT user_id, idempotency_key FROM idempotency_keys
                 WHERE created_at < now() - $1::bigint * interval '1 second'
                 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
            keys,
            CHUNK
        )
        .execute(pool)
    })
    .await?;
    Ok(Deleted { outbox: sent, processed, idempotency_keys })
}

fn seconds(retention: Duration) -> i64 {
    i64::try_from(retention.as_secs()).unwrap_or(i64::MAX)
}

async fn delete_in_chunks<F, Fut>(mut delete_chunk: F) -> sqlx::Result<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<sqlx::postgres::PgQueryResult>>,
{
    let mut total = 0;
    loop {
        let deleted = delete_chunk().await?.rows_affected();
        total += deleted;
        if deleted < CHUNK as u64 {
            return Ok(total);
        }
    }
}

/// Runs cleanup every minute until shutdown; a failed round is logged and tried again next time.
pub async fn run(pool: PgPool, retention: Retention, shutdown: CancellationToken) {
    loop {
        match delete_expired(&pool, retention).await {
            Ok(deleted) if deleted == Deleted::default() => {}
            Ok(deleted) => tracing::info!(
                outbox = deleted.outbox,
                processed = deleted.processed,
                idempotency_keys = deleted.idempotency_keys,
                "deleted rows past their retention"
            ),
            Err(error) => tracing::warn!(%error, "retention cleanup failed; trying again later"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

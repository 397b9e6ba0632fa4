//! Retention: sent outbox rows, consumers' dedupe rows and the API's idempotency keys are deleted once
//! older than their retention, in small chunks so cleanup never holds many row locks or competes with
//! the relay for long. Unsent and parked outbox rows are never deleted, however old.

use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const CHUNK: i64 = 5_000;
const EVERY: Duration = Duration::from_secs(60);

const DELETE_SENT: &str = "\
    DELETE FROM outbox_events WHERE id IN ( \
        SELECT id FROM outbox_events WHERE sent_at < now() - $1 * interval '1 second' \
        ORDER BY sent_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

const DELETE_PROCESSED: &str = "\
    DELETE FROM processed_events WHERE (consumer, event_id) IN ( \
        SELECT consumer, event_id FROM processed_events WHERE processed_at < now() - $1 * interval '1 second' \
        ORDER BY processed_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

// A key past its retention answers as new: a client retrying a day later repeats the effect.
const DELETE_IDEMPOTENCY_KEYS: &str = "\
    DELETE FROM idempotency_keys WHERE (user_id, idempotency_key) IN ( \
        SELECT user_id, idempotency_key FROM idempotency_keys WHERE created_at < now() - $1 * interval '1 second' \
        ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

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

/// Deletes everything past its retention.
pub async fn delete_expired(pool: &PgPool, retention: Retention) -> sqlx::Result<Deleted> {
    Ok(Deleted {
        outbox: delete_in_chunks(pool, DELETE_SENT, retention.outbox).await?,
        processed: delete_in_chunks(pool, DELETE_PROCESSED, retention.outbox).await?,
        idempotency_keys: delete_in_chunks(pool, DELETE_IDEMPOTENCY_KEYS, retention.idempotency_keys).await?,
    })
}

async fn delete_in_chunks(pool: &PgPool, statement: &str, retention: Duration) -> sqlx::Result<u64> {
    let seconds = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    let mut total = 0;
    loop {
        let deleted = sqlx::query(statement).bind(seconds).bind(CHUNK).execute(pool).await?.rows_affected();
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

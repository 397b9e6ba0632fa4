//! Retention: sent outbox rows and consumers' dedupe rows are deleted once older than the retention, in
//! small chunks so cleanup never holds many row locks or competes with the relay for long.

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

/// Deletes everything past `retention` and returns how many rows went (outbox, dedupe).
pub async fn delete_expired(pool: &PgPool, retention: Duration) -> sqlx::Result<(u64, u64)> {
    let outbox = delete_in_chunks(pool, DELETE_SENT, retention).await?;
    let processed = delete_in_chunks(pool, DELETE_PROCESSED, retention).await?;
    Ok((outbox, processed))
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
pub async fn run(pool: PgPool, retention: Duration, shutdown: CancellationToken) {
    loop {
        match delete_expired(&pool, retention).await {
            Ok((0, 0)) => {}
            Ok((outbox, processed)) => tracing::info!(outbox, processed, "deleted expired outbox and dedupe rows"),
            Err(error) => tracing::warn!(%error, "outbox cleanup failed; trying again later"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

//! Retention: sent outbox rows, consumers' dedupe rows, the API's idempotency keys, expired refresh
//! tokens and old login history are deleted once past their retention, in small chunks so cleanup never holds many row locks or competes with
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
    /// Login attempts in the login history.
    pub login_history: Duration,
}

/// What one round deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub outbox: u64,
    pub processed: u64,
    pub idempotency_keys: u64,
    pub refresh_tokens: u64,
    pub login_history: u64,
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
    // An expired refresh token can never be used again; its family goes with its last token.
    let refresh_tokens = delete_in_chunks(|| {
        sqlx::query!(
            "DELETE FROM refresh_tokens WHERE token_hash IN (
                 SELECT token_hash FROM refresh_tokens WHERE expires_at < now()
                 ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)",
            CHUNK
        )
        .execute(pool)
    })
    .await?;
    sqlx::query!(
        "DELETE FROM refresh_token_families f
         WHERE NOT EXISTS (SELECT FROM refresh_tokens t WHERE t.family_id = f.id)
           AND f.created_at < now() - interval '1 day'"
    )
    .execute(pool)
    .await?;
    let history = seconds(retention.login_history);
    let login_history = delete_in_chunks(|| {
        sqlx::query!(
            "DELETE FROM login_history WHERE id IN (
                 SELECT id FROM login_history WHERE logged_in_at < now() - $1::bigint * interval '1 second'
                 ORDER BY logged_in_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
            history,
            CHUNK
        )
        .execute(pool)
    })
    .await?;
    Ok(Deleted { outbox: sent, processed, idempotency_keys, refresh_tokens, login_history })
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
                refresh_tokens = deleted.refresh_tokens,
                login_history = deleted.login_history,
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

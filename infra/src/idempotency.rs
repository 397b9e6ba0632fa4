//! Idempotency keys: the first request with a key stores its response in the same transaction as its
//! effect; a retry with the same key and body gets that response again, with another body a refusal.
//! A concurrent duplicate waits on the key's unique index until the first commits (or rolls back, in
//! which case it goes ahead itself).

use sha2::{Digest, Sha256};
use sqlx::{Postgres, Transaction};

/// The longest key accepted (the column's CHECK agrees).
pub const MAX_KEY_LENGTH: usize = 200;

pub struct IdempotencyKey {
    pub user_id: i64,
    pub key: String,
    pub request_hash: String,
}

impl IdempotencyKey {
    /// A key scoped to `user_id`, fingerprinting the route and the request body.
    pub fn new(user_id: i64, key: &str, route: &str, body: &serde_json::Value) -> Option<Self> {
        let valid = !key.is_empty() && key.len() <= MAX_KEY_LENGTH && key.bytes().all(|b| b.is_ascii_graphic());
        valid.then(|| Self { user_id, key: key.to_owned(), request_hash: request_hash(route, body) })
    }
}

/// SHA-256 of the route and the body with its keys sorted (serde_json's map is ordered), in hex.
fn request_hash(route: &str, body: &serde_json::Value) -> String {
    let digest =
        Sha256::new().chain_update(route.as_bytes()).chain_update([0]).chain_update(body.to_string()).finalize();
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[derive(Debug, PartialEq)]
pub enum Claim {
    /// First use of the key: do the work, then `complete`.
    Fresh,
    /// Seen before with the same request: answer this again.
    Replay { status: u16, body: serde_json::Value },
    /// Seen before with a different request.
    KeyReused,
}

pub async fn claim(tx: &mut Transaction<'_, Postgres>, key: &IdempotencyKey) -> sqlx::Result<Claim> {
    let inserted = sqlx::query!(
        "INSERT INTO idempotency_keys (user_id, idempotency_key, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, idempotency_key) DO NOTHING",
        key.user_id,
        key.key,
        key.request_hash
    )
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::Fresh);
    }
    let stored = sqlx::query!(
        "SELECT request_hash, response_status, response_body FROM idempotency_keys
         WHERE user_id = $1 AND idempotency_key = $2",
        key.user_id,
        key.key
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(match (stored.request_hash == key.request_hash, stored.response_status, stored.response_body) {
        (false, _, _) => Claim::KeyReused,
        (true, Some(status), Some(body)) => Claim::Replay { status: status as u16, body },
        // Committed without a response cannot happen (both are written in one transaction).
        (true, _, _) => Claim::KeyReused,
    })
}

/// The answer stored for `key` if a request with the same body completed with it (a lock-free read, for
/// a path that refuses before it opens a transaction).
pub async fn stored_answer(
    pool: &sqlx::PgPool,
    key: &IdempotencyKey,
) -> sqlx::Result<Option<(u16, serde_json::Value)>> {
    let stored = sqlx::query!(
        "SELECT response_status, response_body FROM idempotency_keys
         WHERE user_id = $1 AND idempotency_key = $2 AND request_hash = $3",
        key.user_id,
        key.key,
        key.request_hash
    )
    .fetch_optional(pool)
    .await?;
    Ok(stored.and_then(|row| Some((row.response_status? as u16, row.response_body?))))
}

pub async fn complete(
    tx: &mut Transaction<'_, Postgres>,
    key: &IdempotencyKey,
    status: u16,
    body: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE idempotency_keys SET response_status = $3, response_body = $4 WHERE user_id = $1 AND idempotency_key = $2",
        key.user_id,
        key.key,
        status as i16,
        body
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_fingerprint_ignores_key_order_but_not_values_or_routes() {
        let a = IdempotencyKey::new(1, "k", "/use", &json!({ "amount": 10, "orderId": 3 })).expect("key");
        let b = IdempotencyKey::new(1, "k", "/use", &json!({ "orderId": 3, "amount": 10 })).expect("key");
        let c = IdempotencyKey::new(1, "k", "/use", &json!({ "orderId": 3, "amount": 11 })).expect("key");
        let d = IdempotencyKey::new(1, "k", "/earn", &json!({ "amount": 10, "orderId": 3 })).expect("key");
        assert_eq!(a.request_hash, b.request_hash);
        assert_ne!(a.request_hash, c.request_hash);
        assert_ne!(a.request_hash, d.request_hash);
    }

    #[test]
    fn empty_overlong_or_spaced_keys_are_refused() {
        for bad in ["", "has space", &"k".repeat(MAX_KEY_LENGTH + 1)] {
            assert!(IdempotencyKey::new(1, bad, "/use", &json!({})).is_none(), "{bad:?}");
        }
    }
}

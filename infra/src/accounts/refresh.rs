//! Refresh tokens: opaque 256-bit random values, stored only as their SHA-256, in families (one per
//! login). Refreshing uses a token up and issues the next of its family, atomically: of concurrent
//! refreshes with one token exactly one wins. A used token presented again is taken as theft (RFC 9700
//! 4.14.2): the whole family is revoked, the newest token with it.

use domain::{Role, UserId};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};
use std::time::Duration;
use uuid::Uuid;

/// Why a family was revoked (the column's CHECK lists the same values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Revocation {
    Logout,
    Reused,
    PasswordChanged,
}

/// A refreshed session: who, with the role read from the users row now, and the family's next token.
#[derive(Debug)]
pub struct Rotated {
    pub user: UserId,
    pub role: Role,
    pub token: String,
    pub family: Uuid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Unknown, expired, or of a revoked family.
    Invalid,
    /// Used before: the family is revoked now.
    Reused { family: Uuid, user: i64 },
}

pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub(crate) fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

pub(crate) fn expiry(ttl: Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(14))
}

/// Starts a family for a login whose password was checked against `verified_hash`, and returns its first
/// token; None when the user's password is no longer that one. The share lock on the user row orders this
/// against a password change: one that committed first is seen here (no family), one that commits later
/// revokes the family made here. Without it, a login verified just before a change and creating its family
/// just after would hold a refresh token the change never revoked.
pub async fn start_family(
    pool: &PgPool,
    user: UserId,
    verified_hash: &str,
    ttl: Duration,
) -> sqlx::Result<Option<String>> {
    let mut tx = pool.begin().await?;
    let Some(family) = begin_family(&mut tx, user, verified_hash).await? else { return Ok(None) };
    let token = add_token(&mut tx, family, ttl).await?;
    tx.commit().await?;
    Ok(Some(token))
}

/// Inserts a family for `user` in `tx` if their password is still `verified_hash` (see `start_family`
/// for why under a share lock): every session a sign-in starts is one, so a password change or a logout
/// revokes it.
pub(crate) async fn begin_family(
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    verified_hash: &str,
) -> sqlx::Result<Option<Uuid>> {
    let still_valid = sqlx::query_scalar!(
        "SELECT id FROM users WHERE id = $1 AND password_hash = $2 FOR SHARE",
        user.get(),
        verified_hash
    )
    .fetch_optional(&mut **tx)
    .await?;
    if still_valid.is_none() {
        return Ok(None);
    }
    let family = Uuid::new_v4();
    sqlx::query!("INSERT INTO refresh_token_families (id, user_id) VALUES ($1, $2)", family, user.get())
        .execute(&mut **tx)
        .await?;
    Ok(Some(family))
}

async fn add_token(tx: &mut Transaction<'_, Postgres>, family: Uuid, ttl: Duration) -> sqlx::Result<String> {
    let token = new_token();
    sqlx::query!(
        "INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES ($1, $2, $3)",
        digest(&token),
        family,
        expiry(ttl)
    )
    .execute(&mut **tx)
    .await?;
    Ok(token)
}

/// Uses `token` up and returns the family's next one.
pub async fn rotate(pool: &PgPool, token: &str, ttl: Duration) -> sqlx::Result<Result<Rotated, Refused>> {
    let hash = digest(token);
    let mut tx = pool.begin().await?;
    // The row lock makes this the one place a token is used: a concurrent refresh with the same token
    // waits here, then finds it used and counts as a reuse.
    let used = sqlx::query!(
        r#"UPDATE refresh_tokens t SET used_at = now()
           FROM refresh_token_families f
           WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > now()
             AND f.id = t.family_id AND f.revoked_at IS NULL
           RETURNING t.family_id, f.user_id"#,
        hash
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(used) = used else {
        let refused = refuse(&mut tx, &hash).await?;
        tx.commit().await?;
        return Ok(Err(refused));
    };
    let user = UserId::parse(used.user_id).map_err(|error| sqlx::Error::Decode(error.into()))?;
    let Some(role) = super::users::role(&mut tx, user).await? else {
        return Ok(Err(Refused::Invalid));
    };
    let token = add_token(&mut tx, used.family_id, ttl).await?;
    tx.commit().await?;
    Ok(Ok(Rotated { user, role, token, family: used.family_id }))
}

/// Why a token could not be used; a used one revokes its family (in `tx`).
async fn refuse(tx: &mut Transaction<'_, Postgres>, hash: &str) -> sqlx::Result<Refused> {
    let known = sqlx::query!(
        r#"SELECT t.family_id, t.used_at IS NOT NULL AS "used!", f.user_id, f.revoked_at IS NOT NULL AS "revoked!"
           FROM refresh_tokens t JOIN refresh_token_families f ON f.id = t.family_id WHERE t.token_hash = $1"#,
        hash
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match known {
        Some(token) if token.used => {
            revoke(tx, token.family_id, Revocation::Reused).await?;
            Refused::Reused { family: token.family_id, user: token.user_id }
        }
        _ => Refused::Invalid,
    })
}

pub(crate) async fn revoke(tx: &mut Transaction<'_, Postgres>, family: Uuid, why: Revocation) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE refresh_token_families SET revoked_at = now(), revoke_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
        family,
        why as Revocation
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Logout: revokes the family of `token`. Unknown or already revoked tokens change nothing.
pub async fn revoke_family_of(pool: &PgPool, token: &str) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    let family = sqlx::query_scalar!("SELECT family_id FROM refresh_tokens WHERE token_hash = $1", digest(token))
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(family) = family {
        revoke(&mut tx, family, Revocation::Logout).await?;
    }
    tx.commit().await
}

/// Revokes every live family of `user`; how many.
pub async fn revoke_all(tx: &mut Transaction<'_, Postgres>, user: UserId, why: Revocation) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE refresh_token_families SET revoked_at = now(), revoke_reason = $2
         WHERE user_id = $1 AND revoked_at IS NULL",
        user.get(),
        why as Revocation
    )
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_256_random_bits_and_stored_only_as_a_digest() {
        let (a, b) = (super::new_token(), super::new_token());
        assert_eq!(a.len(), 64, "32 bytes in hex");
        assert_ne!(a, b);
        assert_ne!(super::digest(&a), a);
        assert_eq!(super::digest(&a), super::digest(&a));
    }
}

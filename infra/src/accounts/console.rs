//! Operations-console sessions. An admin's sign-in to the console is a refresh-token family of its own
//! (so a password change or a sign-out revokes it like any other session) with an opaque cookie token,
//! stored only as its SHA-256. Each request looks the session up and reads the role from the users row
//! then, so an admin demoted or a session revoked is out at their next click. The session's CSRF token is
//! derived from its cookie token: a page can carry it, another site cannot compute it.

use super::refresh::{begin_family, digest, expiry, new_token, revoke, Revocation};
use domain::UserId;
use sqlx::PgPool;
use std::time::Duration;

/// A live console session of an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub user: UserId,
    pub email: String,
    /// What every form of the session carries back.
    pub csrf: String,
}

/// Starts a session for `user`, whose password was checked against `verified_hash`: its cookie token;
/// None when the password changed meanwhile or the account is not an admin's.
pub async fn start(pool: &PgPool, user: UserId, verified_hash: &str, ttl: Duration) -> sqlx::Result<Option<String>> {
    let mut tx = pool.begin().await?;
    let admin = sqlx::query_scalar!("SELECT role = 'ADMIN' AS \"admin!\" FROM users WHERE id = $1", user.get())
        .fetch_optional(&mut *tx)
        .await?;
    if admin != Some(true) {
        return Ok(None);
    }
    let Some(family) = begin_family(&mut tx, user, verified_hash).await? else { return Ok(None) };
    let token = new_token();
    sqlx::query!(
        "INSERT INTO console_sessions (token_hash, family_id, expires_at) VALUES ($1, $2, $3)",
        digest(&token),
        family,
        expiry(ttl)
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(token))
}

/// The live session of `token`: not expired, its family not revoked, its user an admin now.
pub async fn find(pool: &PgPool, token: &str) -> sqlx::Result<Option<ConsoleSession>> {
    let row = sqlx::query!(
        r#"SELECT u.id, u.email FROM console_sessions s
             JOIN refresh_token_families f ON f.id = s.family_id
             JOIN users u ON u.id = f.user_id
           WHERE s.token_hash = $1 AND s.expires_at > now() AND f.revoked_at IS NULL AND u.role = 'ADMIN'"#,
        digest(token)
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|row| {
        let user = UserId::parse(row.id).ok()?;
        Some(ConsoleSession { user, email: row.email, csrf: csrf_of(token) })
    }))
}

/// Signs out: the session's family is revoked. An unknown token changes nothing.
pub async fn end(pool: &PgPool, token: &str) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    let family = sqlx::query_scalar!("SELECT family_id FROM console_sessions WHERE token_hash = $1", digest(token))
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(family) = family {
        revoke(&mut tx, family, Revocation::Logout).await?;
    }
    tx.commit().await
}

/// The CSRF token of the session whose cookie token is `token`.
fn csrf_of(token: &str) -> String {
    digest(&format!("console-csrf:{token}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_csrf_token_is_the_sessions_own_and_not_its_cookie() {
        let (a, b) = (super::new_token(), super::new_token());
        assert_ne!(super::csrf_of(&a), super::csrf_of(&b));
        assert_ne!(super::csrf_of(&a), a);
        assert_ne!(super::csrf_of(&a), super::digest(&a), "not the stored digest either");
    }
}

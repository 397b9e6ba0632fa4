//! Operations-console sessions. An admin's sign-in to the console is a refresh-token family of its own
//! (so a password change or a sign-out revokes it like any other session) with an opaque cookie token,
//! stored only as its SHA-256. Each request looks the session up and reads the role from the users row
//! then, so an admin demoted or a session revoked is out at their next click. The session's CSRF token is
//! derived from its cookie token: a page can carry it, another site cannot compute it. What an admin does
//! from the console is recorded here too, done or refused, with who and when.

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

/// An action an admin can take from the console (the table's CHECK lists the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsoleAction {
    StopExecution,
    RedriveOutboxRow,
    RunEntryNow,
    RestartExecution,
}

/// What an action came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionOutcome {
    Done,
    /// Not allowed now, and why (shown to the admin as well).
    Refused(String),
}

/// Records that `user` took `action` on `target` and what it came to.
pub async fn record_action(
    pool: &PgPool,
    user: UserId,
    action: ConsoleAction,
    target: &str,
    outcome: &ActionOutcome,
    trace_id: Option<&str>,
) -> sqlx::Result<()> {
    let (outcome, detail) = match outcome {
        ActionOutcome::Done => ("DONE", None),
        ActionOutcome::Refused(why) => ("REFUSED", Some(why.as_str())),
    };
    sqlx::query!(
        "INSERT INTO console_actions (user_id, action, target, outcome, detail, trace_id) VALUES ($1, $2, $3, $4, $5, $6)",
        user.get(),
        action as ConsoleAction,
        target,
        outcome,
        detail,
        trace_id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// A recorded console action, for the pages that list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAction {
    pub email: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The latest `limit` actions of these kinds, newest first.
pub async fn recent_actions(pool: &PgPool, kinds: &[ConsoleAction], limit: i64) -> sqlx::Result<Vec<RecordedAction>> {
    sqlx::query_as!(
        RecordedAction,
        r#"SELECT u.email, a.action, a.target, a.outcome, a.detail, a.at
           FROM console_actions a JOIN users u ON u.id = a.user_id
           WHERE a.action = ANY($1) ORDER BY a.at DESC, a.id DESC LIMIT $2"#,
        kinds as &[ConsoleAction],
        limit
    )
    .fetch_all(pool)
    .await
}

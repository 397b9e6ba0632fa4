//! Every login attempt on an account, with its reason, newest first in keyset pages.

use chrono::{DateTime, Utc};
use domain::UserId;
use sqlx::PgPool;

/// What became of an attempt (the column's CHECK lists the same values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, serde::Serialize)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Ok,
    WrongPassword,
    Throttled,
}

/// The longest user agent kept (the column's CHECK agrees); longer ones are cut.
pub const MAX_USER_AGENT_CHARS: usize = 256;

#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: i64,
    pub succeeded: bool,
    pub reason: Outcome,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub logged_in_at: DateTime<Utc>,
}

pub async fn record(
    pool: &PgPool,
    user: UserId,
    outcome: Outcome,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> sqlx::Result<()> {
    let user_agent: Option<String> = user_agent.map(|agent| agent.chars().take(MAX_USER_AGENT_CHARS).collect());
    sqlx::query!(
        "INSERT INTO login_history (user_id, succeeded, reason, ip_address, user_agent) VALUES ($1, $2, $3, $4, $5)",
        user.get(),
        outcome == Outcome::Ok,
        outcome as Outcome,
        ip,
        user_agent,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Up to `limit` attempts of `user` older than the attempt `before` (all when None), newest first.
pub async fn page(pool: &PgPool, user: UserId, before: Option<i64>, limit: i64) -> sqlx::Result<Vec<Attempt>> {
    sqlx::query_as!(
        Attempt,
        r#"SELECT id, succeeded, reason AS "reason: Outcome", ip_address, user_agent, logged_in_at
           FROM login_history WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2)
           ORDER BY id DESC LIMIT $3"#,
        user.get(),
        before,
        limit
    )
    .fetch_all(pool)
    .await
}

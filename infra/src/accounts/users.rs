//! The `users` rows of accounts. The unique e-mail key decides "taken", whatever races for it.

use chrono::{DateTime, Utc};
use domain::{account::Email, Role, UserId};
use sqlx::{PgConnection, PgPool};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a login needs: who it is, and the hash to check.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: i64,
    pub role: Role,
    pub password_hash: String,
}

/// The e-mail address belongs to an account already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailTaken;

const EMAIL_KEY: &str = "users_email_key";

pub async fn create(
    pool: &PgPool,
    email: &Email,
    name: &str,
    password_hash: &str,
    role: Role,
) -> sqlx::Result<Result<Profile, EmailTaken>> {
    let created = sqlx::query_as!(
        Profile,
        r#"INSERT INTO users (email, name, password_hash, role) VALUES ($1, $2, $3, $4)
           RETURNING id, email, name, role AS "role: Role", created_at, updated_at"#,
        email.as_str(),
        name,
        password_hash,
        role as Role,
    )
    .fetch_one(pool)
    .await;
    match created {
        Ok(profile) => Ok(Ok(profile)),
        Err(error) if crate::db::violated_constraint(&error) == Some(EMAIL_KEY) => Ok(Err(EmailTaken)),
        Err(error) => Err(error),
    }
}

pub async fn credentials(pool: &PgPool, email: &Email) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as!(
        Credentials,
        r#"SELECT id, role AS "role: Role", password_hash FROM users WHERE email = $1"#,
        email.as_str()
    )
    .fetch_optional(pool)
    .await
}

/// The hash and e-mail of `user`, for a password change.
pub async fn password_of(pool: &PgPool, user: UserId) -> sqlx::Result<Option<(String, String, String)>> {
    let row = sqlx::query!("SELECT password_hash, email, name FROM users WHERE id = $1", user.get())
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|row| (row.password_hash, row.email, row.name)))
}

pub async fn profile(pool: &PgPool, user: UserId) -> sqlx::Result<Option<Profile>> {
    sqlx::query_as!(
        Profile,
        r#"SELECT id, email, name, role AS "role: Role", created_at, updated_at FROM users WHERE id = $1"#,
        user.get()
    )
    .fetch_optional(pool)
    .await
}

/// The role stored for `user` (a token's role is read from here at login and refresh).
pub async fn role(connection: &mut PgConnection, user: UserId) -> sqlx::Result<Option<Role>> {
    sqlx::query_scalar!(r#"SELECT role AS "role: Role" FROM users WHERE id = $1"#, user.get())
        .fetch_optional(connection)
        .await
}

pub async fn rename(pool: &PgPool, user: UserId, name: &str) -> sqlx::Result<Option<Profile>> {
    sqlx::query_as!(
        Profile,
        r#"UPDATE users SET name = $2, updated_at = now() WHERE id = $1
           RETURNING id, email, name, role AS "role: Role", created_at, updated_at"#,
        user.get(),
        name
    )
    .fetch_optional(pool)
    .await
}

/// Stores a new password hash and revokes every refresh family of the user, in one transaction.
pub async fn change_password(
    pool: &PgPool,
    user: UserId,
    verified_hash: &str,
    password_hash: &str,
) -> sqlx::Result<Option<u64>> {
    let mut tx = pool.begin().await?;
    // Only over the password the caller proved (the stored hash, salted, is unique to each setting): of two
    // changes racing from the same current password, the second finds it gone.
    let changed = sqlx::query!(
        "UPDATE users SET password_hash = $3, updated_at = now() WHERE id = $1 AND password_hash = $2",
        user.get(),
        verified_hash,
        password_hash
    )
    .execute(&mut *tx)
    .await?;
    if changed.rows_affected() == 0 {
        return Ok(None);
    }
    let revoked = super::refresh::revoke_all(&mut tx, user, super::refresh::Revocation::PasswordChanged).await?;
    tx.commit().await?;
    Ok(Some(revoked))
}

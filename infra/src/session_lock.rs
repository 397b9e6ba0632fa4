//! Session-level advisory locks on a dedicated connection: held until released or until the session
//! ends, so a process that dies frees its locks with it. One type for every such lock (scheduler
//! leadership, a scheduler entry's running firing, a batch run per job key).

use sqlx::{pool::PoolConnection, PgConnection, PgPool, Postgres};

/// Which lock: a single 64-bit key, or a 32-bit space and a name hashed by PostgreSQL's `hashtext`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockKey {
    Single(i64),
    Named { space: i32, name: String },
}

/// A held lock. Dropped without [`SessionLock::release`] (an error on the way), it closes its session
/// rather than return a connection still holding the lock to the pool, where it would stay held for as
/// long as the pool keeps the connection.
pub struct SessionLock {
    /// None once released or lost.
    connection: Option<PoolConnection<Postgres>>,
    key: LockKey,
}

impl SessionLock {
    /// The lock if nobody holds it, else None.
    pub async fn try_acquire(pool: &PgPool, key: LockKey) -> sqlx::Result<Option<Self>> {
        let mut connection = pool.acquire().await?;
        let acquired = match &key {
            LockKey::Single(key) => {
                sqlx::query_scalar!(r#"SELECT pg_try_advisory_lock($1) AS "locked!""#, key)
                    .fetch_one(&mut *connection)
                    .await?
            }
            LockKey::Named { space, name } => {
                sqlx::query_scalar!(r#"SELECT pg_try_advisory_lock($1, hashtext($2)) AS "locked!""#, space, name)
                    .fetch_one(&mut *connection)
                    .await?
            }
        };
        Ok(acquired.then(|| Self { connection: Some(connection), key }))
    }

    /// The session holding the lock, for work that belongs with it.
    pub fn connection(&mut self) -> &mut PgConnection {
        self.connection.as_deref_mut().expect("a held lock has its connection")
    }

    /// True while the session answers; a broken session has lost the lock with it, and this lock is then
    /// closed for good (the caller must act as if it never held it).
    pub async fn verify(&mut self) -> bool {
        let Some(connection) = self.connection.as_mut() else { return false };
        match sqlx::query!("SELECT 1 AS alive").fetch_one(&mut **connection).await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(key = ?self.key, error = ?error, "the session holding a lock broke; the lock is lost");
                if let Some(broken) = self.connection.take() {
                    drop(broken.detach());
                }
                false
            }
        }
    }

    /// Unlocks and returns the connection to the pool; if unlocking fails the session is closed instead,
    /// which frees the lock too.
    pub async fn release(mut self) {
        let Some(mut connection) = self.connection.take() else { return };
        let unlocked = match &self.key {
            LockKey::Single(key) => {
                sqlx::query_scalar!("SELECT pg_advisory_unlock($1)", key).fetch_one(&mut *connection).await
            }
            LockKey::Named { space, name } => {
                sqlx::query_scalar!("SELECT pg_advisory_unlock($1, hashtext($2))", space, name)
                    .fetch_one(&mut *connection)
                    .await
            }
        };
        if let Err(error) = unlocked {
            tracing::warn!(key = ?self.key, error = ?error, "unlocking failed; closing the session instead");
            drop(connection.detach());
        }
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            drop(connection.detach());
        }
    }
}

//! "The entry's previous run is still going", across every process that can fire it (replicas, a
//! leader that just lost its lock, `run-now`): a session-level advisory lock per entry, held on its own
//! connection for as long as a firing runs. A process that dies frees it with its session, so holding
//! it also proves that any firing of the entry still marked RUNNING was abandoned.

use sqlx::{pool::PoolConnection, PgPool, Postgres};

/// First key of the per-entry locks; the second is the hash of the entry's name.
const ENTRY_LOCK_SPACE: i32 = 0x5e77_5c4e;

pub struct EntryLock {
    connection: PoolConnection<Postgres>,
    entry: String,
}

impl EntryLock {
    /// The lock if no firing of `entry` runs anywhere, else None.
    pub async fn try_acquire(pool: &PgPool, entry: &str) -> sqlx::Result<Option<Self>> {
        let mut connection = pool.acquire().await?;
        let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
            .bind(ENTRY_LOCK_SPACE)
            .bind(entry)
            .fetch_one(&mut *connection)
            .await?;
        Ok(acquired.then(|| Self { connection, entry: entry.to_owned() }))
    }

    pub async fn release(mut self) {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
            .bind(ENTRY_LOCK_SPACE)
            .bind(&self.entry)
            .execute(&mut *self.connection)
            .await;
        if let Err(error) = unlocked {
            // Closing the session frees the lock too.
            tracing::warn!(error = ?error, entry = %self.entry, "releasing the entry lock failed; closing its session");
            self.connection.detach();
        }
    }
}

//! "The entry's previous run is still going", across every process that can fire it (replicas, a
//! leader that just lost its lock, `run-now`): a session-level advisory lock per entry, held on its own
//! connection for as long as a firing runs. A process that dies frees it with its session, so holding
//! it also proves that any firing of the entry still marked RUNNING was abandoned.

use sqlx::{pool::PoolConnection, PgPool, Postgres};

/// First key of the per-entry locks; the second is the hash of the entry's name.
const ENTRY_LOCK_SPACE: i32 = 0x5e77_5c4e;

pub struct EntryLock {
    /// None once released.
    connection: Option<PoolConnection<Postgres>>,
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
        Ok(acquired.then(|| Self { connection: Some(connection), entry: entry.to_owned() }))
    }

    pub async fn release(mut self) {
        let Some(mut connection) = self.connection.take() else { return };
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
            .bind(ENTRY_LOCK_SPACE)
            .bind(&self.entry)
            .execute(&mut *connection)
            .await;
        if let Err(error) = unlocked {
            // Closing the session frees the lock too.
            tracing::warn!(error = ?error, entry = %self.entry, "releasing the entry lock failed; closing its session");
            connection.detach();
        }
    }
}

impl Drop for EntryLock {
    /// Dropped without `release` (an error on the way): the session is closed rather than returned to
    /// the pool still holding the lock, where it would keep the entry "running" for good.
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            drop(connection.detach());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EntryLock;
    use std::time::Duration;
    use testkit::{process, TestEnv};

    #[tokio::test]
    async fn an_entry_lock_excludes_others_and_is_freed_even_when_dropped_without_release() {
        let env = TestEnv::new().await;
        let held = EntryLock::try_acquire(&env.pool, "nightly").await.expect("attempt").expect("free at first");
        assert!(EntryLock::try_acquire(&env.pool, "nightly").await.expect("attempt").is_none(), "taken twice");
        let other = EntryLock::try_acquire(&env.pool, "other").await.expect("attempt").expect("entries lock apart");
        other.release().await;
        drop(held);
        // Asked from another pool: a session of the first one would re-enter a lock it still held.
        let elsewhere = sqlx::PgPool::connect(&env.postgres.url).await.expect("a second pool");
        let freed = process::eventually(Duration::from_secs(5), || async {
            match EntryLock::try_acquire(&elsewhere, "nightly").await.expect("attempt") {
                Some(lock) => {
                    lock.release().await;
                    true
                }
                None => false,
            }
        })
        .await;
        elsewhere.close().await;
        assert!(freed, "a dropped entry lock stayed held");
    }
}

//! "The entry's previous run is still going", across every process that can fire it (replicas, a
//! leader that just lost its lock, `run-now`): a session-level advisory lock per entry, held on its own
//! connection for as long as a firing runs. A process that dies frees it with its session, so holding
//! it also proves that any firing of the entry still marked RUNNING was abandoned.

use infra::session_lock::{LockKey, SessionLock};
use sqlx::PgPool;

/// First key of the per-entry locks; the second is the hash of the entry's name.
const ENTRY_LOCK_SPACE: i32 = 0x5e77_5c4e;

/// Held while a firing of the entry runs; see [`SessionLock`] for what a drop without release does.
pub struct EntryLock(SessionLock);

impl EntryLock {
    /// The lock if no firing of `entry` runs anywhere, else None.
    pub async fn try_acquire(pool: &PgPool, entry: &str) -> sqlx::Result<Option<Self>> {
        let key = LockKey::Named { space: ENTRY_LOCK_SPACE, name: entry.to_owned() };
        Ok(SessionLock::try_acquire(pool, key).await?.map(Self))
    }

    pub async fn release(self) {
        self.0.release().await;
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

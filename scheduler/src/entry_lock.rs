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
    use super::{EntryLock, ENTRY_LOCK_SPACE};
    use infra::session_lock::LockKey;
    use testkit::TestEnv;

    #[tokio::test]
    async fn an_entry_lock_excludes_others_and_is_freed_even_when_dropped_without_release() {
        let env = TestEnv::new().await;
        let held = EntryLock::try_acquire(&env.pool, "nightly").await.expect("attempt").expect("free at first");
        assert!(EntryLock::try_acquire(&env.pool, "nightly").await.expect("attempt").is_none(), "taken twice");
        let other = EntryLock::try_acquire(&env.pool, "other").await.expect("attempt").expect("entries lock apart");
        other.release().await;
        drop(held);
        let key = LockKey::Named { space: ENTRY_LOCK_SPACE, name: "nightly".to_owned() };
        assert!(testkit::locks::free_elsewhere(&env, key).await, "a dropped entry lock stayed held");
    }
}

//! Whether an advisory lock is really free: asked from a pool of its own, since a session of the test's
//! own pool would re-enter a lock that it still held.

use crate::{process, TestEnv};
use infra::session_lock::{LockKey, SessionLock};
use std::time::Duration;

/// True once `key` can be taken (and is given back) from another pool, within 5 s.
pub async fn free_elsewhere(env: &TestEnv, key: LockKey) -> bool {
    let elsewhere = sqlx::PgPool::connect(&env.postgres.url).await.expect("a second pool");
    let freed = process::eventually(Duration::from_secs(5), || async {
        match SessionLock::try_acquire(&elsewhere, key.clone()).await.expect("attempt") {
            Some(lock) => {
                lock.release().await;
                true
            }
            None => false,
        }
    })
    .await;
    elsewhere.close().await;
    freed
}

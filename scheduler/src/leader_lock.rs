use anyhow::Context;
use infra::session_lock::{LockKey, SessionLock};
use sqlx::PgPool;

/// The advisory-lock key all scheduler replicas compete for ("settle-scheduler" folded into an i64).
pub const LEADER_LOCK_KEY: i64 = 0x5e77_1e5c_4ed0_0001;

/// Leadership held through a session-level advisory lock on one dedicated connection: if the process
/// dies, PostgreSQL ends the session and frees the lock, so another replica can take over.
pub struct LeaderLock {
    pool: PgPool,
    identity: String,
    held: Option<SessionLock>,
}

impl LeaderLock {
    pub fn new(pool: PgPool, identity: String) -> Self {
        Self { pool, identity, held: None }
    }

    pub fn is_leader(&self) -> bool {
        self.held.is_some()
    }

    /// One attempt; true if this replica now leads.
    pub async fn try_acquire(&mut self) -> anyhow::Result<bool> {
        if self.is_leader() {
            return Ok(true);
        }
        self.held = SessionLock::try_acquire(&self.pool, LockKey::Single(LEADER_LOCK_KEY))
            .await
            .context("trying the leader lock")?;
        if self.held.is_some() {
            tracing::info!(identity = %self.identity, "became the scheduler leader");
        }
        Ok(self.is_leader())
    }

    /// True while this replica leads; a leader whose session broke has lost the lock with it and steps
    /// down here rather than fire twice.
    pub async fn still_leads(&mut self) -> bool {
        if let Some(lock) = self.held.as_mut() {
            if !lock.verify().await {
                tracing::warn!(identity = %self.identity, "lost the leader session; stepping down");
                self.held = None;
            }
        }
        self.is_leader()
    }

    /// Gives up leadership explicitly so a successor need not wait for the session to end.
    pub async fn release(&mut self) {
        if let Some(lock) = self.held.take() {
            lock.release().await;
            tracing::info!(identity = %self.identity, "released scheduler leadership");
        }
    }
}

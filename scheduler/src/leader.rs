use anyhow::Context;
use sqlx::{pool::PoolConnection, PgPool, Postgres};

/// The advisory-lock key all scheduler replicas compete for ("settle-scheduler" folded into an i64).
pub const LEADER_LOCK_KEY: i64 = 0x5e77_1e5c_4ed0_0001;

/// Leadership held through a session-level advisory lock on one dedicated connection: if the process
/// dies, PostgreSQL ends the session and frees the lock, so another replica can take over.
pub struct LeaderLock {
    pool: PgPool,
    identity: String,
    held_on: Option<PoolConnection<Postgres>>,
}

impl LeaderLock {
    pub fn new(pool: PgPool, identity: String) -> Self {
        Self { pool, identity, held_on: None }
    }

    pub fn is_leader(&self) -> bool {
        self.held_on.is_some()
    }

    /// One attempt; true if this replica now leads.
    pub async fn try_acquire(&mut self) -> anyhow::Result<bool> {
        if self.is_leader() {
            return Ok(true);
        }
        let mut connection = self.pool.acquire().await.context("acquiring a connection for the leader lock")?;
        let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_LOCK_KEY)
            .fetch_one(&mut *connection)
            .await
            .context("trying the leader lock")?;
        if acquired {
            tracing::info!(identity = %self.identity, "became the scheduler leader");
            self.held_on = Some(connection);
        }
        Ok(acquired)
    }

    /// True while this replica leads; a leader whose session broke steps down here.
    pub async fn still_leads(&mut self) -> bool {
        self.verify_session().await;
        self.is_leader()
    }

    /// A leader whose session broke has lost the lock with it: step down rather than fire twice.
    async fn verify_session(&mut self) {
        let Some(connection) = self.held_on.as_mut() else { return };
        if let Err(error) = sqlx::query("SELECT 1").execute(&mut **connection).await {
            tracing::warn!(identity = %self.identity, error = ?error, "lost the leader session; stepping down");
            if let Some(broken) = self.held_on.take() {
                broken.detach();
            }
        }
    }

    /// Gives up leadership explicitly so a successor need not wait for the session to end.
    pub async fn release(&mut self) {
        if let Some(mut connection) = self.held_on.take() {
            let released = sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
                .bind(LEADER_LOCK_KEY)
                .fetch_one(&mut *connection)
                .await;
            if let Err(error) = released {
                tracing::warn!(error = ?error, "releasing the leader lock failed; it ends with the session");
                connection.detach();
            }
            tracing::info!(identity = %self.identity, "released scheduler leadership");
        }
    }
}

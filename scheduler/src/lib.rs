//! settle-scheduler: fires batch jobs on cron schedules. Replicas compete for one PostgreSQL advisory
//! lock; only the holder fires, and another takes over when it dies (its session ends, the lock with it).

mod config;
mod leader;

pub use config::SchedulerConfig;
pub use leader::LeaderLock;

use infra::health::Readiness;
use tokio_util::sync::CancellationToken;

pub async fn run(config: SchedulerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let pool = infra::db::connect(&config.postgres).await?;
    let readiness = Readiness::new().with_postgres(pool.clone());
    let ops = infra::health::ops_router(readiness, infra::metrics::install()?);
    let ops_server = tokio::spawn(infra::health::serve_ops(config.ops_addr, ops, shutdown.clone()));

    tracing::info!(identity = %config.identity(), "settle-scheduler ready");
    let mut lock = LeaderLock::new(pool, config.identity());
    lock.campaign(config.leader_poll(), shutdown.clone()).await?;
    lock.release().await;
    ops_server.await??;
    tracing::info!("settle-scheduler stopped");
    Ok(())
}

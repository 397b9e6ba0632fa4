//! settle-workers: the Kafka and outbox workers. Each worker is a named type registered in
//! [`registry`]; `--only` picks which run in this process so each pool scales by process count.

mod config;
pub mod coupon_issuance;
mod dead_letter;
pub mod outbox_relay;
pub mod point_activity;
mod receive;
mod registry;
mod retry;

pub use config::WorkersConfig;
pub use registry::{registry, Worker, WorkerContext, WorkerFuture, WorkerSettings};

use anyhow::Context;
use infra::{
    cache::Redis,
    health::Readiness,
    kafka::{Kafka, Topic},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Connects, creates missing topics, starts the selected workers and the ops endpoints, and returns once
/// `shutdown` is cancelled and every worker has drained.
pub async fn run(config: WorkersConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let pool = infra::db::connect(&config.postgres).await?;
    let redis = Redis::connect(&config.redis).await?;
    let kafka = Kafka::new(config.kafka.clone());
    kafka.ensure_topics(&Topic::ALL).await.context("creating the platform's topics")?;

    let selected = registry::select(&config.only)?;
    let names: Vec<_> = selected.iter().map(|worker| worker.name()).collect();
    let context = WorkerContext {
        pool: pool.clone(),
        redis: redis.clone(),
        kafka: kafka.clone(),
        concurrency: config.concurrency,
        settings: config.settings(),
    };
    let tracker = TaskTracker::new();
    for worker in selected {
        let (context, shutdown) = (context.clone(), shutdown.clone());
        tracker.spawn(async move {
            let name = worker.name();
            if let Err(error) = worker.run(context, shutdown.clone()).await {
                tracing::error!(worker = name, error = ?error, "worker failed; stopping the process");
                shutdown.cancel();
            }
        });
    }
    tracker.close();

    let readiness = Readiness::new().with_postgres(pool).with_redis(redis).with_kafka(kafka.probe()?);
    let ops = infra::health::ops_router(readiness, infra::metrics::install()?);
    tracing::info!(workers = ?names, concurrency = config.concurrency, "settle-workers ready");
    infra::health::serve_ops(config.ops_addr, ops, shutdown.clone()).await?;
    tracker.wait().await;
    tracing::info!("settle-workers stopped");
    Ok(())
}

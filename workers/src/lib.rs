//! settle-workers: the Kafka and outbox workers. Each worker is a named type registered in
//! [`registry`]; `--only` picks which run in this process so each pool scales by process count.

mod config;
pub mod coupon_issuance;
mod dead_letter;
pub mod outbox_relay;
pub mod payment_resolution;
pub mod point_activity;
pub mod purchase_points;
mod receive;
mod registry;
mod retry;
mod worker;

pub use config::WorkersConfig;
pub use registry::registry;
pub use worker::{PaymentSettings, Worker, WorkerContext, WorkerFuture, WorkerSettings};

use anyhow::Context;
use infra::{
    kafka::{Kafka, Topic},
    ops::Readiness,
    redis_client::Redis,
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Connects, creates missing topics, starts the selected workers and the ops endpoints, and returns once
/// `shutdown` is cancelled and every worker has drained.
pub async fn run(config: WorkersConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let pool = infra::db::connect(&config.postgres).await?;
    let redis = Redis::connect(&config.redis).await?.with_breaker(&config.breakers, true);
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
    // Ops first: a taken port fails start-up before any work begins, and metrics have their recorder.
    let ops_listener = infra::ops::bind_ops(config.ops_addr).await?;
    let breakers = vec![redis.breaker().clone()];
    let readiness =
        Readiness::new().with_postgres(pool).with_redis(redis).with_kafka(kafka.probe()?).with_breakers(breakers);
    let readiness = selected.iter().fold(readiness, |readiness, worker| worker.readiness(&context, readiness));
    let ops = infra::ops::ops_router(readiness, infra::metrics::install()?);
    let mut workers = JoinSet::new();
    for worker in selected {
        let (context, shutdown) = (context.clone(), shutdown.clone());
        workers.spawn(async move {
            let name = worker.name();
            worker.run(context, shutdown).await.with_context(|| format!("worker {name} failed"))
        });
    }

    let ops = tokio::spawn(infra::ops::serve_ops(ops_listener, ops, shutdown.clone()));
    tracing::info!(workers = ?names, concurrency = config.concurrency, "settle-workers ready");
    // A failed worker stops the whole process (non-zero exit), so its supervisor restarts all of it.
    let outcome = worker::first_failure(&mut workers, &shutdown).await;
    shutdown.cancel();
    ops.await.context("the ops endpoints task")??;
    tracing::info!("settle-workers stopped");
    outcome
}

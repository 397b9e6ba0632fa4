//! What a worker is and what it gets: the trait, its context and settings, and the runner of its members.

use crate::outbox_relay::cleanup::Retention;
use infra::{config::BusinessTimeArgs, kafka::Kafka, ops::Readiness, redis_client::Redis};
use sqlx::PgPool;
use std::{future::Future, pin::Pin, time::Duration};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What every worker gets: shared connections, how many concurrent members it runs, and its limits.
#[derive(Clone)]
pub struct WorkerContext {
    pub pool: PgPool,
    pub redis: Redis,
    pub kafka: Kafka,
    pub concurrency: u16,
    pub settings: WorkerSettings,
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub batch_size: usize,
    pub batch_wait: Duration,
    pub max_attempts: u32,
    /// How often an idle outbox relay looks for work when no notification wakes it.
    pub outbox_poll: Duration,
    /// How long sent outbox rows, consumers' dedupe rows and idempotency keys are kept.
    pub retention: Retention,
    /// Failed deliveries of one outbox row before it is parked for an operator.
    pub outbox_max_attempts: i32,
    /// The business day of daily projections.
    pub business_time: BusinessTimeArgs,
    /// The payment provider and the order rules the payment-resolution pass works with.
    pub payments: PaymentSettings,
    /// The share of what a confirmed purchase paid that it earns in points, in basis points (100 = 1%).
    pub purchase_points_rate_bps: u32,
}

#[derive(Debug, Clone, Default)]
pub struct PaymentSettings {
    pub provider: infra::config::PaymentArgs,
    pub breakers: infra::breaker::BreakerArgs,
    pub orders: infra::config::OrderArgs,
    /// How often the pass runs; also how long an attempt may be in flight before it counts as unanswered
    /// (at least the provider's timeout).
    pub every: Duration,
}

pub type WorkerFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// A long-running worker. `run` returns after `shutdown` is cancelled and its in-flight work is committed,
/// or with the error that stopped it.
pub trait Worker: Send + Sync {
    fn name(&self) -> &'static str;
    fn run(&self, context: WorkerContext, shutdown: CancellationToken) -> WorkerFuture;

    /// Adds what this worker reports in the process's `/health/ready` (nothing by default).
    fn readiness(&self, _context: &WorkerContext, readiness: Readiness) -> Readiness {
        readiness
    }
}

/// Runs `member` `context.concurrency` times at once (each gets its index) until all have returned. The
/// first to fail (an error or a panic) stops its siblings, which drain as on shutdown, and its error is
/// returned: a worker never limps on with fewer members than it was started with.
pub async fn run_members<F, Fut>(context: &WorkerContext, shutdown: &CancellationToken, member: F) -> anyhow::Result<()>
where
    F: Fn(WorkerContext, u16, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let siblings = shutdown.child_token();
    let mut members = JoinSet::new();
    for index in 0..context.concurrency {
        members.spawn(member(context.clone(), index, siblings.clone()));
    }
    first_failure(&mut members, &siblings).await
}

/// Waits for every task of `tasks`; on the first failure cancels `stop` so the others wind down, and
/// returns that failure once they have.
pub async fn first_failure(tasks: &mut JoinSet<anyhow::Result<()>>, stop: &CancellationToken) -> anyhow::Result<()> {
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.map_err(|panic| anyhow::anyhow!("a task panicked: {panic}")).and_then(|done| done);
        if let Err(error) = outcome {
            if failure.is_none() {
                tracing::error!(error = ?error, "a task failed; stopping the others");
                stop.cancel();
                failure = Some(error);
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_failure_stops_the_other_tasks_and_is_returned() {
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for index in 0..3 {
            let stop = stop.clone();
            tasks.spawn(async move {
                if index == 1 {
                    anyhow::bail!("member 1 broke");
                }
                stop.cancelled().await; // a healthy member runs until told to stop
                Ok(())
            });
        }
        let outcome = tokio::time::timeout(Duration::from_secs(5), first_failure(&mut tasks, &stop)).await;
        let error = outcome.expect("the healthy members were never stopped").expect_err("the failure was lost");
        assert!(error.to_string().contains("member 1 broke"), "{error:#}");
        assert!(stop.is_cancelled());
    }

    #[tokio::test]
    async fn a_panicking_task_counts_as_a_failure() {
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        tasks.spawn(async { panic!("boom") });
        let error = first_failure(&mut tasks, &stop).await.expect_err("a panic must fail the worker");
        assert!(error.to_string().contains("panicked"), "{error:#}");
    }
}

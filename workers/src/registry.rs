use anyhow::bail;
use infra::{cache::Redis, kafka::Kafka};
use sqlx::PgPool;
use std::{future::Future, pin::Pin, time::Duration};
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

#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    pub batch_size: usize,
    pub batch_wait: Duration,
    pub max_attempts: u32,
    /// How often an idle outbox relay looks for work when no notification wakes it.
    pub outbox_poll: Duration,
    /// How long sent outbox rows (and consumers' dedupe rows) are kept before cleanup deletes them.
    pub outbox_retention: Duration,
}

pub type WorkerFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// A long-running worker. `run` returns after `shutdown` is cancelled and its in-flight work is committed.
pub trait Worker: Send + Sync {
    fn name(&self) -> &'static str;
    fn run(&self, context: WorkerContext, shutdown: CancellationToken) -> WorkerFuture;
}

/// Runs `member` `context.concurrency` times at once (each gets its index) and waits for all of them;
/// the first failure is returned.
pub async fn run_members<F, Fut>(context: &WorkerContext, shutdown: &CancellationToken, member: F) -> anyhow::Result<()>
where
    F: Fn(WorkerContext, u16, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let members: Vec<_> =
        (0..context.concurrency).map(|index| tokio::spawn(member(context.clone(), index, shutdown.clone()))).collect();
    for running in members {
        running.await??;
    }
    Ok(())
}

/// Every worker this binary can run, in one place.
pub fn registry() -> Vec<Box<dyn Worker>> {
    vec![
        Box::new(crate::coupon_issuance::CouponIssuance),
        Box::new(crate::outbox_relay::OutboxRelay),
        Box::new(crate::point_activity::PointActivity),
    ]
}

/// The workers named by `--only`, or all of them; an unknown name is an error, not a silent no-op.
pub fn select(only: &[String]) -> anyhow::Result<Vec<Box<dyn Worker>>> {
    let all = registry();
    if only.is_empty() {
        return Ok(all);
    }
    let known: Vec<_> = all.iter().map(|worker| worker.name()).collect();
    if let Some(unknown) = only.iter().find(|name| !known.contains(&name.as_str())) {
        bail!("unknown worker {unknown:?}; known workers: {known:?}");
    }
    Ok(all.into_iter().filter(|worker| only.iter().any(|name| name == worker.name())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_worker_name_is_rejected() {
        let error = select(&["no-such-worker".to_owned()]).err().expect("unknown name must fail");
        assert!(error.to_string().contains("no-such-worker"));
    }
}

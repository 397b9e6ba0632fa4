//! The outbox relay: publishes committed outbox rows to Kafka, keyed by aggregate id, and marks a row
//! sent only once the broker confirmed it. At-least-once: a crash between delivery and commit publishes
//! the row again, so every consumer deduplicates on the event id. Several relays (members of one process
//! and other processes) run at once; see [`claim`] for how they share work without reordering.

pub mod claim;
pub mod cleanup;
mod publish;
mod wake;

pub use publish::{encode, settle, Publisher, Settled};

use crate::{retry, Worker, WorkerContext, WorkerFuture};
use sqlx::PgPool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub struct OutboxRelay;

impl Worker for OutboxRelay {
    fn name(&self) -> &'static str {
        "outbox-relay"
    }

    /// `--concurrency` relay members, plus one retention cleanup task per process.
    fn run(&self, context: WorkerContext, shutdown: CancellationToken) -> WorkerFuture {
        Box::pin(async move {
            let cleanup =
                tokio::spawn(cleanup::run(context.pool.clone(), context.settings.outbox_retention, shutdown.clone()));
            // One producer per process, shared by the members: librdkafka batches best that way, and the
            // broker sees one producer per relay process however many members it runs.
            let publisher = Arc::new(Publisher::new(&context.kafka)?);
            crate::registry::run_members(&context, &shutdown, |context, member, shutdown| {
                run_member(context, Arc::clone(&publisher), member, shutdown)
            })
            .await?;
            cleanup.await?;
            Ok(())
        })
    }
}

/// One relay: publish batches while there is a backlog, otherwise sleep until notified or polled.
async fn run_member(
    context: WorkerContext,
    publisher: Arc<Publisher>,
    member: u16,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut wakeup = wake::Wakeup::listen(&context.pool, context.settings.outbox_poll).await;
    let batch_size = context.settings.batch_size;
    let mut attempt = 0;
    tracing::info!(member, batch_size, "outbox relay started");
    while !shutdown.is_cancelled() {
        let paused = match relay_batch(&context.pool, &publisher, batch_size, &shutdown).await {
            Ok(report) if report.failed > 0 => {
                tracing::warn!(sent = report.sent, failed = report.failed, "some outbox events were not delivered");
                attempt += 1;
                retry::pause(attempt, &shutdown).await
            }
            Ok(report) if report.interrupted => break,
            // Anything claimed means there may be more: a claim can come back short of a full batch while
            // a backlog remains (the rest sits in lanes other relays hold, or past the lanes' oldest rows).
            Ok(report) if report.claimed > 0 => {
                attempt = 0;
                continue;
            }
            Ok(_) => {
                attempt = 0;
                wakeup.wait(&shutdown).await
            }
            Err(error) if retry::is_transient(&error) => {
                tracing::warn!(%error, "outbox relay lost the database; retrying");
                attempt += 1;
                retry::pause(attempt, &shutdown).await
            }
            Err(error) => return Err(error.into()),
        };
        if !paused {
            break;
        }
    }
    tracing::info!(member, "outbox relay stopped");
    Ok(())
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchReport {
    pub claimed: usize,
    pub sent: usize,
    pub failed: usize,
    /// Shutdown came before every delivery report: nothing was marked, the rows stay unsent.
    pub interrupted: bool,
}

/// Claims one batch, publishes it, records the delivery reports and commits, which releases its lanes.
/// Deliveries never time out (see `Kafka::ordered_producer`), so during a broker outage this waits, holding
/// its lanes, until the broker is back or shutdown rolls the claim back for a later relay to publish again.
pub async fn relay_batch(
    pool: &PgPool,
    publisher: &Publisher,
    batch_size: usize,
    shutdown: &CancellationToken,
) -> sqlx::Result<BatchReport> {
    let mut tx = pool.begin().await?;
    let rows = claim::claim(&mut tx, i64::try_from(batch_size).unwrap_or(i64::MAX)).await?;
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(BatchReport::default());
    }
    let outcomes = tokio::select! {
        outcomes = publisher.publish(&rows) => outcomes,
        _ = shutdown.cancelled() => {
            tx.rollback().await?;
            return Ok(BatchReport { claimed: rows.len(), interrupted: true, ..BatchReport::default() });
        }
    };
    let settled = settle(&rows, outcomes);
    claim::mark_sent(&mut tx, &settled.sent).await?;
    claim::record_failures(&mut tx, &settled.failed).await?;
    tx.commit().await?;
    metrics::counter!("outbox_events_published_total").increment(settled.sent.len() as u64);
    metrics::counter!("outbox_publish_failures_total").increment(settled.failed.len() as u64);
    Ok(BatchReport { claimed: rows.len(), sent: settled.sent.len(), failed: settled.failed.len(), interrupted: false })
}

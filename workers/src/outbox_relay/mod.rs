//! The outbox relay: publishes committed outbox rows to Kafka, keyed by aggregate id, and marks a row
//! sent only once the broker confirmed it. At-least-once: a crash between delivery and commit publishes
//! the row again, so every consumer deduplicates on the event id. Several relays (members of one process
//! and other processes) run at once; see [`claim`] for how they share work without reordering.

pub mod claim;
pub mod cleanup;
mod publish;
mod wake;

pub use publish::{encode, settle, Delivery, Publisher, Settled};

use crate::{retry, Worker, WorkerContext, WorkerFuture};
use infra::ops::{DetailCheck, Readiness};
use sqlx::PgPool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub struct OutboxRelay;

/// How many parked rows readiness names by id.
const PARKED_NAMED_IN_READINESS: i64 = 10;

impl Worker for OutboxRelay {
    fn name(&self) -> &'static str {
        "outbox-relay"
    }

    fn readiness(&self, context: &WorkerContext, readiness: Readiness) -> Readiness {
        readiness.with_detail("outbox", parked_rows_check(context.pool.clone()))
    }

    /// `--concurrency` relay members, plus one retention cleanup task per process.
    fn run(&self, context: WorkerContext, shutdown: CancellationToken) -> WorkerFuture {
        Box::pin(async move {
            let cleanup =
                tokio::spawn(cleanup::run(context.pool.clone(), context.settings.retention, shutdown.clone()));
            // One producer per process, shared by the members: librdkafka batches best that way, and the
            // broker sees one producer per relay process however many members it runs.
            let publisher = Arc::new(Publisher::new(&context.kafka)?);
            crate::worker::run_members(&context, &shutdown, |context, member, shutdown| {
                run_member(context, Arc::clone(&publisher), member, shutdown)
            })
            .await?;
            cleanup.await?;
            Ok(())
        })
    }
}

/// Parked rows are named in readiness (the relay stays up: the rest of the outbox flows) and counted in
/// the `outbox_parked_events` gauge.
fn parked_rows_check(pool: PgPool) -> DetailCheck {
    Arc::new(move || {
        let pool = pool.clone();
        Box::pin(async move {
            let parked = infra::outbox::parked::list(&pool, PARKED_NAMED_IN_READINESS).await?;
            let total = if parked.len() < PARKED_NAMED_IN_READINESS as usize {
                parked.len() as i64
            } else {
                infra::outbox::parked::count(&pool).await?
            };
            metrics::gauge!("outbox_parked_events").set(total as f64);
            if parked.is_empty() {
                return Ok(None);
            }
            let ids: Vec<String> = parked.iter().map(|row| row.id.to_string()).collect();
            Ok(Some(format!(
                "{total} parked outbox row(s), ids {}{}: see `settle-batch outbox parked`, re-drive with \
                 `settle-batch outbox retry ID`",
                ids.join(", "),
                if total > parked.len() as i64 { ", ..." } else { "" }
            )))
        })
    })
}

/// One relay: publish batches while there is a backlog, otherwise sleep until notified or polled.
async fn run_member(
    context: WorkerContext,
    publisher: Arc<Publisher>,
    member: u16,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut wakeup = wake::Wakeup::listen(&context.pool, context.settings.outbox_poll).await;
    let limits =
        RelayLimits { batch_size: context.settings.batch_size, max_attempts: context.settings.outbox_max_attempts };
    let mut attempt = 0;
    tracing::info!(member, batch_size = limits.batch_size, "outbox relay started");
    while !shutdown.is_cancelled() {
        let paused = match relay_batch(&context.pool, &publisher, limits, &shutdown).await {
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

/// How much one claim takes, and how many failed deliveries park a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayLimits {
    pub batch_size: usize,
    pub max_attempts: i32,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchReport {
    pub claimed: usize,
    pub sent: usize,
    pub failed: usize,
    /// Of the failed, how many reached the attempt limit and were parked.
    pub parked: usize,
    /// Shutdown came before every delivery report: nothing was marked, the rows stay unsent.
    pub interrupted: bool,
}

/// Claims one batch, publishes it, records the delivery reports and commits, which releases its lanes.
/// Deliveries never time out (see `Kafka::ordered_producer`), so during a broker outage this waits, holding
/// its lanes, until the broker is back or shutdown rolls the claim back for a later relay to publish again.
pub async fn relay_batch(
    pool: &PgPool,
    publisher: &Publisher,
    limits: RelayLimits,
    shutdown: &CancellationToken,
) -> sqlx::Result<BatchReport> {
    let mut tx = pool.begin().await?;
    let rows = claim::claim(&mut tx, i64::try_from(limits.batch_size).unwrap_or(i64::MAX)).await?;
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
    let parked = claim::record_failures(&mut tx, &settled.failed, limits.max_attempts).await?;
    tx.commit().await?;
    for row in &parked {
        tracing::error!(
            id = row.id,
            aggregate_type = %row.aggregate_type,
            aggregate_id = %row.aggregate_id,
            attempts = row.attempts,
            last_error = row.last_error.as_deref().unwrap_or(""),
            "outbox row parked after its last attempt; its aggregate waits behind it \
             (settle-batch outbox parked, then settle-batch outbox retry ID)"
        );
    }
    metrics::counter!("outbox_events_published_total").increment(settled.sent.len() as u64);
    metrics::counter!("outbox_publish_failures_total").increment(settled.failed.len() as u64);
    metrics::counter!("outbox_events_parked_total").increment(parked.len() as u64);
    Ok(BatchReport {
        claimed: rows.len(),
        sent: settled.sent.len(),
        failed: settled.failed.len(),
        parked: parked.len(),
        interrupted: false,
    })
}

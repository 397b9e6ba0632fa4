//! The point-activity consumer: projects `points.events` into `point_activity_daily` (what each user
//! earned and spent per day). It deduplicates on the event id in `processed_events`, in the same
//! transaction as the projection, so the relay's at-least-once delivery applies every event exactly once.

mod project;

pub use project::{apply, Applied};

use crate::{
    dead_letter::DeadLetters,
    receive,
    retry::{self, Retried},
    Worker, WorkerContext, WorkerFuture,
};
use anyhow::Context;
use infra::kafka::{trace_id_from, ConsumerGroup, Topic};
use rdkafka::message::{Message, OwnedMessage};
use tokio_util::sync::CancellationToken;

pub const GROUP: &str = ConsumerGroup::PointActivity.name();

pub struct PointActivity;

impl Worker for PointActivity {
    fn name(&self) -> &'static str {
        "point-activity"
    }

    fn run(&self, context: WorkerContext, shutdown: CancellationToken) -> WorkerFuture {
        Box::pin(async move { crate::worker::run_members(&context, &shutdown, run_member).await })
    }
}

async fn run_member(context: WorkerContext, member: u16, shutdown: CancellationToken) -> anyhow::Result<()> {
    let dead_letters =
        DeadLetters::new(context.kafka.producer()?, context.kafka.topic_name(Topic::PointsEventsDeadLetter));
    receive::consume(&context, ConsumerGroup::PointActivity, member, &shutdown, |records| async {
        let done = apply_batch(&context, &dead_letters, &records, &shutdown).await?;
        Ok((done, records))
    })
    .await
}

/// Parses and applies a batch; false if shutdown interrupted the retries (nothing of it is acknowledged).
async fn apply_batch(
    context: &WorkerContext,
    dead_letters: &DeadLetters,
    records: &[OwnedMessage],
    shutdown: &CancellationToken,
) -> anyhow::Result<bool> {
    let mut events = Vec::with_capacity(records.len());
    for record in records {
        match project::parse(record, &context.settings.business_time) {
            Ok(event) => events.push((event, record)),
            Err(reason) => dead_letters.send(record, &reason).await?,
        }
    }
    let parsed: Vec<_> = events.iter().map(|(event, _)| event.clone()).collect();
    // Transient errors are retried until shutdown; anything else stops the worker, since skipping a
    // well-formed event would leave the projection wrong for good.
    match retry::until_done(1, shutdown, || apply(&context.pool, GROUP, &parsed)).await {
        Retried::Done(applied) => {
            log_applied(&events, &applied);
            Ok(true)
        }
        Retried::Interrupted => Ok(false),
        Retried::Failed(error) => Err(error).context("applying point events"),
    }
}

fn log_applied(events: &[(project::PointEvent, &OwnedMessage)], applied: &Applied) {
    for (event, record) in events {
        let trace_id = trace_id_from(record.headers());
        let duplicate = !applied.new_events.contains(&event.event_id);
        tracing::info!(
            trace_id = trace_id.as_deref().unwrap_or(""),
            event_id = %event.event_id,
            event_type = %event.event_type,
            user = event.user_id,
            duplicate,
            "point event consumed"
        );
    }
    metrics::counter!("point_events_applied_total").increment(applied.new_events.len() as u64);
    metrics::counter!("point_events_duplicates_total").increment((events.len() - applied.new_events.len()) as u64);
}

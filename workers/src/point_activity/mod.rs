//! The point-activity consumer: projects `points.events` into `point_activity_daily` (what each user
//! earned and spent per day). It deduplicates on the event id in `processed_events`, in the same
//! transaction as the projection, so the relay's at-least-once delivery applies every event exactly once.

mod project;

pub use project::{apply, Applied};

use crate::{dead_letter::DeadLetters, receive, retry, Worker, WorkerContext, WorkerFuture};
use anyhow::Context;
use infra::kafka::{trace_id_from, Topic};
use rdkafka::{
    consumer::Consumer,
    message::{Message, OwnedMessage},
};
use tokio_util::sync::CancellationToken;

pub const GROUP: &str = "point-activity";

pub struct PointActivity;

impl Worker for PointActivity {
    fn name(&self) -> &'static str {
        "point-activity"
    }

    fn run(&self, context: WorkerContext, shutdown: CancellationToken) -> WorkerFuture {
        Box::pin(async move { crate::registry::run_members(&context, &shutdown, run_member).await })
    }
}

async fn run_member(context: WorkerContext, member: u16, shutdown: CancellationToken) -> anyhow::Result<()> {
    let consumer = context.kafka.consumer(GROUP)?;
    let topic = context.kafka.topic_name(Topic::PointsEvents);
    consumer.subscribe(&[&topic]).with_context(|| format!("subscribing to {topic}"))?;
    let dead_letters =
        DeadLetters::new(context.kafka.producer()?, context.kafka.topic_name(Topic::PointsEventsDeadLetter));
    tracing::info!(member, %topic, group = GROUP, "point activity consumer started");

    while let Some(records) = receive::next_batch(&consumer, &context.settings, &shutdown).await {
        let mut events = Vec::with_capacity(records.len());
        for record in &records {
            match project::parse(record) {
                Ok(event) => events.push((event, record)),
                Err(reason) => dead_letters.send(record, &reason).await?,
            }
        }
        let parsed: Vec<_> = events.iter().map(|(event, _)| event.clone()).collect();
        let Some(applied) = apply_with_retry(&context, &parsed, &shutdown).await? else {
            break; // shutdown while retrying: nothing of this batch is acknowledged, so it is redelivered
        };
        log_applied(&events, &applied);
        receive::store_offsets(&consumer, &records)?;
    }
    receive::commit_on_exit(&consumer);
    tracing::info!(member, "point activity consumer stopped");
    Ok(())
}

/// Transient database errors are retried until shutdown (None); anything else stops the worker, since
/// skipping a well-formed event would leave the projection wrong for good.
async fn apply_with_retry(
    context: &WorkerContext,
    events: &[project::PointEvent],
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Applied>> {
    let mut attempt = 0;
    loop {
        match apply(&context.pool, GROUP, events).await {
            Ok(applied) => return Ok(Some(applied)),
            Err(error) if retry::is_transient(&error) => {
                tracing::warn!(%error, attempt, "transient database error; retrying the batch");
            }
            Err(error) => return Err(error).context("applying point events"),
        }
        if !retry::pause(attempt, shutdown).await {
            return Ok(None);
        }
        attempt += 1;
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

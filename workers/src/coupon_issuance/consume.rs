use super::{batch, GROUP};
use crate::{dead_letter::DeadLetters, WorkerContext};
use anyhow::Context;
use infra::{
    coupons::CouponStock,
    kafka::{SettleConsumer, Topic},
};
use rdkafka::{
    consumer::{CommitMode, Consumer},
    message::{Message, OwnedMessage},
};
use tokio_util::sync::CancellationToken;

/// One consumer-group member: batch, persist, then store the batch's offsets; commit on the way out.
pub async fn run_member(context: WorkerContext, member: u16, shutdown: CancellationToken) -> anyhow::Result<()> {
    let consumer = context.kafka.consumer(GROUP)?;
    let topic = context.kafka.topic_name(Topic::CouponIssueRequested);
    consumer.subscribe(&[&topic]).with_context(|| format!("subscribing to {topic}"))?;
    let handler = batch::BatchHandler {
        pool: context.pool.clone(),
        stock: CouponStock::new(context.redis.clone()),
        dead_letters: DeadLetters::new(
            context.kafka.producer()?,
            context.kafka.topic_name(Topic::CouponIssueDeadLetter),
        ),
        max_attempts: context.settings.max_attempts,
    };
    tracing::info!(member, %topic, group = GROUP, "coupon issuance consumer started");

    while let Some(records) = next_batch(&consumer, &context, &shutdown).await {
        if !handler.handle(&records, &shutdown).await? {
            break; // shutdown while retrying: the batch's offsets stay unstored and it is redelivered
        }
        for record in &records {
            consumer.store_offset(record.topic(), record.partition(), record.offset())?;
        }
    }
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(rdkafka::error::KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => tracing::warn!(%error, "final offset commit failed; the last records will be redelivered"),
    }
    tracing::info!(member, "coupon issuance consumer stopped");
    Ok(())
}

/// Up to `batch_size` records, waiting at most `batch_wait` after the first; None on shutdown.
async fn next_batch(
    consumer: &SettleConsumer,
    context: &WorkerContext,
    shutdown: &CancellationToken,
) -> Option<Vec<OwnedMessage>> {
    let first = loop {
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            received = consumer.recv() => match received {
                Ok(message) => break message.detach(),
                Err(error) => tracing::warn!(%error, "consumer error; retrying"),
            },
        }
    };
    let mut records = vec![first];
    let deadline = tokio::time::Instant::now() + context.settings.batch_wait;
    while records.len() < context.settings.batch_size {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(message)) => records.push(message.detach()),
            Ok(Err(error)) => {
                tracing::warn!(%error, "consumer error while filling a batch");
                break;
            }
            Err(_) => break,
        }
    }
    Some(records)
}

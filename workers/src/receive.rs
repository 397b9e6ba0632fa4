//! How every Kafka worker receives: batches of up to N records or T ms, offsets stored only after the
//! batch's effects are committed, and a final synchronous commit on the way out.

use crate::{WorkerContext, WorkerSettings};
use anyhow::Context;
use infra::kafka::{store_handled, ConsumerGroup, SettleConsumer};
use rdkafka::{
    consumer::{CommitMode, Consumer},
    error::KafkaError,
    message::OwnedMessage,
    types::RDKafkaErrorCode,
};
use tokio_util::sync::CancellationToken;

/// One member of consumer group `group` on the topic it reads: receive a batch, let `handle` apply it, then store the
/// batch's offsets; commit on the way out. `handle` answers false when shutdown interrupted it, in which
/// case nothing of the batch is acknowledged and it is redelivered to whoever owns the partition next.
pub async fn consume<H, Fut>(
    context: &WorkerContext,
    group: ConsumerGroup,
    member: u16,
    shutdown: &CancellationToken,
    mut handle: H,
) -> anyhow::Result<()>
where
    H: FnMut(Vec<OwnedMessage>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(bool, Vec<OwnedMessage>)>>,
{
    let consumer: SettleConsumer = context.kafka.consumer(group.name())?;
    let topic = context.kafka.topic_name(group.topic());
    consumer.subscribe(&[&topic]).with_context(|| format!("subscribing to {topic}"))?;
    tracing::info!(member, %topic, group = group.name(), "consumer started");
    while let Some(records) = next_batch(&consumer, &context.settings, shutdown).await {
        let (done, records) = handle(records).await?;
        if !done {
            break;
        }
        store_handled(&consumer, &records)?;
    }
    commit_on_exit(&consumer);
    tracing::info!(member, group = group.name(), "consumer stopped");
    Ok(())
}

/// Up to `batch_size` records, waiting at most `batch_wait` after the first; None on shutdown.
async fn next_batch(
    consumer: &SettleConsumer,
    settings: &WorkerSettings,
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
    let deadline = tokio::time::Instant::now() + settings.batch_wait;
    while records.len() < settings.batch_size {
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

/// Commits what was stored before leaving the group; a failure only means some redelivery.
fn commit_on_exit(consumer: &SettleConsumer) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => tracing::warn!(%error, "final offset commit failed; the last records will be redelivered"),
    }
}

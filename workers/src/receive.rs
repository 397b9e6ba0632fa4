//! How every Kafka worker receives: batches of up to N records or T ms, offsets stored only after the
//! batch's effects are committed, and a final synchronous commit on the way out.

use crate::WorkerSettings;
use infra::kafka::SettleConsumer;
use rdkafka::{
    consumer::{CommitMode, Consumer},
    error::KafkaError,
    message::{Message, OwnedMessage},
    types::RDKafkaErrorCode,
};
use tokio_util::sync::CancellationToken;

/// Up to `batch_size` records, waiting at most `batch_wait` after the first; None on shutdown.
pub async fn next_batch(
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

/// Marks `records` done: their offsets are committed with the next (background or final) commit.
pub fn store_offsets(consumer: &SettleConsumer, records: &[OwnedMessage]) -> Result<(), KafkaError> {
    for record in records {
        consumer.store_offset(record.topic(), record.partition(), record.offset())?;
    }
    Ok(())
}

/// Commits what was stored before leaving the group; a failure only means some redelivery.
pub fn commit_on_exit(consumer: &SettleConsumer) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => tracing::warn!(%error, "final offset commit failed; the last records will be redelivered"),
    }
}

use rdkafka::{
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance},
    error::KafkaError,
    types::RDKafkaErrorCode,
    ClientContext,
};

/// Every settle consumer's context: rebalances are logged, and before partitions are taken away the
/// offsets stored so far (work already committed to the database) are committed synchronously, so the
/// partitions' next owner starts right after it instead of redoing it.
pub struct CommitOnRevoke;

/// The consumer type all workers use.
pub type SettleConsumer = rdkafka::consumer::StreamConsumer<CommitOnRevoke>;

impl ClientContext for CommitOnRevoke {}

impl ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                tracing::info!(partitions = partitions.count(), "partitions revoked: committing stored offsets");
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                    Err(error) => tracing::warn!(%error, "commit on revoke failed; the next owner redoes some records"),
                }
            }
            Rebalance::Assign(partitions) => tracing::info!(partitions = partitions.count(), "partitions assigned"),
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
        }
    }
}

/// Marks `records` done so the next (background or final) commit covers them. A record whose partition was
/// revoked while it was being handled is skipped, not an error: its new owner receives it again, and every
/// handler is idempotent. (librdkafka refuses to store an offset for a partition it no longer owns.)
pub fn store_handled(consumer: &SettleConsumer, records: &[rdkafka::message::OwnedMessage]) -> Result<(), KafkaError> {
    use rdkafka::Message;
    for record in records {
        match consumer.store_offset(record.topic(), record.partition(), record.offset()) {
            Ok(()) => {}
            Err(KafkaError::StoreOffset(RDKafkaErrorCode::State)) => {
                tracing::info!(
                    partition = record.partition(),
                    offset = record.offset(),
                    "partition revoked mid-batch; its new owner redoes the record"
                );
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

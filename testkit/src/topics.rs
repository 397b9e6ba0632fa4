use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    message::BorrowedMessage,
    ClientConfig, Offset, TopicPartitionList,
};
use std::time::Duration;

/// Names of the broker's topics that start with `prefix` (blocks for one metadata request).
pub fn topics_with_prefix(brokers: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
    let probe: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    let metadata = probe.fetch_metadata(None, Duration::from_secs(5))?;
    Ok(metadata.topics().iter().map(|t| t.name().to_owned()).filter(|name| name.starts_with(prefix)).collect())
}

/// A consumer of every partition of `topic` from its start, by assignment rather than through a group:
/// a group's assignment under a loaded broker once left a reader with a quarter of the partitions, which a
/// test read as lost events.
pub fn reader_from_start(kafka: &infra::kafka::Kafka, topic: &str) -> anyhow::Result<FullReader> {
    let consumer = kafka.consumer(&format!("reader-{}", uuid::Uuid::new_v4()))?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = metadata.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    Ok(FullReader { consumer, topic: topic.to_owned(), partitions })
}

pub struct FullReader {
    consumer: infra::kafka::SettleConsumer,
    topic: String,
    partitions: Vec<i32>,
}

impl FullReader {
    /// The next record, or None when nothing arrived within a second.
    pub async fn next(&self) -> Option<BorrowedMessage<'_>> {
        tokio::time::timeout(Duration::from_secs(1), self.consumer.recv()).await.ok()?.ok()
    }

    /// Each partition's log end, for a failure message that tells a real loss from a slow reader.
    pub fn log_ends(&self) -> Vec<(i32, Option<i64>)> {
        let watermarks = |p| self.consumer.fetch_watermarks(&self.topic, p, Duration::from_secs(5)).ok();
        self.partitions.iter().map(|&p| (p, watermarks(p).map(|(_, high)| high))).collect()
    }
}

use anyhow::Context;
use rdkafka::{
    message::{Header, Headers, Message, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
};
use std::time::Duration;

/// Where records go that can never be processed: the original key, payload and headers, plus why and
/// where they came from, so an operator can inspect and replay them.
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetters {
    pub fn new(producer: FutureProducer, topic: String) -> Self {
        Self { producer, topic }
    }

    pub async fn send(&self, message: &OwnedMessage, reason: &str) -> anyhow::Result<()> {
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for header in original.iter() {
                headers = headers.insert(Header { key: header.key, value: header.value });
            }
        }
        let source = format!("{}/{}/{}", message.topic(), message.partition(), message.offset());
        headers = headers
            .insert(Header { key: "dlq_reason", value: Some(reason) })
            .insert(Header { key: "dlq_source", value: Some(&source) });
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(error, _)| error)
            .with_context(|| format!("sending {source} to the dead-letter topic"))?;
        tracing::warn!(%source, reason, "record sent to the dead-letter topic");
        metrics::counter!("worker_dead_letters_total", "topic" => message.topic().to_owned()).increment(1);
        Ok(())
    }
}

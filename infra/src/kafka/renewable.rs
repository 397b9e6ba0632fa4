//! A producer that can be replaced by a fresh one. After an outage in which records timed out, an
//! idempotent librdkafka producer must bump its epoch with the broker; a broker that cannot (tansu, as
//! measured in the breaker test: "Unknown broker error" on every send after the restart) leaves that
//! producer unusable for good. The API renews its producer whenever the broker's breaker opens, so
//! issuance resumes by itself once the broker is back, whatever broker it is.

use super::Kafka;
use rdkafka::producer::FutureProducer;
use std::sync::{Arc, RwLock};

#[derive(Clone)]
pub struct RenewableProducer {
    kafka: Kafka,
    current: Arc<RwLock<FutureProducer>>,
}

impl RenewableProducer {
    pub fn new(kafka: Kafka) -> anyhow::Result<Self> {
        let producer = kafka.producer()?;
        Ok(Self { kafka, current: Arc::new(RwLock::new(producer)) })
    }

    /// The producer to send with now (a cheap clone; sends in flight keep the one they started on).
    pub fn get(&self) -> FutureProducer {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Replaces the producer with a fresh one; the old one goes when its last send finishes. Dropping a
    /// producer waits for its threads, so the old handle is dropped off the async runtime.
    pub fn renew(&self) {
        match self.kafka.producer() {
            Ok(fresh) => {
                let old = std::mem::replace(&mut *self.current.write().unwrap_or_else(|p| p.into_inner()), fresh);
                tokio::task::spawn_blocking(move || drop(old));
                tracing::info!("replaced the Kafka producer with a fresh one");
            }
            Err(error) => tracing::warn!(error = ?error, "could not create a fresh Kafka producer"),
        }
    }
}

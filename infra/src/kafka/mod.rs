//! Kafka through librdkafka: builders that fix the delivery settings in one place, idempotent topic
//! creation, topic names, and the headers that carry a trace id across the broker.

mod admin;
mod context;
mod groups;
mod headers;
mod outcome;
mod renewable;
mod topics;

pub use context::{store_handled, CommitOnRevoke, SettleConsumer};
pub use groups::{ConsumerGroup, LagReader, PartitionLag};
pub use headers::{trace_id_from, with_trace_id, TRACE_ID_HEADER};
pub use outcome::never_stored;
pub use topics::Topic;

pub use renewable::RenewableProducer;

use crate::config::KafkaArgs;
use anyhow::Context;
use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    producer::FutureProducer,
    ClientConfig,
};
use std::time::Duration;

/// How long the broker waits for a silent group member (a crashed process) before giving its partitions
/// to the others.
pub const CONSUMER_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Connection settings plus the name prefix; makes producers, consumers and probes that agree.
#[derive(Clone, Debug)]
pub struct Kafka {
    /// Shared, not owned: the handle is cloned for every request that produces.
    args: std::sync::Arc<KafkaArgs>,
}

impl Kafka {
    pub fn new(args: KafkaArgs) -> Self {
        Self { args: std::sync::Arc::new(args) }
    }

    /// The full name of `topic` in this environment.
    pub fn topic_name(&self, topic: Topic) -> String {
        format!("{}{}", self.args.topic_prefix, topic.name())
    }

    /// The full name of a consumer group in this environment.
    pub fn group_name(&self, group: &str) -> String {
        format!("{}{}", self.args.topic_prefix, group)
    }

    fn base_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.args.brokers)
            // Reconnect quickly after a broker restart: the default backoff grows to 10 s.
            .set("reconnect.backoff.max.ms", "1000");
        config
    }

    /// An idempotent producer that waits for every in-sync replica: a send that resolves `Ok` is durable
    /// and never duplicated by librdkafka's own retries.
    pub fn producer(&self) -> anyhow::Result<FutureProducer> {
        self.producer_config(self.args.message_timeout_ms).create().context("creating the Kafka producer")
    }

    /// Like [`Kafka::producer`], but a record never expires: librdkafka retries until the broker takes it.
    /// With a timeout, a record that expired during an outage could be followed by a later record of the
    /// same partition that got through, reordering them. The caller bounds the wait (shutdown, etc.).
    pub fn ordered_producer(&self) -> anyhow::Result<FutureProducer> {
        self.producer_config(0).create().context("creating the ordered Kafka producer")
    }

    fn producer_config(&self, message_timeout_ms: u64) -> ClientConfig {
        let mut config = self.base_config();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", self.args.linger_ms.to_string())
            .set("message.timeout.ms", message_timeout_ms.to_string());
        config
    }

    /// A group member that commits only what the application stored: offsets are stored by hand after
    /// the work they stand for is committed to the database, then committed in the background.
    pub fn consumer(&self, group: &str) -> anyhow::Result<SettleConsumer> {
        self.base_config()
            .set("group.id", self.group_name(group))
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", CONSUMER_SESSION_TIMEOUT.as_millis().to_string())
            // Members learn of a rebalance at their next heartbeat: at the default 3 s, a process joining
            // a busy group leaves partitions unowned for seconds (seen as a 3-6 s stall when scaling out).
            .set("heartbeat.interval.ms", "500")
            // Fetches of up to 1 MiB per partition and 4 MiB in all: the broker's cost is mostly per fetch,
            // so 256 KiB fetches halved what a consumer could read from tansu (22k against 47k records/s).
            // Not the 50 MiB default: a 100k-record backlog in one response delayed the group's heartbeats
            // past the session timeout with tansu's storage.
            .set("max.partition.fetch.bytes", "1048576")
            .set("fetch.max.bytes", "4194304")
            .create_with_context(CommitOnRevoke)
            .context("creating the Kafka consumer")
    }

    /// Creates the topics that do not exist yet; existing ones are left as they are.
    pub async fn ensure_topics(&self, topics: &[Topic]) -> anyhow::Result<()> {
        let names: Vec<String> = topics.iter().map(|topic| self.topic_name(*topic)).collect();
        admin::create_missing(self.base_config(), &names, self.args.partitions).await
    }

    /// Creates topics by full name (tests and tools that pick their own names).
    pub async fn ensure_topic_names(&self, names: &[String]) -> anyhow::Result<()> {
        admin::create_missing(self.base_config(), names, self.args.partitions).await
    }

    /// A cheap metadata client for readiness checks.
    pub fn probe(&self) -> anyhow::Result<KafkaProbe> {
        let client: BaseConsumer = self.base_config().create().context("creating the Kafka probe")?;
        Ok(KafkaProbe { client: std::sync::Arc::new(client) })
    }
}

/// Asks the broker for cluster metadata: answers only when a broker is really reachable.
#[derive(Clone)]
pub struct KafkaProbe {
    client: std::sync::Arc<BaseConsumer>,
}

impl KafkaProbe {
    pub async fn check(&self, timeout: Duration) -> anyhow::Result<()> {
        let client = self.client.clone();
        // fetch_metadata blocks the calling thread until the broker answers or the timeout passes.
        tokio::task::spawn_blocking(move || client.fetch_metadata(None, timeout).map(|_| ()))
            .await
            .context("joining the Kafka metadata request")?
            .context("fetching Kafka cluster metadata")
    }
}

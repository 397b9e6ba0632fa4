use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    ClientConfig,
};
use std::time::Duration;

/// Names of the broker's topics that start with `prefix` (blocks for one metadata request).
pub fn topics_with_prefix(brokers: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
    let probe: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
    let metadata = probe.fetch_metadata(None, Duration::from_secs(5))?;
    Ok(metadata.topics().iter().map(|t| t.name().to_owned()).filter(|name| name.starts_with(prefix)).collect())
}

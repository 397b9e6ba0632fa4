//! Redis: one multiplexed, self-reconnecting connection per process, and key names under a prefix.

use crate::config::{redact_url, RedisArgs};
use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A Redis connection plus the key prefix this process owns. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    connection: ConnectionManager,
    /// Shared, not owned: the handle is cloned for every request that uses Redis.
    prefix: std::sync::Arc<str>,
}

impl Redis {
    pub async fn connect(args: &RedisArgs) -> anyhow::Result<Self> {
        let client = redis::Client::open(args.url.as_str())
            .with_context(|| format!("parsing the Redis URL {}", redact_url(&args.url)))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(args.timeout()))
            .set_response_timeout(Some(args.timeout()))
            .set_number_of_retries(2)
            .set_max_delay(std::time::Duration::from_millis(500));
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .with_context(|| format!("connecting to Redis at {}", redact_url(&args.url)))?;
        Ok(Self { connection, prefix: args.key_prefix.as_str().into() })
    }

    /// The full key for `name`, under this process's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A handle for issuing commands; clones share one multiplexed connection.
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut connection = self.connection();
        let _: String = redis::cmd("PING").query_async(&mut connection).await.context("Redis PING")?;
        Ok(())
    }
}

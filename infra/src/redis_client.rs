//! Redis: one multiplexed, self-reconnecting connection per process, and key names under a prefix.

use crate::{
    breaker::{Breaker, BreakerArgs},
    config::{redact_url, RedisArgs},
};
use anyhow::Context;
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    ErrorKind, RedisError, RedisResult,
};
use std::future::Future;

/// A Redis connection plus the key prefix this process owns. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    connection: ConnectionManager,
    /// Shared, not owned: the handle is cloned for every request that uses Redis.
    prefix: std::sync::Arc<str>,
    /// Every exchange goes through it: while Redis is down, calls fail at once instead of each
    /// waiting out its timeout.
    breaker: Breaker,
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
        let breaker = Breaker::new("redis", &BreakerArgs::default());
        Ok(Self { connection, prefix: args.key_prefix.as_str().into(), breaker })
    }

    /// The same connection behind a breaker with these settings (`enabled` false: one that never opens).
    pub fn with_breaker(self, args: &BreakerArgs, enabled: bool) -> Self {
        let breaker = Breaker::new("redis", args);
        Self { breaker: if enabled { breaker } else { breaker.disabled() }, ..self }
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// One exchange behind the breaker; while it is open, an I/O error at once.
    pub async fn guarded<T>(&self, exchange: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
        match self.breaker.call(exchange, is_outage).await {
            Ok(result) => result,
            Err(open) => Err(RedisError::from((ErrorKind::Io, "circuit breaker open", open.to_string()))),
        }
    }

    /// The full key for `name`, under this process's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A handle for issuing commands; clones share one multiplexed connection. Go through the breaker:
    /// `....query_async(&mut redis.connection()).behind(&redis)`.
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        let _: String =
            redis::cmd("PING").query_async(&mut self.connection()).behind(self).await.context("Redis PING")?;
        Ok(())
    }
}

/// Errors that mean Redis is unreachable or not answering (what opens the breaker), as opposed to an
/// answer such as a script error.
pub fn is_outage(error: &RedisError) -> bool {
    error.is_io_error() || error.is_timeout() || error.is_connection_dropped() || error.is_connection_refusal()
}

/// `exchange.behind(&redis)`: the exchange through the connection's breaker, written where the
/// exchange is built (`...invoke_async(&mut redis.connection()).behind(&redis).await`).
pub trait Behind<T>: Future<Output = RedisResult<T>> + Sized {
    fn behind(self, redis: &Redis) -> impl Future<Output = RedisResult<T>> {
        redis.guarded(self)
    }
}

impl<T, F: Future<Output = RedisResult<T>>> Behind<T> for F {}

//! Redis: one multiplexed, self-reconnecting connection per process, and key names under a prefix.
//! With sentinels configured the connection follows the master through failovers.

use crate::{
    breaker::{Breaker, BreakerArgs},
    config::{redact_url, RedisArgs},
    redis_sentinel::Sentinels,
};
use anyhow::Context;
use redis::{
    aio::{ConnectionManager, ConnectionManagerConfig},
    ErrorKind, RedisError, RedisResult,
};
use std::{
    future::Future,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, RwLock,
    },
};
use tokio::sync::watch;

/// A Redis connection plus the key prefix this process owns. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    link: Arc<Link>,
    /// Shared, not owned: the handle is cloned for every request that uses Redis.
    prefix: Arc<str>,
    /// Every exchange goes through it: while Redis is down, calls fail at once instead of each
    /// waiting out its timeout.
    breaker: Breaker,
}

/// The connection every clone shares, replaced when the master moves.
struct Link {
    connection: RwLock<ConnectionManager>,
    config: ConnectionManagerConfig,
    sentinels: Option<Sentinels>,
    following: AtomicBool,
    /// Counts the failovers followed; subscribers rebuild what the new master may lack.
    switches: watch::Sender<u64>,
}

impl Redis {
    pub async fn connect(args: &RedisArgs) -> anyhow::Result<Self> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(args.timeout()))
            .set_response_timeout(Some(args.timeout()))
            .set_number_of_retries(2)
            .set_max_delay(std::time::Duration::from_millis(500));
        let sentinels: Vec<String> = args.sentinels.iter().filter(|s| !s.trim().is_empty()).cloned().collect();
        let (connection, sentinels) = if sentinels.is_empty() {
            let client = redis::Client::open(args.url.as_str())
                .with_context(|| format!("parsing the Redis URL {}", redact_url(&args.url)))?;
            let connection = ConnectionManager::new_with_config(client, config.clone())
                .await
                .with_context(|| format!("connecting to Redis at {}", redact_url(&args.url)))?;
            (connection, None)
        } else {
            let sentinels = Sentinels::new(sentinels, args.master_name.clone(), args.url.clone(), args.timeout());
            let (master, connection) = sentinels.connect(&config).await?;
            tracing::info!(%master, name = %args.master_name, "connected to the Redis master the sentinels name");
            (connection, Some(sentinels))
        };
        let link = Link {
            connection: RwLock::new(connection),
            config,
            sentinels,
            following: AtomicBool::new(false),
            switches: watch::Sender::new(0),
        };
        let breaker = Breaker::new("redis", &BreakerArgs::default());
        Ok(Self { link: Arc::new(link), prefix: args.key_prefix.as_str().into(), breaker })
    }

    /// The same connection behind a breaker with these settings (`enabled` false: one that never opens).
    pub fn with_breaker(self, args: &BreakerArgs, enabled: bool) -> Self {
        let breaker = Breaker::new("redis", args);
        Self { breaker: if enabled { breaker } else { breaker.disabled() }, ..self }
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// One exchange behind the breaker; while it is open, an I/O error at once. A failure makes a
    /// sentinel-discovered connection check whether the master moved.
    pub async fn guarded<T>(&self, exchange: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
        let result = match self.breaker.call(exchange, is_outage).await {
            Ok(result) => result,
            Err(open) => Err(RedisError::from((ErrorKind::Io, "circuit breaker open", open.to_string()))),
        };
        if matches!(&result, Err(error) if is_outage(error)) {
            self.follow_the_master();
        }
        result
    }

    /// Where the master is (sentinel mode), or None for a single server.
    pub fn master(&self) -> Option<String> {
        self.link.sentinels.as_ref().map(Sentinels::current)
    }

    /// Changes each time the connection followed a failover to another master.
    pub fn switches(&self) -> watch::Receiver<u64> {
        self.link.switches.subscribe()
    }

    /// In the background, asks the sentinels where the master is and moves there if it moved. At most
    /// one look at a time, and not more often than the sentinels module allows.
    fn follow_the_master(&self) {
        let Some(sentinels) = &self.link.sentinels else { return };
        if !sentinels.time_to_ask() || self.link.following.swap(true, Ordering::SeqCst) {
            return;
        }
        let (link, breaker) = (self.link.clone(), self.breaker.clone());
        tokio::spawn(async move {
            if let Err(error) = link.follow(&breaker).await {
                tracing::warn!(error = format!("{error:#}"), "could not reach the Redis master through the sentinels");
            }
            link.following.store(false, Ordering::SeqCst);
        });
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
        self.link.connection.read().expect("connection lock").clone()
    }

    /// Every key under this process's prefix matching `pattern`, in pages (SCAN, never KEYS).
    pub async fn keys_matching(&self, pattern: &str) -> anyhow::Result<Vec<String>> {
        let (mut cursor, mut keys) = (0_u64, Vec::new());
        loop {
            let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(self.key(pattern))
                .arg("COUNT")
                .arg(1_000)
                .query_async(&mut self.connection())
                .behind(self)
                .await
                .context("SCAN")?;
            keys.extend(page);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// Deletes every key under this process's prefix matching `pattern`.
    pub async fn delete_matching(&self, pattern: &str) -> anyhow::Result<()> {
        for chunk in self.keys_matching(pattern).await?.chunks(500) {
            let _: i64 = redis::cmd("DEL").arg(chunk).query_async(&mut self.connection()).behind(self).await?;
        }
        Ok(())
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        let _: String =
            redis::cmd("PING").query_async(&mut self.connection()).behind(self).await.context("Redis PING")?;
        Ok(())
    }
}

impl Link {
    async fn follow(&self, breaker: &Breaker) -> anyhow::Result<()> {
        let sentinels = self.sentinels.as_ref().expect("only sentinel links follow");
        let before = sentinels.current();
        if sentinels.master_address().await? == before {
            return Ok(());
        }
        let (master, connection) = sentinels.connect(&self.config).await?;
        *self.connection.write().expect("connection lock") = connection;
        // The old master's failures say nothing about the new one.
        breaker.reset();
        self.switches.send_modify(|switches| *switches += 1);
        tracing::warn!(from = %before, to = %master, "followed a Redis failover to the new master");
        metrics::counter!("redis_failovers_followed_total").increment(1);
        Ok(())
    }
}

/// Server answers that mean this node cannot serve writes now: a replica (`READONLY`, e.g. an old
/// master demoted by a failover), a master without enough replicas (`NOREPLICAS`), one still loading
/// or cut off from its master.
const NOT_SERVING: [&str; 5] = ["READONLY", "NOREPLICAS", "MASTERDOWN", "LOADING", "TRYAGAIN"];

/// Errors that mean Redis is unreachable or cannot serve (what opens the breaker and makes a
/// sentinel-discovered connection look for the master), as opposed to an answer such as a script error.
pub fn is_outage(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.code().is_some_and(|code| NOT_SERVING.contains(&code))
}

/// `exchange.behind(&redis)`: the exchange through the connection's breaker, written where the
/// exchange is built (`...invoke_async(&mut redis.connection()).behind(&redis).await`).
pub trait Behind<T>: Future<Output = RedisResult<T>> + Sized {
    fn behind(self, redis: &Redis) -> impl Future<Output = RedisResult<T>> {
        redis.guarded(self)
    }
}

impl<T, F: Future<Output = RedisResult<T>>> Behind<T> for F {}

//! Cache-aside balances in Redis, versioned: a value is replaced only by a newer version, so a slow
//! reader that loaded an old balance can never overwrite the one a writer just stored. Every Redis
//! failure is logged and answered from PostgreSQL instead: the cache may be slow to help, never wrong
//! for long (entries expire) and never an error for the caller.

use crate::redis_client::Behind;
use crate::redis_client::Redis;
use chrono::{DateTime, Utc};
use domain::UserId;
use redis::Script;
use sqlx::{Postgres, Transaction};
use std::sync::Arc;

/// How long a cached balance may live without a write refreshing it (milliseconds).
const TTL_MS: u64 = 300_000;

#[derive(Clone)]
pub struct BalanceCache {
    redis: Redis,
    offer: Arc<Script>,
}

impl BalanceCache {
    pub fn new(redis: Redis) -> Self {
        Self { redis, offer: Arc::new(Script::new(include_str!("offer.lua"))) }
    }

    /// The cache for a batch job that changes balances outside the API; None (logged) when Redis cannot
    /// be reached: the job goes on, and cached balances it changed stay until they expire.
    pub async fn for_batch(redis: &crate::config::RedisArgs) -> Option<Self> {
        match Redis::connect(redis).await {
            Ok(redis) => Some(Self::new(redis)),
            Err(error) => {
                tracing::warn!(error = ?error, "Redis unavailable: balances this job changes stay cached until they expire");
                None
            }
        }
    }

    fn key(&self, user: UserId) -> String {
        self.redis.key(&format!("points:balance:{user}"))
    }

    fn expiring_key(&self, user: UserId) -> String {
        self.redis.key(&format!("points:expiring:{user}"))
    }

    /// (version, balance) if cached; None on a miss or any Redis trouble.
    pub async fn get(&self, user: UserId) -> Option<(i64, i64)> {
        let cached: redis::RedisResult<Option<String>> =
            redis::cmd("GET").arg(self.key(user)).query_async(&mut self.redis.connection()).behind(&self.redis).await;
        match cached {
            Ok(value) => value.and_then(|v| parse(&v)),
            Err(error) => {
                tracing::warn!(%error, "balance cache unavailable; reading PostgreSQL");
                None
            }
        }
    }

    /// The cached balance with the part of it that expires soon, when that is cached for the same version
    /// (it lives only until time alone would change it); None on a balance miss or any Redis trouble.
    pub async fn get_with_expiring(&self, user: UserId) -> Option<Cached> {
        let cached: redis::RedisResult<(Option<String>, Option<String>)> = redis::cmd("MGET")
            .arg(self.key(user))
            .arg(self.expiring_key(user))
            .query_async(&mut self.redis.connection())
            .behind(&self.redis)
            .await;
        match cached {
            Ok((balance, expiring)) => {
                let (version, balance) = balance.as_deref().and_then(parse)?;
                let expiring = expiring.as_deref().and_then(parse).filter(|(of, _)| *of == version).map(|(_, a)| a);
                Some(Cached { version, balance, expiring })
            }
            Err(error) => {
                tracing::warn!(%error, "balance cache unavailable; reading PostgreSQL");
                None
            }
        }
    }

    /// Caches the part of the balance of `version` that expires soon, unless a newer version's is cached,
    /// until `soon.until` (when time alone changes it: a lot in the window ends or another enters it) or
    /// the usual TTL, whichever is first.
    pub async fn offer_expiring(&self, user: UserId, soon: ExpiringSoon, now: DateTime<Utc>) {
        let ttl_ms = TTL_MS as i64;
        let lasts_ms = soon.until.map_or(ttl_ms, |until| (until - now).num_milliseconds().min(ttl_ms));
        if lasts_ms > 0 {
            self.store_newer(&[(self.expiring_key(user), soon.version, soon.amount)], lasts_ms as u64).await;
        }
    }

    /// Stores (version, balance) unless the cache already holds that version or a newer one.
    pub async fn offer(&self, user: UserId, version: i64, balance: i64) {
        self.offer_all(&[BalanceChange { user, version, balance }]).await;
    }

    /// Offers every change in one round trip (a bulk job's chunk), each as [`Self::offer`] would.
    pub async fn offer_all(&self, changes: &[BalanceChange]) {
        let values: Vec<_> = changes.iter().map(|c| (self.key(c.user), c.version, c.balance)).collect();
        self.store_newer(&values, TTL_MS).await;
    }

    /// Stores each (key, version, value) for `ttl_ms` unless its key holds that version or a newer one.
    async fn store_newer(&self, values: &[(String, i64, i64)], ttl_ms: u64) {
        if values.is_empty() {
            return;
        }
        let mut invocation = self.offer.prepare_invoke();
        invocation.arg(ttl_ms);
        for (key, version, value) in values {
            invocation.key(key).arg(version).arg(value);
        }
        let stored: redis::RedisResult<i64> =
            invocation.invoke_async(&mut self.redis.connection()).behind(&self.redis).await;
        if let Err(error) = stored {
            tracing::warn!(%error, values = values.len(), "could not refresh the cache");
        }
    }
}

/// A cached balance, and the part of it that expires soon if that is cached for the same version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cached {
    pub version: i64,
    pub balance: i64,
    pub expiring: Option<i64>,
}

/// The points of the balance of `version` that expire within a window, and the next instant at which
/// time alone changes that amount (None: no live lot left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiringSoon {
    pub version: i64,
    pub amount: i64,
    pub until: Option<DateTime<Utc>>,
}

/// A balance as a write left it, to be offered to the cache once that write committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceChange {
    pub user: UserId,
    pub version: i64,
    pub balance: i64,
}

impl BalanceCache {
    /// Commits `tx`, then offers the balance it changed (if it changed one) to the cache, before the caller
    /// answers. Every path that changes a balance ends its transaction here, so the balance a user reads
    /// next follows their own write: the version makes a late offer of an older balance harmless.
    pub async fn commit(&self, tx: Transaction<'_, Postgres>, changed: Option<BalanceChange>) -> sqlx::Result<()> {
        tx.commit().await?;
        if let Some(change) = changed {
            self.offer(change.user, change.version, change.balance).await;
        }
        Ok(())
    }

    /// Drops the cached balance so the next read loads it again (after a correction made outside the
    /// API, which does not come with a newer version the cache could compare).
    pub async fn evict(&self, user: UserId) {
        let deleted: redis::RedisResult<i64> =
            redis::cmd("DEL").arg(self.key(user)).query_async(&mut self.redis.connection()).behind(&self.redis).await;
        if let Err(error) = deleted {
            tracing::warn!(%error, user = %user, "could not evict the cached balance; it expires on its own");
        }
    }
}

fn parse(value: &str) -> Option<(i64, i64)> {
    let (version, balance) = value.split_once(':')?;
    Some((version.parse().ok()?, balance.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cached_values_parse_as_version_and_balance() {
        assert_eq!(super::parse("7:1500"), Some((7, 1500)));
        assert_eq!(super::parse("garbage"), None);
    }
}

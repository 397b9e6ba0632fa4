//! Login throttling in Redis: attempts counted per account and per client IP when they are let through,
//! and taken back when they succeed; past a threshold further attempts wait, the wait doubling with each
//! failure (see `throttle.lua`). A success resets the account's count (not the IP's: one good password
//! must not clear a flood from that address). Redis unreachable: logins go ahead (logged and counted),
//! since the hashing pool still bounds them.

use crate::redis_client::Behind;
use crate::redis_client::Redis;
use anyhow::Context;
use redis::Script;
use std::{sync::Arc, time::Duration};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_per_account: u32,
    pub max_per_ip: u32,
    pub window: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

#[derive(Clone)]
pub struct Throttle {
    redis: Redis,
    script: Arc<Script>,
    limits: Limits,
}

enum Step {
    Attempt,
    Ok,
}

impl Throttle {
    pub fn new(redis: Redis, limits: Limits) -> Self {
        Self { redis, script: Arc::new(Script::new(include_str!("throttle.lua"))), limits }
    }

    /// Counts an attempt and lets it through (None), or says how long the caller must wait first. The
    /// attempt counts as failed unless `succeeded` follows.
    pub async fn attempt(&self, account: Option<i64>, ip: Option<&str>) -> Option<Duration> {
        match self.run(Step::Attempt, account, ip).await {
            Ok(0) => None,
            Ok(millis) => Some(Duration::from_millis(millis)),
            Err(error) => {
                tracing::warn!(error = ?error, "login throttling unavailable; letting the attempt through");
                metrics::counter!("login_throttle_unavailable_total").increment(1);
                None
            }
        }
    }

    /// The attempt counted for `account` from `ip` was the right password.
    pub async fn succeeded(&self, account: i64, ip: Option<&str>) {
        if let Err(error) = self.run(Step::Ok, Some(account), ip).await {
            tracing::warn!(error = ?error, "resetting an account's failed logins failed");
        }
    }

    async fn run(&self, step: Step, account: Option<i64>, ip: Option<&str>) -> anyhow::Result<u64> {
        let key = |kind: &str, subject: Option<String>| subject.map(|s| self.redis.key(&format!("login:{kind}:{s}")));
        let account = account.map(|id| id.to_string());
        let ip = ip.map(str::to_owned);
        let keys = [
            key("fail:account", account.clone()),
            key("block:account", account),
            key("fail:ip", ip.clone()),
            key("block:ip", ip),
        ];
        let mut invocation = self.script.prepare_invoke();
        for key in &keys {
            invocation.key(key.as_deref().unwrap_or(""));
        }
        let limits = &self.limits;
        invocation
            .arg(match step {
                Step::Attempt => "attempt",
                Step::Ok => "ok",
            })
            .arg(limits.window.as_millis() as u64)
            .arg(limits.backoff_base.as_millis() as u64)
            .arg(limits.backoff_cap.as_millis() as u64)
            .arg(limits.max_per_account)
            .arg(limits.max_per_ip);
        invocation
            .invoke_async(&mut self.redis.connection())
            .behind(&self.redis)
            .await
            .context("running the login throttle script")
    }
}

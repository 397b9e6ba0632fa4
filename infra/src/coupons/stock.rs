use super::repo::{self, PolicyRow};
use crate::cache::Redis;
use anyhow::Context;
use chrono::{DateTime, Utc};
use domain::{coupon::IssueRejection, PolicyId, UserId};
use redis::Script;
use sqlx::PgPool;
use std::{sync::Arc, time::Duration};
use uuid::Uuid;

/// The outcome of a Redis reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    Reserved { remaining: i64 },
    Rejected(IssueRejection),
}

/// Redis state derived from the database: per policy, its quantity and window and the set of users
/// holding a reservation. Lost state is rebuilt from the database on the next request; the database's
/// constraints, not this state, are what make over-issue impossible.
#[derive(Clone)]
pub struct CouponStock {
    redis: Redis,
    scripts: Arc<Scripts>,
}

struct Scripts {
    reserve: Script,
    load: Script,
    release: Script,
}

impl CouponStock {
    pub fn new(redis: Redis) -> Self {
        let scripts = Scripts {
            reserve: Script::new(include_str!("reserve.lua")),
            load: Script::new(include_str!("load.lua")),
            release: Script::new(include_str!("release.lua")),
        };
        Self { redis, scripts: Arc::new(scripts) }
    }

    fn meta_key(&self, policy: PolicyId) -> String {
        self.redis.key(&format!("coupon:policy:{policy}:meta"))
    }

    fn users_key(&self, policy: PolicyId) -> String {
        self.redis.key(&format!("coupon:policy:{policy}:users"))
    }

    fn pending_key(&self, request: Option<Uuid>) -> String {
        self.redis.key(&format!("coupon:request:{}", request.map(|r| r.to_string()).unwrap_or_default()))
    }

    /// Reserves a coupon for `user`, rebuilding the policy's state from `pool` if Redis lost it.
    /// With `pending`, also marks the request as pending for that long (V3's status reads).
    pub async fn reserve(
        &self,
        pool: &PgPool,
        policy: PolicyId,
        user: UserId,
        pending: Option<(Uuid, Duration)>,
    ) -> anyhow::Result<Reservation> {
        for _ in 0..3 {
            match self.try_reserve(policy, user, pending).await? {
                Some(reservation) => return Ok(reservation),
                None => {
                    if !self.rebuild(pool, policy).await? {
                        return Ok(Reservation::Rejected(IssueRejection::UnknownPolicy));
                    }
                }
            }
        }
        anyhow::bail!("the Redis state of policy {policy} vanished three times while reserving")
    }

    /// `None` when the policy's state is missing from Redis.
    async fn try_reserve(
        &self,
        policy: PolicyId,
        user: UserId,
        pending: Option<(Uuid, Duration)>,
    ) -> anyhow::Result<Option<Reservation>> {
        let ttl = pending.map_or(0, |(_, ttl)| ttl.as_secs().max(1));
        let marker = format!("{user}:{policy}");
        let outcome: i64 = self
            .scripts
            .reserve
            .key(self.meta_key(policy))
            .key(self.users_key(policy))
            .key(self.pending_key(pending.map(|(request, _)| request)))
            .arg(user.get())
            .arg(Utc::now().timestamp_millis())
            .arg(ttl)
            .arg(marker)
            .invoke_async(&mut self.redis.connection())
            .await
            .context("running the coupon reservation script")?;
        Ok(match outcome {
            remaining if remaining >= 0 => Some(Reservation::Reserved { remaining }),
            -1 => Some(Reservation::Rejected(IssueRejection::SoldOut)),
            -2 => Some(Reservation::Rejected(IssueRejection::AlreadyIssued)),
            -3 => Some(Reservation::Rejected(IssueRejection::OutsideIssueWindow)),
            _ => None,
        })
    }

    /// Loads the policy and its coupon holders from the database into Redis; false if no such policy.
    pub async fn rebuild(&self, pool: &PgPool, policy: PolicyId) -> anyhow::Result<bool> {
        let Some(row) = repo::find_policy(pool, policy).await? else {
            return Ok(false);
        };
        let holders = repo::policy_holders(pool, policy).await?;
        self.load(&row, &holders).await?;
        Ok(true)
    }

    async fn load(&self, policy: &PolicyRow, holders: &[i64]) -> anyhow::Result<()> {
        let id = policy.policy_id()?;
        let loaded: i64 = self
            .scripts
            .load
            .key(self.meta_key(id))
            .key(self.users_key(id))
            .arg(policy.total_quantity)
            .arg(millis(policy.start_time))
            .arg(millis(policy.end_time))
            .arg(holders)
            .invoke_async(&mut self.redis.connection())
            .await
            .context("loading coupon state into Redis")?;
        if loaded == 1 {
            tracing::info!(policy = policy.id, holders = holders.len(), "rebuilt coupon state from the database");
        }
        Ok(())
    }

    /// Returns a reservation (and clears its pending marker).
    pub async fn release(&self, policy: PolicyId, user: UserId, request: Option<Uuid>) -> anyhow::Result<()> {
        let _: i64 = self
            .scripts
            .release
            .key(self.users_key(policy))
            .key(self.pending_key(request))
            .arg(user.get())
            .invoke_async(&mut self.redis.connection())
            .await
            .context("releasing a coupon reservation")?;
        Ok(())
    }

    /// Who made a still-pending request, if Redis knows it.
    pub async fn pending_owner(&self, request: Uuid) -> anyhow::Result<Option<UserId>> {
        let marker: Option<String> = redis::cmd("GET")
            .arg(self.pending_key(Some(request)))
            .query_async(&mut self.redis.connection())
            .await
            .context("reading a pending request marker")?;
        Ok(marker
            .and_then(|m| m.split_once(':').and_then(|(user, _)| user.parse::<i64>().ok()))
            .and_then(|user| UserId::parse(user).ok()))
    }

    /// Drops the pending markers of requests whose outcome is now in the database.
    pub async fn forget_pending(&self, requests: &[Uuid]) -> anyhow::Result<()> {
        if requests.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = requests.iter().map(|request| self.pending_key(Some(*request))).collect();
        let _: i64 = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut self.redis.connection())
            .await
            .context("deleting pending request markers")?;
        Ok(())
    }
}

fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

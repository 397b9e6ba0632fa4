use super::repo::{self, PolicyRow};
use crate::redis_client::Behind;
use crate::redis_client::Redis;
use anyhow::Context;
use chrono::{DateTime, Utc};
use domain::{
    coupon::{IssueRejection, IssueRequested},
    PolicyId, UserId,
};
use redis::Script;
use sqlx::PgPool;
use std::{sync::Arc, time::Duration};
use uuid::Uuid;

/// How often (per policy, across every API process) a sold-out answer may be compared with the database.
const DRIFT_CHECK_EVERY: Duration = Duration::from_secs(1);
/// An in-flight reservation older than this no longer holds off a drift repair: its settlement was lost
/// (Redis unreachable when the worker settled it). A worker lagging longer than this behind a sell-out can
/// see a repair admit requests it will then refuse as SOLD_OUT; the database guard still never over-issues.
const IN_FLIGHT_HORIZON: Duration = Duration::from_secs(600);

/// The outcome of a Redis reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    Reserved {
        remaining: i64,
    },
    Rejected(IssueRejection),
    /// The user already holds a place whose request is not settled: still being decided, or one whose
    /// commit outcome is unknown (the database was lost mid-commit). The database says which.
    InFlight,
}

/// A request whose outcome is final: its reservation stops being in flight, its pending marker goes, and
/// the user keeps their place only if they hold a coupon of the policy (`keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    pub policy: PolicyId,
    pub user: UserId,
    pub request: Option<Uuid>,
    pub keep: bool,
}

impl Settlement {
    /// The settlement of a V3 request.
    pub fn of_request(request: &IssueRequested, keep: bool) -> Self {
        Self { policy: request.policy_id, user: request.user_id, request: Some(request.request_id), keep }
    }
}

/// A policy's holders as the database had them, and the Redis state version read before that read.
pub struct DriftSnapshot {
    row: PolicyRow,
    holders: Vec<i64>,
    version: String,
}

/// What one run of the reservation script said.
enum Attempt {
    Decided(Reservation),
    /// The policy's state is not in Redis: rebuild it from the database and try again.
    Missing,
    /// Sold out here, and this caller is the one that should compare with the database.
    SoldOutCheckDrift,
}

/// Redis state derived from the database: per policy, its quantity and window, the set of users holding
/// a reservation and which of those are still in flight. Lost state is rebuilt from the database on the
/// next request, and state that drifted from it (sold out here while the database has stock and nothing
/// is in flight) is replaced; the database's constraints, not this state, make over-issue impossible.
#[derive(Clone)]
pub struct CouponStock {
    redis: Redis,
    scripts: Arc<Scripts>,
}

struct Scripts {
    reserve: Script,
    load: Script,
    reload: Script,
    settle: Script,
}

impl CouponStock {
    pub fn new(redis: Redis) -> Self {
        let scripts = Scripts {
            reserve: Script::new(include_str!("reserve.lua")),
            load: Script::new(include_str!("load.lua")),
            reload: Script::new(include_str!("reload.lua")),
            settle: Script::new(include_str!("settle.lua")),
        };
        Self { redis, scripts: Arc::new(scripts) }
    }

    fn policy_key(&self, policy: PolicyId, part: &str) -> String {
        self.redis.key(&format!("coupon:policy:{policy}:{part}"))
    }

    fn pending_key(&self, request: Option<Uuid>) -> String {
        self.redis.key(&format!("coupon:request:{}", request.map(|r| r.to_string()).unwrap_or_default()))
    }

    /// Reserves a coupon for `user`, rebuilding the policy's state from `pool` if Redis lost it or it
    /// drifted. With `pending`, also marks the request as pending for that long (V3's status reads).
    pub async fn reserve(
        &self,
        pool: &PgPool,
        policy: PolicyId,
        user: UserId,
        pending: Option<(Uuid, Duration)>,
    ) -> anyhow::Result<Reservation> {
        for _ in 0..3 {
            match self.try_reserve(policy, user, pending).await? {
                Attempt::Decided(reservation) => return Ok(reservation),
                Attempt::Missing => {
                    if !self.rebuild(pool, policy).await? {
                        return Ok(Reservation::Rejected(IssueRejection::UnknownPolicy));
                    }
                }
                Attempt::SoldOutCheckDrift => {
                    if !self.repair_drift(pool, policy).await? {
                        return Ok(Reservation::Rejected(IssueRejection::SoldOut));
                    }
                }
            }
        }
        anyhow::bail!("the Redis state of policy {policy} was rebuilt three times while reserving")
    }

    async fn try_reserve(
        &self,
        policy: PolicyId,
        user: UserId,
        pending: Option<(Uuid, Duration)>,
    ) -> anyhow::Result<Attempt> {
        let ttl = pending.map_or(0, |(_, ttl)| ttl.as_secs().max(1));
        let marker = format!("{user}:{policy}");
        let outcome: i64 = self
            .scripts
            .reserve
            .key(self.policy_key(policy, "meta"))
            .key(self.policy_key(policy, "users"))
            .key(self.pending_key(pending.map(|(request, _)| request)))
            .key(self.policy_key(policy, "inflight"))
            .key(self.policy_key(policy, "drift-check"))
            .arg(user.get())
            .arg(Utc::now().timestamp_millis())
            .arg(ttl)
            .arg(marker)
            .arg(DRIFT_CHECK_EVERY.as_millis() as u64)
            .invoke_async(&mut self.redis.connection())
            .behind(&self.redis)
            .await
            .context("running the coupon reservation script")?;
        Ok(match outcome {
            remaining if remaining >= 0 => Attempt::Decided(Reservation::Reserved { remaining }),
            -1 => Attempt::Decided(Reservation::Rejected(IssueRejection::SoldOut)),
            -2 => Attempt::Decided(Reservation::Rejected(IssueRejection::AlreadyIssued)),
            -3 => Attempt::Decided(Reservation::Rejected(IssueRejection::OutsideIssueWindow)),
            -5 => Attempt::SoldOutCheckDrift,
            -6 => Attempt::Decided(Reservation::InFlight),
            _ => Attempt::Missing,
        })
    }

    /// Loads the policy and its coupon holders from the database into Redis; false if no such policy.
    pub async fn rebuild(&self, pool: &PgPool, policy: PolicyId) -> anyhow::Result<bool> {
        let Some(row) = repo::find_policy(pool, policy).await? else {
            return Ok(false);
        };
        let holders = repo::policy_holders(pool, policy).await?;
        let loaded: i64 = self
            .policy_invocation(&self.scripts.load, &row)
            .arg(&holders)
            .invoke_async(&mut self.redis.connection())
            .behind(&self.redis)
            .await
            .context("loading coupon state into Redis")?;
        if loaded == 1 {
            tracing::info!(policy = row.id, holders = holders.len(), "rebuilt coupon state from the database");
        }
        Ok(true)
    }

    /// The drift guard: Redis says sold out; if the database still has stock and no reservation is in
    /// flight, some reservation was never returned (its settlement was lost), so the state is replaced
    /// with the database's. True if it was.
    pub async fn repair_drift(&self, pool: &PgPool, policy: PolicyId) -> anyhow::Result<bool> {
        match self.drift_snapshot(pool, policy).await? {
            Some(snapshot) => self.replace_drifted(&snapshot).await,
            None => Ok(false),
        }
    }

    /// The database's view of a policy that Redis calls sold out, with the Redis state version read
    /// before it; None if the database is sold out too (or has no such policy).
    pub async fn drift_snapshot(&self, pool: &PgPool, policy: PolicyId) -> anyhow::Result<Option<DriftSnapshot>> {
        let version: Option<String> = redis::cmd("HGET")
            .arg(self.policy_key(policy, "meta"))
            .arg("version")
            .query_async(&mut self.redis.connection())
            .behind(&self.redis)
            .await
            .context("reading the coupon state version")?;
        let Some(row) = repo::find_policy(pool, policy).await? else {
            return Ok(None);
        };
        if row.issued_quantity >= row.total_quantity {
            return Ok(None);
        }
        let holders = repo::policy_holders(pool, policy).await?;
        Ok(Some(DriftSnapshot { row, holders, version: version.unwrap_or_default() }))
    }

    /// Replaces the policy's state with `snapshot` unless a reservation is in flight or the state moved
    /// since the snapshot was taken (then the next drift check takes a new one). True if replaced.
    pub async fn replace_drifted(&self, snapshot: &DriftSnapshot) -> anyhow::Result<bool> {
        let oldest_counted = Utc::now() - IN_FLIGHT_HORIZON;
        let reloaded: i64 = self
            .policy_invocation(&self.scripts.reload, &snapshot.row)
            .arg(millis(oldest_counted))
            .arg(&snapshot.version)
            .arg(&snapshot.holders)
            .invoke_async(&mut self.redis.connection())
            .behind(&self.redis)
            .await
            .context("replacing drifted coupon state")?;
        if reloaded == 1 {
            tracing::warn!(
                policy = snapshot.row.id,
                holders = snapshot.holders.len(),
                "coupon state drifted from the database; rebuilt it"
            );
            metrics::counter!("coupon_state_drift_repairs_total").increment(1);
        }
        Ok(reloaded == 1)
    }

    /// `script` with the policy's keys (meta, user set, in-flight set) and its quantity and window as its
    /// first arguments: the head that `load.lua` and `reload.lua` share.
    fn policy_invocation<'s>(&self, script: &'s Script, policy: &PolicyRow) -> redis::ScriptInvocation<'s> {
        let id = PolicyId::parse(policy.id).expect("policy ids from the database are positive");
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.policy_key(id, "meta"))
            .key(self.policy_key(id, "users"))
            .key(self.policy_key(id, "inflight"))
            .arg(policy.total_quantity)
            .arg(millis(policy.start_time))
            .arg(millis(policy.end_time));
        invocation
    }

    /// After a failover: every policy the new master knows gets the database's coupon holders back in
    /// its reservations, in case the writes that put them there were not replicated. Reservations the
    /// new master holds beyond those (still in flight) stay. Returns how many policies were restored.
    pub async fn restore_holders(&self, pool: &PgPool) -> anyhow::Result<usize> {
        let metas = self.redis.keys_matching("coupon:policy:*:meta").await?;
        let head = self.redis.key("coupon:policy:");
        let policies: Vec<PolicyId> = metas
            .iter()
            .filter_map(|key| key.strip_prefix(&head)?.strip_suffix(":meta")?.parse().ok())
            .filter_map(|id| PolicyId::parse(id).ok())
            .collect();
        for policy in &policies {
            let holders = repo::policy_holders(pool, *policy).await?;
            for chunk in holders.chunks(5_000) {
                let _: i64 = redis::cmd("SADD")
                    .arg(self.policy_key(*policy, "users"))
                    .arg(chunk)
                    .query_async(&mut self.redis.connection())
                    .behind(&self.redis)
                    .await
                    .context("restoring coupon holders")?;
            }
        }
        Ok(policies.len())
    }

    /// Settles every request in one round trip.
    pub async fn settle(&self, settlements: &[Settlement]) -> anyhow::Result<()> {
        if settlements.is_empty() {
            return Ok(());
        }
        // Pipelined EVALSHA does not load a missing script by itself, so the load goes first.
        let mut pipe = redis::pipe();
        pipe.load_script(&self.scripts.settle).ignore();
        let invocations: Vec<_> = settlements
            .iter()
            .map(|s| {
                let mut invocation = self.scripts.settle.prepare_invoke();
                invocation
                    .key(self.policy_key(s.policy, "users"))
                    .key(self.pending_key(s.request))
                    .key(self.policy_key(s.policy, "inflight"))
                    .key(self.policy_key(s.policy, "meta"))
                    .arg(s.user.get())
                    .arg(if s.keep { 1 } else { 0 });
                invocation
            })
            .collect();
        for invocation in &invocations {
            pipe.invoke_script(invocation).ignore();
        }
        pipe.query_async::<()>(&mut self.redis.connection())
            .behind(&self.redis)
            .await
            .context("settling coupon reservations")
    }

    /// Who made a still-pending request, if Redis knows it.
    pub async fn pending_owner(&self, request: Uuid) -> anyhow::Result<Option<UserId>> {
        let marker: Option<String> = redis::cmd("GET")
            .arg(self.pending_key(Some(request)))
            .query_async(&mut self.redis.connection())
            .behind(&self.redis)
            .await
            .context("reading a pending request marker")?;
        Ok(marker
            .and_then(|m| m.split_once(':').and_then(|(user, _)| user.parse::<i64>().ok()))
            .and_then(|user| UserId::parse(user).ok()))
    }
}

fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

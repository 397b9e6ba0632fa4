//! `settle-batch expire-points --date D`: points whose validity ended on or before the business date D
//! leave the balances. Every lot that stopped being spendable by the end of D (and by now) with
//! something left is closed; each of its users gets one EXPIRE entry, a lower balance, a `PointsExpired`
//! event and a refreshed cached balance.
//!
//! Work units are the ledger's hash partitions, `--workers` at a time, each checkpointed when done.
//! Inside one, chunks of `--chunk` users commit on their own under the users' balance row locks, so a
//! run stopped anywhere resumes (or simply reruns: a closed lot is no longer due) without expiring
//! anything twice, and a use racing the job never spends an expired lot or takes a balance below zero.

use super::terms::dated_command;
use crate::{
    job::{self, Context, Counts, Job, PartitionEnd, RunArgs},
    jobs::reconcile::LEDGER_PARTITIONS,
    Exit,
};
use chrono::{DateTime, NaiveDate, Utc};
use infra::{
    config::{BusinessTimeArgs, RedisArgs},
    points::{cache::BalanceCache, expiry},
};
use sqlx::PgPool;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

#[derive(clap::Args, Debug, Clone)]
pub struct ExpirePointsArgs {
    /// The business date whose end the lots expire by, YYYY-MM-DD (the schedule passes yesterday). It is
    /// the run's key in the job repository.
    #[arg(long)]
    pub date: NaiveDate,
    #[command(flatten)]
    pub business: BusinessTimeArgs,
    /// Users per transaction.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub chunk: i64,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
}

/// What a run did, summed over its chunks.
#[derive(Debug, Default)]
struct Tally {
    users: AtomicUsize,
    lots: AtomicUsize,
    points: AtomicI64,
}

/// One run: its cutoff, the balance cache it refreshes, and what it did.
struct ExpirePoints {
    args: ExpirePointsArgs,
    cutoff: DateTime<Utc>,
    reason: String,
    cache: Option<BalanceCache>,
    tally: Tally,
}

pub async fn run(pool: &PgPool, args: ExpirePointsArgs) -> anyhow::Result<Exit> {
    let day_after = args.date.succ_opt().ok_or_else(|| anyhow::anyhow!("{} has no next day", args.date))?;
    // Never before now: a lot due later today is still spendable until its own instant.
    let cutoff = args.business.start_of(day_after).min(Utc::now());
    let reason = format!("points valid through {} expired", args.date);
    let cache = BalanceCache::for_batch(&args.redis).await;
    job::run(pool, &ExpirePoints { args, cutoff, reason, cache, tally: Tally::default() }).await
}

impl Job for ExpirePoints {
    const NAME: &'static str = "expire-points";

    fn key(&self) -> String {
        self.args.date.to_string()
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({ "timezone": self.args.business.timezone.name(), "cutoff": self.cutoff })
    }

    fn command_line(&self) -> Vec<String> {
        let mut line = dated_command(Self::NAME, self.args.date, &self.args.business);
        line.extend(["--chunk".into(), self.args.chunk.to_string()]);
        line.extend(self.args.run.command_line());
        line
    }

    fn run_args(&self) -> &RunArgs {
        &self.args.run
    }

    fn partitions(&self) -> i32 {
        LEDGER_PARTITIONS
    }

    /// Expires one hash partition's due lots, chunk by chunk.
    async fn partition(&self, ctx: &Context<'_>, partition: i32) -> anyhow::Result<PartitionEnd> {
        let trace_id = infra::telemetry::run_trace_id();
        let (mut after, mut counts) = (0i64, Counts::default());
        loop {
            if ctx.stop.requested() {
                return Ok(PartitionEnd::Stopped);
            }
            let mut tx = ctx.pool.begin().await?;
            let users = expiry::lock_due_users(&mut tx, partition, after, self.cutoff, self.args.chunk).await?;
            let Some(&last) = users.last() else { break };
            let expired = expiry::expire_locked(&mut tx, &users, self.cutoff, &self.reason, Some(trace_id)).await?;
            tx.commit().await?;
            if let Some(cache) = &self.cache {
                cache.offer_all(&expired.iter().filter_map(|e| e.balance_change()).collect::<Vec<_>>()).await;
            }
            let (lots, points) = expired.iter().fold((0, 0), |(lots, points), e| (lots + e.lots, points + e.amount));
            counts.rows_read += lots;
            counts.rows_written += expired.len() as i64;
            self.tally.users.fetch_add(expired.len(), Ordering::Relaxed);
            self.tally.lots.fetch_add(lots as usize, Ordering::Relaxed);
            self.tally.points.fetch_add(points, Ordering::Relaxed);
            ctx.progress.rows.fetch_add(lots as u64, Ordering::Relaxed);
            after = last;
        }
        Ok(PartitionEnd::Done(counts))
    }

    fn summary(&self, _totals: Counts, _elapsed: std::time::Duration) -> Vec<(String, String)> {
        vec![
            ("lots due by".into(), self.cutoff.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            ("lots closed".into(), self.tally.lots.load(Ordering::Relaxed).to_string()),
            ("users".into(), self.tally.users.load(Ordering::Relaxed).to_string()),
            ("points expired".into(), self.tally.points.load(Ordering::Relaxed).to_string()),
        ]
    }
}

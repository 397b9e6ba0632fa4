//! `settle-batch expire-points --date D`: points whose validity ended on or before the business date D
//! leave the balances. Every lot that stopped being spendable by the end of D (and by now) with
//! something left is closed; each of its users gets one EXPIRE entry, a lower balance, a `PointsExpired`
//! event and a refreshed cached balance.
//!
//! Work units are the ledger's hash partitions, `--workers` at a time, each checkpointed when done.
//! Inside one, chunks of `--chunk` users commit on their own under the users' balance row locks, so a
//! run stopped anywhere resumes (or simply reruns: a closed lot is no longer due) without expiring
//! anything twice, and a use racing the job never spends an expired lot or takes a balance below zero.

use crate::{
    jobs::{self, Counts, Start},
    partitions,
    progress::Progress,
    stop::StopSignal,
    Exit,
};
use chrono::{DateTime, NaiveDate, Utc};
use infra::{
    config::{BusinessTimeArgs, RedisArgs},
    points::{cache::BalanceCache, expiry},
};
use sqlx::PgPool;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

const JOB: &str = "expire-points";

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
    /// Partitions in flight at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub workers: u16,
    /// Run again although this date has completed.
    #[arg(long)]
    pub force: bool,
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

impl ExpirePointsArgs {
    /// The options `restart` runs this job with again.
    fn command_line(&self) -> Vec<String> {
        let mut line = vec![JOB.to_owned(), "--date".into(), self.date.to_string()];
        line.extend(["--timezone".into(), self.business.timezone.name().to_owned()]);
        line.extend(["--chunk".into(), self.chunk.to_string(), "--workers".into(), self.workers.to_string()]);
        line
    }
}

pub async fn run(pool: &PgPool, args: ExpirePointsArgs) -> anyhow::Result<Exit> {
    let day_after = args.date.succ_opt().ok_or_else(|| anyhow::anyhow!("{} has no next day", args.date))?;
    // Never before now: a lot due later today is still spendable until its own instant.
    let cutoff = args.business.start_of(day_after).min(Utc::now());
    let key = args.date.to_string();
    let parameters = serde_json::json!({ "timezone": args.business.timezone.name(), "cutoff": cutoff });
    let execution = match jobs::start(pool, JOB, &key, parameters, &args.command_line(), args.force).await? {
        Start::AlreadyCompleted { id } => {
            println!("{JOB} for {key} already completed (execution {id}); use --force to run it again");
            return Ok(Exit::AlreadyCompleted);
        }
        Start::Run(execution) => execution,
    };
    let cache = BalanceCache::for_batch(&args.redis).await;
    let progress = Progress::start(JOB, partitions::pending(&execution).len() as u64);
    let stop = StopSignal::watch(pool, execution.id);
    let run = Run {
        pool,
        chunk: args.chunk,
        cutoff,
        reason: format!("points valid through {} expired", args.date),
        cache: cache.as_ref(),
        tally: Tally::default(),
        progress: &progress,
        stop: &stop,
    };
    let outcome = partitions::each_pending(pool, &execution, args.workers, &progress, &stop, |partition| {
        run.partition(partition)
    })
    .await;
    let (elapsed, tally) = (progress.elapsed(), run.tally);
    drop(progress);
    let ended = jobs::Outcome::of(&outcome, stop.requested());
    jobs::finish(pool, execution.id, ended.clone()).await?;
    outcome?;
    if ended == jobs::Outcome::Completed {
        print_summary(&key, cutoff, &tally, elapsed);
    }
    Ok(jobs::exit_for(&ended, execution.id))
}

/// One run's shared state and what it did.
struct Run<'a> {
    pool: &'a PgPool,
    chunk: i64,
    cutoff: DateTime<Utc>,
    reason: String,
    cache: Option<&'a BalanceCache>,
    tally: Tally,
    progress: &'a Progress,
    stop: &'a StopSignal,
}

impl Run<'_> {
    /// Expires one partition's due lots, chunk by chunk; None if a stop came first.
    async fn partition(&self, partition: i32) -> anyhow::Result<Option<Counts>> {
        let trace_id = infra::telemetry::run_trace_id();
        let (mut after, mut counts) = (0i64, Counts::default());
        loop {
            if self.stop.requested() {
                return Ok(None);
            }
            let mut tx = self.pool.begin().await?;
            let users = expiry::lock_due_users(&mut tx, partition, after, self.cutoff, self.chunk).await?;
            let Some(&last) = users.last() else { break };
            let expired = expiry::expire_locked(&mut tx, &users, self.cutoff, &self.reason, Some(trace_id)).await?;
            tx.commit().await?;
            if let Some(cache) = self.cache {
                cache.offer_all(&expired.iter().filter_map(|e| e.balance_change()).collect::<Vec<_>>()).await;
            }
            let (lots, points) = expired.iter().fold((0, 0), |(lots, points), e| (lots + e.lots, points + e.amount));
            counts.rows_read += lots;
            counts.rows_written += expired.len() as i64;
            self.tally.users.fetch_add(expired.len(), Ordering::Relaxed);
            self.tally.lots.fetch_add(lots as usize, Ordering::Relaxed);
            self.tally.points.fetch_add(points, Ordering::Relaxed);
            self.progress.rows.fetch_add(lots as u64, Ordering::Relaxed);
            after = last;
        }
        Ok(Some(counts))
    }
}

fn print_summary(key: &str, cutoff: DateTime<Utc>, tally: &Tally, elapsed: std::time::Duration) {
    let seconds = elapsed.as_secs_f64();
    let lots = tally.lots.load(Ordering::Relaxed);
    println!("{JOB} {key}: COMPLETED");
    println!("  {:<28} {:>24}", "lots due by", cutoff.format("%Y-%m-%d %H:%M:%S UTC"));
    println!("  {:<28} {:>24}", "lots closed", lots);
    println!("  {:<28} {:>24}", "users", tally.users.load(Ordering::Relaxed));
    println!("  {:<28} {:>24}", "points expired", tally.points.load(Ordering::Relaxed));
    println!("  {:<28} {:>24}", "this run took", format!("{seconds:.2} s"));
    println!("  {:<28} {:>24}", "lots/s", format!("{:.0}", lots as f64 / seconds.max(1e-3)));
}

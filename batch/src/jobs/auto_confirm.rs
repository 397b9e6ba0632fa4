//! `settle-batch auto-confirm`: purchase confirmation (구매확정) of what buyers left unconfirmed. An order
//! DELIVERED longer than `AUTO_CONFIRM_DAYS` before `--as-of` becomes CONFIRMED, with its history row and
//! its `OrderConfirmed` event (which earns the buyer's purchase points downstream).
//!
//! Chunks of `--chunk` orders are claimed with SKIP LOCKED by `--workers` tasks; each chunk's moves and
//! its checkpoint commit together, so a run stopped anywhere is resumed (or simply rerun: what was
//! confirmed is no longer DELIVERED) without confirming anything twice.

use crate::{
    job::progress::Progress,
    job::repository::{self as jobs, Counts, Start},
    job::stop::StopSignal,
    Exit,
};
use chrono::{DateTime, Duration, Utc};
use futures::future::try_join_all;
use infra::{
    config::OrderArgs,
    shop::orders::{confirm_delivered, BulkActor, OrderActor},
};
use sqlx::PgPool;
use std::sync::atomic::{AtomicI32, Ordering};

const JOB: &str = "auto-confirm";

#[derive(clap::Args, Debug, Clone)]
pub struct AutoConfirmArgs {
    /// Confirm orders delivered at least this many days before --as-of (never fewer than the return window).
    #[arg(long = "auto-confirm-days", env = "AUTO_CONFIRM_DAYS", default_value_t = 7,
        value_parser = clap::value_parser!(u32).range(1..=365))]
    pub days: u32,
    /// The instant the run is for, RFC 3339 (default: now). The scheduler passes its slot, so a catch-up
    /// confirms what was due then; it is the run's key in the job repository.
    #[arg(long)]
    pub as_of: Option<DateTime<Utc>>,
    /// Orders per transaction.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub chunk: i64,
    /// Chunks in flight at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub workers: u16,
    /// Run again although this --as-of has completed.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub orders: OrderArgs,
}

impl AutoConfirmArgs {
    /// The options `restart` runs this job with again (the instant resolved, so a restart is the same run).
    fn command_line(&self, as_of: DateTime<Utc>) -> Vec<String> {
        let mut line = vec![JOB.to_owned(), "--as-of".into(), as_of.to_rfc3339()];
        line.extend(["--auto-confirm-days".into(), self.days.to_string(), "--chunk".into(), self.chunk.to_string()]);
        line.extend(["--workers".into(), self.workers.to_string()]);
        line
    }
}

pub async fn run(pool: &PgPool, args: AutoConfirmArgs) -> anyhow::Result<Exit> {
    if args.days < args.orders.return_window_days {
        eprintln!(
            "settle-batch: AUTO_CONFIRM_DAYS ({}) is shorter than RETURN_WINDOW_DAYS ({}): confirming would take \
             buyers' refunds away before their window closes",
            args.days, args.orders.return_window_days
        );
        return Ok(Exit::BadArguments);
    }
    let as_of = args.as_of.unwrap_or_else(Utc::now);
    let delivered_before = as_of - Duration::days(i64::from(args.days));
    let key = as_of.format("%Y-%m-%dT%H:%M").to_string();
    let parameters = serde_json::json!({ "autoConfirmDays": args.days, "deliveredBefore": delivered_before });
    let execution = match jobs::start(pool, JOB, &key, parameters, &args.command_line(as_of), args.force).await? {
        Start::AlreadyCompleted { id } => {
            println!("{JOB} for {key} already completed (execution {id}); use --force to run it again");
            return Ok(Exit::AlreadyCompleted);
        }
        Start::Run(execution) => execution,
    };
    // Chunk numbers go on after the ones an interrupted attempt completed.
    let next_chunk = AtomicI32::new(execution.completed.iter().max().map_or(0, |last| last + 1));
    let progress = Progress::start(JOB, 0);
    let stop = StopSignal::watch(pool, execution.id);
    let chunks = Chunks { pool, args: &args, execution: execution.id, delivered_before, next: &next_chunk };
    let workers = (0..args.workers).map(|_| chunks.confirm(&progress, &stop));
    let outcome = try_join_all(workers).await.map(|_| ());
    let elapsed = progress.elapsed();
    drop(progress);
    let ended = jobs::Outcome::of(&outcome, stop.requested());
    let counts = jobs::finish(pool, execution.id, ended.clone(), 0).await?;
    outcome?;
    if ended == jobs::Outcome::Completed {
        print_summary(&key, delivered_before, counts, elapsed);
    }
    Ok(jobs::exit_for(&ended, execution.id))
}

/// What every worker shares: the run's cutoff and the next chunk number.
struct Chunks<'a> {
    pool: &'a PgPool,
    args: &'a AutoConfirmArgs,
    execution: i64,
    delivered_before: DateTime<Utc>,
    next: &'a AtomicI32,
}

impl Chunks<'_> {
    /// One worker: chunks until none is left, or a stop is asked.
    async fn confirm(&self, progress: &Progress, stop: &StopSignal) -> anyhow::Result<()> {
        let reason = format!("delivered {} days ago without the buyer's confirmation", self.args.days);
        let trace_id = Some(infra::telemetry::run_trace_id());
        let by = BulkActor { actor: OrderActor::System(JOB), reason: &reason, trace_id };
        while !stop.requested() {
            let mut tx = self.pool.begin().await?;
            let confirmed = confirm_delivered(&mut tx, self.delivered_before, self.args.chunk, &by).await?;
            if confirmed == 0 {
                return Ok(());
            }
            let counts = Counts { rows_read: confirmed as i64, rows_written: confirmed as i64, discrepancies: 0 };
            jobs::complete_partition(&mut tx, self.execution, self.next.fetch_add(1, Ordering::Relaxed), counts)
                .await?;
            tx.commit().await?;
            progress.rows.fetch_add(confirmed as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn print_summary(key: &str, delivered_before: DateTime<Utc>, counts: Counts, elapsed: std::time::Duration) {
    let seconds = elapsed.as_secs_f64();
    println!("{JOB} {key}: COMPLETED");
    println!("  {:<28} {:>24}", "delivered before", delivered_before.format("%Y-%m-%d %H:%M:%S UTC"));
    println!("  {:<28} {:>24}", "orders confirmed", counts.rows_written);
    println!("  {:<28} {:>24}", "this run took", format!("{seconds:.2} s"));
    println!("  {:<28} {:>24}", "orders/s", format!("{:.0}", counts.rows_written as f64 / seconds.max(1e-3)));
}

//! `settle-batch auto-confirm`: purchase confirmation (구매확정) of what buyers left unconfirmed. An order
//! DELIVERED longer than `AUTO_CONFIRM_DAYS` before `--as-of` becomes CONFIRMED, with its history row and
//! its `OrderConfirmed` event (which earns the buyer's purchase points downstream).
//!
//! The orders are split into `--partitions` by id; a partition confirms chunks of `--chunk` orders, each
//! claimed with SKIP LOCKED and committed on its own, until none is due. A run stopped anywhere is
//! resumed (or simply rerun: what was confirmed is no longer DELIVERED) without confirming anything twice.

use crate::{
    job::{self, Context, Counts, Job, PartitionEnd, RunArgs},
    Exit,
};
use chrono::{DateTime, Duration, Utc};
use infra::{
    config::OrderArgs,
    shop::orders::{confirm_delivered, BulkActor, IdSlice, OrderActor},
};
use sqlx::PgPool;
use std::sync::atomic::Ordering;

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
    /// How many partitions the orders are split into (by id); a resume keeps the first count.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=256))]
    pub partitions: i32,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub orders: OrderArgs,
}

/// One run: the instant it is for and its cutoff.
struct AutoConfirm {
    args: AutoConfirmArgs,
    as_of: DateTime<Utc>,
    delivered_before: DateTime<Utc>,
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
    job::run(pool, &AutoConfirm { args, as_of, delivered_before }).await
}

impl Job for AutoConfirm {
    const NAME: &'static str = "auto-confirm";

    fn key(&self) -> String {
        self.as_of.format("%Y-%m-%dT%H:%M").to_string()
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "autoConfirmDays": self.args.days,
            "deliveredBefore": self.delivered_before,
            "partitions": self.args.partitions,
        })
    }

    /// The instant resolved, so a restart is the same run.
    fn command_line(&self) -> Vec<String> {
        let mut line = vec![Self::NAME.to_owned(), "--as-of".into(), self.as_of.to_rfc3339()];
        line.extend(["--auto-confirm-days".into(), self.args.days.to_string()]);
        line.extend(["--chunk".into(), self.args.chunk.to_string()]);
        line.extend(["--partitions".into(), self.args.partitions.to_string()]);
        line.extend(self.args.run.command_line());
        line
    }

    fn run_args(&self) -> &RunArgs {
        &self.args.run
    }

    fn partitions(&self) -> i32 {
        self.args.partitions
    }

    /// Chunk after chunk of the partition's due orders, until none is left.
    async fn partition(&self, ctx: &Context<'_>, partition: i32) -> anyhow::Result<PartitionEnd> {
        let reason = format!("delivered {} days ago without the buyer's confirmation", self.args.days);
        let trace_id = Some(infra::telemetry::run_trace_id());
        let by = BulkActor { actor: OrderActor::System(Self::NAME), reason: &reason, trace_id };
        let slice = IdSlice { of: self.args.partitions, index: partition };
        let mut counts = Counts::default();
        loop {
            if ctx.stop.requested() {
                return Ok(PartitionEnd::Stopped);
            }
            let mut tx = ctx.pool.begin().await?;
            let confirmed = confirm_delivered(&mut tx, self.delivered_before, slice, self.args.chunk, &by).await?;
            tx.commit().await?;
            if confirmed == 0 {
                return Ok(PartitionEnd::Done(counts));
            }
            counts.rows_read += confirmed as i64;
            counts.rows_written += confirmed as i64;
            ctx.progress.rows.fetch_add(confirmed as u64, Ordering::Relaxed);
        }
    }

    fn summary(&self, totals: Counts, _elapsed: std::time::Duration) -> Vec<(String, String)> {
        vec![
            ("delivered before".into(), self.delivered_before.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            ("orders confirmed".into(), totals.rows_written.to_string()),
        ]
    }
}

//! `settle-batch settle-sales --date D`: the daily sales settlement. A sale is recognised on the business
//! day its order became CONFIRMED, a reversal on the day a confirmed order's money went back. Each
//! becomes one line per order item (`settlement_lines`, append-only, unique per item and event): gross,
//! the coupon discount and the points split over the items with `domain::settlement`, what was paid, the
//! provider's fee at the rate of the payment method snapshotted on the line, and net.
//!
//! The day is split into `--partitions` equal slices of time (by when each move happened); a partition
//! streams its inputs with COPY, splits each order as it arrives, and writes its lines by COPY with its checkpoint in one transaction. Once every
//! partition completed, the day's summaries are rebuilt and its gates checked ([`gates`]): every gate held
//! → the day is CLOSED (final); otherwise it is FAILED, each discrepancy recorded, and the run exits 1.
//!
//! `--dry-run` computes the lines a run would write (the day may still be under way: a preview) and
//! checks the gates on them with the lines already there, writing and recording nothing; the settled-once
//! gate then compares counts only.

mod gates;
mod lines;
mod summary;

pub mod export;

use super::terms::{dated_command, Day, FeeRateArgs};
use crate::{
    job::{self, Conclusion, Context, Counts, Job, PartitionEnd, RunArgs},
    Exit,
};
use chrono::NaiveDate;
use infra::config::BusinessTimeArgs;
use lines::LineSums;
use sqlx::PgPool;
use std::sync::Mutex;

#[derive(clap::Args, Debug, Clone)]
pub struct SettleSalesArgs {
    /// The business date to settle, YYYY-MM-DD (the schedule passes yesterday); the run's key.
    #[arg(long)]
    pub date: NaiveDate,
    #[command(flatten)]
    pub business: BusinessTimeArgs,
    #[command(flatten)]
    pub fees: FeeRateArgs,
    /// How many partitions the day is split into (equal slices of its time); a resume keeps the first count.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=256))]
    pub partitions: i32,
    /// Compute the lines and check the gates only: nothing is written or recorded, and the day may still
    /// be under way.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

/// One run of one day.
struct SettleSales {
    args: SettleSalesArgs,
    day: Day,
    /// What a dry run's partitions computed.
    unwritten: Mutex<LineSums>,
}

pub async fn run(pool: &PgPool, args: SettleSalesArgs) -> anyhow::Result<Exit> {
    let day = match Day::ended(args.date, &args.business) {
        Ok(day) => day,
        Err(_) if args.dry_run => Day::of(args.date, &args.business).map_err(anyhow::Error::msg)?,
        Err(why) => {
            eprintln!("settle-batch: {why}");
            return Ok(Exit::BadArguments);
        }
    };
    job::run(pool, &SettleSales { args, day, unwritten: Mutex::default() }).await
}

impl SettleSales {
    /// The day's line sums (its summaries rewritten with `rewrite`) and the gates' sources, read at once
    /// on two connections: they read other tables, so on two cores this takes the longer of the two.
    async fn sums_and_sources(
        &self,
        ctx: &Context<'_>,
        rewrite: bool,
    ) -> sqlx::Result<(summary::LineTotals, gates::Sources)> {
        tokio::try_join!(summary::rebuild(ctx.pool, self.day.date, rewrite), gates::read_sources(ctx.pool, &self.day))
    }

    /// The gates on the lines already there and those the dry run computed, recorded nowhere.
    async fn conclude_dry_run(&self, ctx: &Context<'_>) -> anyhow::Result<Conclusion> {
        let (written, sources) = self.sums_and_sources(ctx, false).await?;
        let unwritten = *self.unwritten.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let results = gates::evaluate(ctx.pool, &self.day, sources, written.with_unwritten(unwritten)).await?;
        gates::print(&results);
        let failed: Vec<&str> = results.iter().filter(|gate| !gate.held).map(|gate| gate.name).collect();
        Ok(Conclusion {
            discrepancies: failed.len() as i64,
            failed: (!failed.is_empty())
                .then(|| format!("day {} would fail gates: {}", self.day.date, failed.join(", "))),
            attention: None,
        })
    }
}

impl Job for SettleSales {
    const NAME: &'static str = "settle-sales";

    fn key(&self) -> String {
        self.day.date.to_string()
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "timezone": self.args.business.timezone.name(),
            "partitions": self.args.partitions,
            "feeRates": self.args.fees.fee_rates.to_string(),
        })
    }

    fn command_line(&self) -> Vec<String> {
        let mut line = dated_command(Self::NAME, self.day.date, &self.args.business);
        line.extend(["--partitions".into(), self.args.partitions.to_string()]);
        line.extend(self.args.fees.command_line());
        line.extend(self.args.run.command_line());
        line
    }

    fn run_args(&self) -> &RunArgs {
        &self.args.run
    }

    fn partitions(&self) -> i32 {
        self.args.partitions
    }

    fn dry_run(&self) -> bool {
        self.args.dry_run
    }

    async fn partition(&self, ctx: &Context<'_>, partition: i32) -> anyhow::Result<PartitionEnd> {
        if gates::day_is_closed(ctx.pool, self.day.date).await? {
            // A closed day is final: a forced rerun only checks it again.
            return Ok(PartitionEnd::Done(Counts::default()));
        }
        let slice = lines::Slice { day: self.day, partitions: self.args.partitions, partition };
        if ctx.dry_run {
            let (counts, sums) = lines::settle(ctx, &slice, &self.args.fees.fee_rates).await?;
            let mut unwritten = self.unwritten.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            *unwritten = unwritten.plus(sums);
            return Ok(PartitionEnd::Done(counts));
        }
        gates::open_day(ctx.pool, &self.day, self.args.business.timezone.name(), ctx.execution).await?;
        let (counts, _) = lines::settle(ctx, &slice, &self.args.fees.fee_rates).await?;
        Ok(PartitionEnd::Committed(counts))
    }

    async fn conclude(&self, ctx: &Context<'_>) -> anyhow::Result<Conclusion> {
        if ctx.dry_run {
            return self.conclude_dry_run(ctx).await;
        }
        let closed = gates::day_is_closed(ctx.pool, self.day.date).await?;
        let (lines, sources) = self.sums_and_sources(ctx, !closed).await?;
        let results = gates::check(ctx.pool, &self.day, ctx.execution, sources, lines).await?;
        gates::print(&results);
        let failed: Vec<&str> = results.iter().filter(|gate| !gate.held).map(|gate| gate.name).collect();
        if !closed {
            gates::close_or_fail(ctx.pool, self.day.date, ctx.execution, failed.is_empty()).await?;
        }
        Ok(Conclusion {
            discrepancies: failed.len() as i64,
            failed: (!failed.is_empty()).then(|| {
                let state = if closed { "is CLOSED but" } else { "is FAILED:" };
                format!("day {} {state} gates failed: {}", self.day.date, failed.join(", "))
            }),
            attention: None,
        })
    }

    fn summary(&self, totals: Counts, _elapsed: std::time::Duration) -> Vec<(String, String)> {
        if self.args.dry_run {
            let unwritten = *self.unwritten.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            return vec![
                ("business day starts".into(), self.day.start.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
                ("order items read".into(), totals.rows_read.to_string()),
                ("lines it would write".into(), unwritten.lines.to_string()),
                ("  gross".into(), unwritten.total.gross.to_string()),
                ("  coupon discount".into(), unwritten.total.coupon_discount.to_string()),
                ("  points".into(), unwritten.total.points.to_string()),
                ("  paid".into(), unwritten.total.paid.to_string()),
                ("  fee".into(), unwritten.total.fee.to_string()),
                ("  net".into(), unwritten.total.net.to_string()),
            ];
        }
        vec![
            ("business day starts".into(), self.day.start.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            ("order items read".into(), totals.rows_read.to_string()),
            ("lines written".into(), totals.rows_written.to_string()),
        ]
    }
}

//! `settle-batch reconcile-points`: the daily PointBalance reconciliation.
//!
//! The ledger and the balances are both hash-partitioned by user into [`LEDGER_PARTITIONS`]; work unit
//! `u` of `--partitions P` covers the hash partitions `k` with `k % P == u`. Every unit reads its
//! partitions with COPY OUT inside one exported snapshot shared by all units, so writes the live API makes
//! meanwhile are invisible to all of them alike and cannot look like discrepancies. Rows are aggregated
//! by rayon as they stream; each unit's snapshot rows, discrepancies and checkpoint commit together.

mod aggregate;
mod fix;
mod stream;
mod write;

use super::terms::dated_command;
use crate::{
    job::{self, Context as JobContext, Counts, Job, PartitionEnd, RunArgs},
    Exit,
};
use anyhow::{bail, Context};
use chrono::NaiveDate;
use infra::{
    config::{BusinessTimeArgs, RedisArgs},
    points::cache::BalanceCache,
};
use sqlx::{PgPool, Postgres, Transaction};
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc, Mutex, OnceLock,
};

/// The hash partitions of `points` and `point_balances` (see the migrations).
pub const LEDGER_PARTITIONS: i32 = 16;

#[derive(clap::Args, Debug, Clone)]
pub struct ReconcileArgs {
    /// The business date to close, YYYY-MM-DD.
    #[arg(long)]
    pub date: NaiveDate,
    #[command(flatten)]
    pub business: BusinessTimeArgs,
    /// Work units (checkpointed separately); a divisor of 16. More units hold fewer users in memory each.
    #[arg(long, default_value_t = 16, value_parser = parse_partitions)]
    pub partitions: i32,
    /// Units processed at once, and rayon threads aggregating the streams.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    /// Snapshot rows per COPY message.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub chunk: u32,
    /// Correct each discrepancy (as a guarded delta) and evict the user's cached balance.
    #[arg(long)]
    pub fix: bool,
    /// Compute and report only: nothing is written, not even the execution record.
    #[arg(long, conflicts_with = "fix")]
    pub dry_run: bool,
    /// Run again although this date has completed (its snapshot rows are replaced).
    #[arg(long)]
    pub force: bool,
    /// Fault injection for tests: fail this unit after reading it, before anything of it is written.
    #[arg(long, hide = true)]
    pub fail_partition: Option<i32>,
    #[command(flatten)]
    pub redis: RedisArgs,
}

fn parse_partitions(raw: &str) -> Result<i32, String> {
    let value: i32 = raw.parse().map_err(|_| format!("{raw:?} is not a whole number"))?;
    if value < 1 || LEDGER_PARTITIONS % value != 0 {
        return Err(format!("must be a divisor of {LEDGER_PARTITIONS} (1, 2, 4, 8 or 16), not {value}"));
    }
    Ok(value)
}

struct Day {
    start: String,
    end: String,
}

/// One run: the day's bounds, the snapshot every unit reads in, the rayon pool, and what it fixed.
struct ReconcilePoints {
    args: ReconcileArgs,
    /// `--threads` units at a time, and `--force`.
    run: RunArgs,
    day: Day,
    rayon: Arc<rayon::ThreadPool>,
    /// The exporting transaction stays open until every unit has imported its snapshot (to the end).
    exporter: tokio::sync::Mutex<Option<Transaction<'static, Postgres>>>,
    snapshot: OnceLock<String>,
    done_earlier: AtomicUsize,
    fixed: Mutex<Option<fix::Fixed>>,
}

pub async fn run(pool: &PgPool, args: ReconcileArgs) -> anyhow::Result<Exit> {
    let Some(day) = business_day(pool, &args).await? else {
        eprintln!("settle-batch: time zone {:?} is not known to PostgreSQL", args.business.timezone.name());
        return Ok(Exit::BadArguments);
    };
    let rayon =
        Arc::new(rayon::ThreadPoolBuilder::new().num_threads(args.threads.into()).build().context("starting rayon")?);
    let run = RunArgs { workers: args.threads, force: args.force };
    let job = ReconcilePoints {
        args,
        run,
        day,
        rayon,
        exporter: Default::default(),
        snapshot: OnceLock::new(),
        done_earlier: AtomicUsize::new(0),
        fixed: Mutex::new(None),
    };
    job::run(pool, &job).await
}

impl Job for ReconcilePoints {
    const NAME: &'static str = "reconcile-points";

    fn key(&self) -> String {
        self.args.date.to_string()
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({ "timezone": self.args.business.timezone.name(), "partitions": self.args.partitions })
    }

    /// Never the Redis URL: it comes from the environment.
    fn command_line(&self) -> Vec<String> {
        let args = &self.args;
        let mut line = dated_command(Self::NAME, args.date, &args.business);
        line.extend(["--partitions".into(), args.partitions.to_string(), "--threads".into(), args.threads.to_string()]);
        line.extend(["--chunk".into(), args.chunk.to_string()]);
        if args.fix {
            line.push("--fix".into());
        }
        line
    }

    fn run_args(&self) -> &RunArgs {
        &self.run
    }

    fn dry_run(&self) -> bool {
        self.args.dry_run
    }

    fn partitions(&self) -> i32 {
        self.args.partitions
    }

    /// A fresh execution replaces the date's snapshot rows; every run exports the snapshot its units share.
    async fn prepare(&self, ctx: &JobContext<'_>, done_earlier: usize) -> anyhow::Result<()> {
        self.done_earlier.store(done_earlier, Ordering::Relaxed);
        if done_earlier == 0 && !ctx.dry_run {
            sqlx::query!("DELETE FROM daily_point_snapshots WHERE business_date = $1", self.args.date)
                .execute(ctx.pool)
                .await?;
        }
        let mut export = ctx.pool.begin().await?;
        sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *export).await?;
        let snapshot =
            sqlx::query_scalar!(r#"SELECT pg_export_snapshot() AS "snapshot!""#).fetch_one(&mut *export).await?;
        *self.exporter.lock().await = Some(export);
        self.snapshot.set(snapshot).map_err(|_| anyhow::anyhow!("the snapshot was exported twice"))
    }

    async fn partition(&self, ctx: &JobContext<'_>, unit: i32) -> anyhow::Result<PartitionEnd> {
        let snapshot = self.snapshot.get().context("no exported snapshot")?;
        let (totals, rows_read) = self.read_unit(ctx, unit, snapshot).await?;
        if self.args.fail_partition == Some(unit) {
            bail!("injected failure in partition {unit}");
        }
        if ctx.dry_run {
            let discrepancies = totals.values().filter(|t| t.discrepancy().is_some()).count() as i64;
            let snapshots = totals.values().filter(|t| t.entries_to_close > 0).count() as i64;
            return Ok(PartitionEnd::Done(Counts { rows_read, rows_written: snapshots, discrepancies }));
        }
        let args = &self.args;
        let counts =
            write::partition(ctx.pool, ctx.execution, unit, args.date, &totals, args.chunk as usize, rows_read)
                .await
                .with_context(|| format!("writing partition {unit}"))?;
        Ok(PartitionEnd::Committed(counts))
    }

    async fn conclude(&self, ctx: &JobContext<'_>) -> anyhow::Result<job::Conclusion> {
        if let Some(export) = self.exporter.lock().await.take() {
            export.rollback().await?;
        }
        if self.args.fix && !ctx.dry_run {
            let cache = BalanceCache::for_batch(&self.args.redis).await;
            let fixed = fix::apply(ctx.pool, ctx.execution, cache.as_ref()).await?;
            *self.fixed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(fixed);
        }
        Ok(job::Conclusion::default())
    }

    fn summary(&self, totals: Counts, _elapsed: std::time::Duration) -> Vec<(String, String)> {
        let done_earlier = self.done_earlier.load(Ordering::Relaxed);
        let mut lines = vec![
            ("timezone".to_owned(), self.args.business.timezone.name().to_owned()),
            ("partitions".to_owned(), format!("{} ({done_earlier} done earlier)", self.args.partitions)),
            ("threads".to_owned(), self.args.threads.to_string()),
            ("rows read".to_owned(), totals.rows_read.to_string()),
            ("snapshot rows written".to_owned(), totals.rows_written.to_string()),
            ("discrepancies".to_owned(), totals.discrepancies.to_string()),
        ];
        if let Some(fixed) = self.fixed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).as_ref() {
            lines.push(("fixed".to_owned(), fixed.fixed.to_string()));
            lines.push(("not fixed (changed, failed)".to_owned(), fixed.skipped.to_string()));
        }
        lines
    }
}

async fn business_day(pool: &PgPool, args: &ReconcileArgs) -> anyhow::Result<Option<Day>> {
    let known = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1) AS "known!""#,
        args.business.timezone.name()
    )
    .fetch_one(pool)
    .await?;
    if !known {
        return Ok(None);
    }
    let bounds = sqlx::query!(
        r#"SELECT to_char($1::date::timestamp AT TIME ZONE $2 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS "start!",
                  to_char(($1::date + 1)::timestamp AT TIME ZONE $2 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS "end!""#,
        args.date,
        args.business.timezone.name()
    )
    .fetch_one(pool)
    .await?;
    Ok(Some(Day { start: bounds.start, end: bounds.end }))
}

impl ReconcilePoints {
    /// Reads unit `unit`'s hash partitions inside the shared snapshot and aggregates them on rayon.
    async fn read_unit(
        &self,
        ctx: &JobContext<'_>,
        unit: i32,
        snapshot: &str,
    ) -> anyhow::Result<(aggregate::Totals, i64)> {
        let (day, rows) = (&self.day, &ctx.progress.rows);
        let mut read = ctx.pool.begin().await?;
        sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *read).await?;
        // Not a macro: SET TRANSACTION SNAPSHOT takes no parameter; the id comes from pg_export_snapshot().
        sqlx::query(&format!("SET TRANSACTION SNAPSHOT '{snapshot}'")).execute(&mut *read).await?;
        let (mut totals, mut rows_read) = (aggregate::Totals::new(), 0u64);
        for partition in (unit..LEDGER_PARTITIONS).step_by(self.args.partitions as usize) {
            // COPY takes no parameters: the partition number and the day's bounds (made by PostgreSQL's
            // to_char, so a fixed format) are written into the statement.
            let ledger = format!(
                "COPY (SELECT user_id, CASE kind WHEN 'EARN' THEN 'e' WHEN 'USE' THEN 'u' WHEN 'EXPIRE' THEN 'x' ELSE 'c' END, amount, \
                              (created_at < '{end}')::int, (created_at >= '{start}')::int FROM points_p{partition}) TO STDOUT",
                end = day.end,
                start = day.start
            );
            let read_ledger;
            (totals, read_ledger) =
                stream::aggregate(&mut read, &ledger, aggregate::ledger_block, totals, &self.rayon, rows).await?;
            let balances = format!("COPY (SELECT user_id, balance FROM point_balances_p{partition}) TO STDOUT");
            let read_balances;
            (totals, read_balances) =
                stream::aggregate(&mut read, &balances, aggregate::balance_block, totals, &self.rayon, rows).await?;
            // Lots are hash-partitioned on the same key the same way: partition N holds the same users.
            let lots = format!(
                "COPY (SELECT user_id, sum(remaining) FROM point_lots_p{partition} GROUP BY user_id) TO STDOUT"
            );
            let read_lots;
            (totals, read_lots) =
                stream::aggregate(&mut read, &lots, aggregate::lots_block, totals, &self.rayon, rows).await?;
            rows_read += read_ledger + read_balances + read_lots;
        }
        read.commit().await?;
        Ok((totals, rows_read as i64))
    }
}

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

use crate::{
    job::progress::Progress,
    job::repository::{self as jobs, Counts, Start},
    job::stop::StopSignal,
    Exit,
};
use anyhow::{bail, Context};
use chrono::NaiveDate;
use futures::{stream::FuturesUnordered, StreamExt};
use infra::{
    config::{BusinessTimeArgs, RedisArgs},
    points::cache::BalanceCache,
};
use sqlx::{Connection, PgPool};
use std::sync::{atomic::Ordering, Arc};

/// The hash partitions of `points` and `point_balances` (see the migrations).
pub const LEDGER_PARTITIONS: i32 = 16;
const JOB: &str = "reconcile-points";

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

impl ReconcileArgs {
    /// The options `restart` runs this job with again (never the Redis URL: it comes from the environment).
    fn command_line(&self) -> Vec<String> {
        let mut line = vec![JOB.to_owned(), "--date".into(), self.date.to_string()];
        line.extend(["--timezone".into(), self.business.timezone.name().to_owned()]);
        line.extend(["--partitions".into(), self.partitions.to_string(), "--threads".into(), self.threads.to_string()]);
        line.extend(["--chunk".into(), self.chunk.to_string()]);
        if self.fix {
            line.push("--fix".into());
        }
        line
    }
}

pub async fn run(pool: &PgPool, args: ReconcileArgs) -> anyhow::Result<Exit> {
    let Some(day) = business_day(pool, &args).await? else {
        eprintln!("settle-batch: time zone {:?} is not known to PostgreSQL", args.business.timezone.name());
        return Ok(Exit::BadArguments);
    };
    let parameters = serde_json::json!({ "timezone": args.business.timezone.name(), "partitions": args.partitions });
    let (execution, completed) = if args.dry_run {
        (None, Default::default())
    } else {
        match jobs::start(pool, JOB, &args.date.to_string(), parameters, &args.command_line(), args.force).await? {
            Start::AlreadyCompleted { id } => {
                println!("{JOB} for {} already completed (execution {id}); use --force to run it again", args.date);
                return Ok(Exit::AlreadyCompleted);
            }
            Start::Run(execution) => {
                if execution.completed.is_empty() {
                    sqlx::query!("DELETE FROM daily_point_snapshots WHERE business_date = $1", args.date)
                        .execute(pool)
                        .await?;
                }
                let completed = execution.completed.clone();
                (Some(execution), completed)
            }
        }
    };
    let id = execution.as_ref().map(|e| e.id);
    let units: Vec<i32> = (0..args.partitions).filter(|unit| !completed.contains(unit)).collect();
    let progress = Progress::start(JOB, units.len() as u64);
    // A stop takes effect between units (each is one partition's COPY streams and one write).
    let stop = id.map(|id| StopSignal::watch(pool, id));
    let outcome = reconcile_units(pool, &args, &day, id, &units, &progress, stop.as_ref()).await;
    let elapsed = progress.elapsed();
    let rows_read = progress.rows.load(Ordering::Relaxed);
    drop(progress);

    let Some(id) = id else {
        let counts = outcome?;
        print_summary(&args, "DRY RUN (nothing written)", counts, None, elapsed, rows_read, completed.len());
        return Ok(Exit::Success);
    };
    let ended = jobs::Outcome::of(&outcome, stop.as_ref().is_some_and(StopSignal::requested));
    if ended != jobs::Outcome::Completed {
        jobs::finish(pool, id, ended.clone(), 0).await?;
        return outcome.map(|_| jobs::exit_for(&ended, id));
    }
    let fixed = if args.fix {
        let cache = BalanceCache::for_batch(&args.redis).await;
        Some(fix::apply(pool, id, cache.as_ref()).await?)
    } else {
        None
    };
    let counts = jobs::finish(pool, id, jobs::Outcome::Completed, 0).await?;
    print_summary(&args, &format!("execution {id} COMPLETED"), counts, fixed, elapsed, rows_read, completed.len());
    Ok(Exit::Success)
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

/// Runs the units `threads` at a time inside one exported snapshot; the sum of what they wrote.
async fn reconcile_units(
    pool: &PgPool,
    args: &ReconcileArgs,
    day: &Day,
    execution: Option<i64>,
    units: &[i32],
    progress: &Progress,
    stop: Option<&StopSignal>,
) -> anyhow::Result<Counts> {
    // The exporting transaction stays open until every unit has imported its snapshot (here: to the end).
    let mut exporter = pool.acquire().await?;
    let mut export = exporter.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *export).await?;
    let snapshot = sqlx::query_scalar!(r#"SELECT pg_export_snapshot() AS "snapshot!""#).fetch_one(&mut *export).await?;
    let rayon =
        Arc::new(rayon::ThreadPoolBuilder::new().num_threads(args.threads.into()).build().context("starting rayon")?);

    let mut total = Counts::default();
    let mut pending = units.iter().copied();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < usize::from(args.threads) && !stop.is_some_and(StopSignal::requested) {
            let Some(unit) = pending.next() else { break };
            running.push(reconcile_unit(pool, args, day, execution, unit, &snapshot, &rayon, progress));
        }
        let Some(done) = running.next().await else { break };
        let (unit, counts) = done?;
        progress.partition_done(unit, counts.rows_read as u64);
        total.rows_read += counts.rows_read;
        total.rows_written += counts.rows_written;
        total.discrepancies += counts.discrepancies;
    }
    export.rollback().await?;
    Ok(total)
}

#[allow(clippy::too_many_arguments)]
async fn reconcile_unit(
    pool: &PgPool,
    args: &ReconcileArgs,
    day: &Day,
    execution: Option<i64>,
    unit: i32,
    snapshot: &str,
    rayon: &Arc<rayon::ThreadPool>,
    progress: &Progress,
) -> anyhow::Result<(i32, Counts)> {
    let mut reader = pool.acquire().await?;
    let mut read = reader.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *read).await?;
    // Not a macro: SET TRANSACTION SNAPSHOT takes no parameter; the id comes from pg_export_snapshot().
    sqlx::query(&format!("SET TRANSACTION SNAPSHOT '{snapshot}'")).execute(&mut *read).await?;
    let (mut totals, mut rows_read) = (aggregate::Totals::new(), 0u64);
    for partition in (unit..LEDGER_PARTITIONS).step_by(args.partitions as usize) {
        // COPY takes no parameters: the partition number and the day's bounds (made by PostgreSQL's to_char
        // above, so a fixed format) are written into the statement.
        let ledger = format!(
            "COPY (SELECT user_id, CASE kind WHEN 'EARN' THEN 'e' WHEN 'USE' THEN 'u' WHEN 'EXPIRE' THEN 'x' ELSE 'c' END, amount, \
                          (created_at < '{end}')::int, (created_at >= '{start}')::int FROM points_p{partition}) TO STDOUT",
            end = day.end,
            start = day.start
        );
        let read_ledger;
        (totals, read_ledger) =
            stream::aggregate(&mut read, &ledger, aggregate::ledger_block, totals, rayon, &progress.rows).await?;
        let balances = format!("COPY (SELECT user_id, balance FROM point_balances_p{partition}) TO STDOUT");
        let read_balances;
        (totals, read_balances) =
            stream::aggregate(&mut read, &balances, aggregate::balance_block, totals, rayon, &progress.rows).await?;
        // Lots are hash-partitioned on the same key the same way: partition N holds the same users.
        let lots =
            format!("COPY (SELECT user_id, sum(remaining) FROM point_lots_p{partition} GROUP BY user_id) TO STDOUT");
        let read_lots;
        (totals, read_lots) =
            stream::aggregate(&mut read, &lots, aggregate::lots_block, totals, rayon, &progress.rows).await?;
        rows_read += read_ledger + read_balances + read_lots;
    }
    read.commit().await?;
    let rows_read = rows_read as i64;
    if args.fail_partition == Some(unit) {
        bail!("injected failure in partition {unit}");
    }
    let Some(execution) = execution else {
        let discrepancies = totals.values().filter(|t| t.discrepancy().is_some()).count() as i64;
        let snapshots = totals.values().filter(|t| t.entries_to_close > 0).count() as i64;
        return Ok((unit, Counts { rows_read, rows_written: snapshots, discrepancies }));
    };
    let counts = write::partition(pool, execution, unit, args.date, &totals, args.chunk as usize, rows_read)
        .await
        .with_context(|| format!("writing partition {unit}"))?;
    Ok((unit, counts))
}

fn print_summary(
    args: &ReconcileArgs,
    status: &str,
    counts: Counts,
    fixed: Option<fix::Fixed>,
    elapsed: std::time::Duration,
    rows_streamed: u64,
    resumed: usize,
) {
    let seconds = elapsed.as_secs_f64();
    println!("{JOB} {} ({}): {status}", args.date, args.business.timezone);
    println!("  {:<28} {:>14}", "partitions", format!("{} ({resumed} done earlier)", args.partitions));
    println!("  {:<28} {:>14}", "threads", args.threads);
    println!("  {:<28} {:>14}", "rows read", counts.rows_read);
    println!("  {:<28} {:>14}", "snapshot rows written", counts.rows_written);
    println!("  {:<28} {:>14}", "discrepancies", counts.discrepancies);
    if let Some(fixed) = fixed {
        println!("  {:<28} {:>14}", "fixed", fixed.fixed);
        println!("  {:<28} {:>14}", "not fixed (changed, failed)", fixed.skipped);
    }
    println!("  {:<28} {:>14}", "this run took", format!("{seconds:.2} s"));
    println!("  {:<28} {:>14}", "rows/s this run", format!("{:.0}", rows_streamed as f64 / seconds.max(1e-3)));
}

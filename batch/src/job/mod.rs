//! One model for every batch job: a job is a type with a name, validated options, an identity (its name
//! and a key such as the business date) and numbered partitions, each run on its own and checkpointed.
//! [`run`] gives every job the same guarantees: one execution row per run and one checkpoint per
//! partition in the job repository; one run per identity at a time; a completed identity not rerun
//! without `--force`; a resume (or `settle-batch restart`) that redoes only the partitions that did not
//! complete, with the partition count it started with; a stop (`settle-batch stop`, SIGTERM, the
//! scheduler's timeout) that ends the run STOPPED within one chunk; progress; the exit codes. A job that
//! can compute without writing offers `--dry-run`: no execution is recorded and its partitions write
//! nothing ([`Context::dry_run`]).

pub mod partitions;
pub mod progress;
pub mod repository;
pub mod stop;

use crate::Exit;
use progress::Progress;
pub use repository::Counts;
use repository::{Outcome, Start};
use sqlx::{PgPool, Postgres, Transaction};
use std::{future::Future, time::Duration};
use stop::StopSignal;

/// A batch job (see the module documentation for what the runner does around it).
pub trait Job: Sync {
    /// The name the repository, the command line and the metrics know it by.
    const NAME: &'static str;

    /// What identifies a run besides the name (e.g. the business date).
    fn key(&self) -> String;

    /// What decides the result, recorded with the execution: a resume with other parameters is refused,
    /// so an execution's partitions never change.
    fn parameters(&self) -> serde_json::Value;

    /// The options as the command line spells them (never secrets): what `restart` runs again.
    fn command_line(&self) -> Vec<String>;

    fn run_args(&self) -> &RunArgs;

    /// Whether this run only computes and reports (the jobs that offer `--dry-run`).
    fn dry_run(&self) -> bool {
        false
    }

    /// How many partitions the work is split into; they are numbered from 0.
    fn partitions(&self) -> i32;

    /// Runs once before the partitions; `done_earlier` of them were completed by an earlier attempt of
    /// this execution (0 for a fresh one, and in a dry run).
    fn prepare(&self, _ctx: &Context<'_>, _done_earlier: usize) -> impl Future<Output = anyhow::Result<()>> + Send {
        async { Ok(()) }
    }

    /// Does one partition. Between chunks it looks at `ctx.stop` and returns [`PartitionEnd::Stopped`].
    fn partition(&self, ctx: &Context<'_>, partition: i32)
        -> impl Future<Output = anyhow::Result<PartitionEnd>> + Send;

    /// Runs once every partition completed (checks such as a day's gates); in a dry run too.
    fn conclude(&self, _ctx: &Context<'_>) -> impl Future<Output = anyhow::Result<Conclusion>> + Send {
        async { Ok(Conclusion::default()) }
    }

    /// The lines of the summary printed after a completed run, as (label, value).
    fn summary(&self, totals: Counts, elapsed: Duration) -> Vec<(String, String)>;
}

/// The options every job takes.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Partitions in flight at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub workers: u16,
    /// Run again although this identity has completed.
    #[arg(long)]
    pub force: bool,
}

impl RunArgs {
    /// Spelled for `restart` (which resumes, so never `--force`).
    pub fn command_line(&self) -> [String; 2] {
        ["--workers".into(), self.workers.to_string()]
    }
}

/// How a partition ended.
pub enum PartitionEnd {
    /// Done; the runner records its checkpoint.
    Done(Counts),
    /// Done, and its checkpoint committed with its results ([`Context::checkpoint_in`]).
    Committed(Counts),
    /// A stop came between two chunks: the partition is left for a restart.
    Stopped,
}

/// What [`Job::conclude`] found.
#[derive(Debug, Default)]
pub struct Conclusion {
    /// Added to the execution's discrepancies.
    pub discrepancies: i64,
    /// Why the run fails although every partition completed (the execution ends FAILED, restartable).
    pub failed: Option<String>,
    /// What an operator must look into although the run did its work (the execution ends COMPLETED; the
    /// run exits 1 saying so, e.g. payments that do not match the provider's).
    pub attention: Option<String>,
}

/// What a job's partitions share during one run.
pub struct Context<'a> {
    pub pool: &'a PgPool,
    /// The execution in the repository (0 in a dry run, which has none).
    pub execution: i64,
    /// Compute and report only: write nothing.
    pub dry_run: bool,
    pub progress: &'a Progress,
    pub stop: &'a StopSignal,
}

impl Context<'_> {
    /// Records partition `partition` as completed inside the transaction that wrote its results.
    pub async fn checkpoint_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        partition: i32,
        counts: Counts,
    ) -> sqlx::Result<()> {
        if self.dry_run {
            return Ok(());
        }
        repository::complete_partition(tx, self.execution, partition, counts).await
    }
}

/// Runs `job`: starts (or resumes) its execution, its pending partitions `--workers` at a time, then its
/// conclusion, and records how it ended.
pub async fn run<J: Job>(pool: &PgPool, job: &J) -> anyhow::Result<Exit> {
    if job.dry_run() {
        return dry_run(pool, job).await;
    }
    let key = job.key();
    let args = job.run_args();
    let started = repository::start(pool, J::NAME, &key, job.parameters(), &job.command_line(), args.force).await?;
    let execution = match started {
        Start::AlreadyCompleted { id } => {
            println!("{} for {key} already completed (execution {id}); use --force to run it again", J::NAME);
            return Ok(Exit::AlreadyCompleted);
        }
        Start::Run(execution) => execution,
    };
    let pending = partitions::pending(&execution, job.partitions());
    let progress = Progress::start(J::NAME, pending.len() as u64);
    let stop = StopSignal::watch(pool, execution.id);
    let ctx = Context { pool, execution: execution.id, dry_run: false, progress: &progress, stop: &stop };
    let worked = match job.prepare(&ctx, execution.completed.len()).await {
        Ok(()) => partitions::each(&ctx, pending, args.workers, |partition| job.partition(&ctx, partition)).await,
        Err(error) => Err(error),
    };
    let concluded = match worked {
        Ok(()) if stop.requested() => Ok(None),
        Ok(()) => job.conclude(&ctx).await.map(Some),
        Err(error) => Err(error),
    };
    let elapsed = progress.elapsed();
    drop(progress);
    let outcome = match &concluded {
        Err(error) => Outcome::Failed(format!("{error:#}")),
        Ok(None) => Outcome::Stopped,
        Ok(Some(Conclusion { failed: Some(why), .. })) => Outcome::Failed(why.clone()),
        Ok(Some(_)) => Outcome::Completed,
    };
    let found = concluded.as_ref().ok().and_then(Option::as_ref).map_or(0, |c| c.discrepancies);
    let totals = repository::finish(pool, execution.id, outcome.clone(), found).await?;
    match concluded? {
        Some(conclusion) => {
            Ok(report(job, &key, conclusion, totals, elapsed).unwrap_or(repository::exit_for(&outcome, execution.id)))
        }
        None => Ok(repository::exit_for(&outcome, execution.id)),
    }
}

/// Every partition computed and reported, nothing recorded or written.
async fn dry_run<J: Job>(pool: &PgPool, job: &J) -> anyhow::Result<Exit> {
    let progress = Progress::start(J::NAME, job.partitions() as u64);
    let stop = StopSignal::watch(pool, 0);
    let ctx = Context { pool, execution: 0, dry_run: true, progress: &progress, stop: &stop };
    job.prepare(&ctx, 0).await?;
    let mut totals = Counts::default();
    for partition in 0..job.partitions() {
        let counts = match job.partition(&ctx, partition).await? {
            PartitionEnd::Stopped => return Ok(Exit::Failure),
            PartitionEnd::Done(counts) | PartitionEnd::Committed(counts) => counts,
        };
        totals.rows_read += counts.rows_read;
        totals.rows_written += counts.rows_written;
        totals.discrepancies += counts.discrepancies;
    }
    let conclusion = job.conclude(&ctx).await?;
    let elapsed = progress.elapsed();
    drop(progress);
    let key = format!("{} DRY RUN (nothing written)", job.key());
    Ok(report(job, &key, conclusion, totals, elapsed).unwrap_or(Exit::Success))
}

/// Prints a run's summary; the exit it calls for, if its conclusion decides one.
fn report<J: Job>(job: &J, key: &str, conclusion: Conclusion, totals: Counts, elapsed: Duration) -> Option<Exit> {
    let status = if conclusion.failed.is_some() { "FAILED" } else { "COMPLETED" };
    println!("{} {key}: {status}", J::NAME);
    for (label, value) in job.summary(totals, elapsed) {
        println!("  {label:<28} {value:>24}");
    }
    let rate = totals.rows_read as f64 / elapsed.as_secs_f64().max(1e-3);
    println!("  {:<28} {:>24}", "this run took", format!("{:.2} s ({rate:.0} rows/s)", elapsed.as_secs_f64()));
    if let Some(why) = conclusion.failed {
        println!("  {:<28} {why}", "failed");
        return Some(Exit::Failure);
    }
    conclusion.attention.map(|what| {
        println!("  {:<28} {what}", "needs attention");
        Exit::Failure
    })
}

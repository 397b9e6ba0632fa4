//! The job repository: every execution of a job, its parameters, status, counts and per-partition
//! checkpoints. A job is identified by name and key (e.g. the business date): a completed key is not
//! redone without `--force`, and an unfinished one is resumed, skipping the partitions it completed.

use anyhow::{bail, Context};
use infra::session_lock::{LockKey, SessionLock};
use sqlx::{PgPool, Postgres};
use std::collections::HashSet;

/// An execution's (and a partition checkpoint's) state; the CHECKs list the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Started,
    Completed,
    Failed,
    /// Asked to stop (`settle-batch stop`, SIGTERM): ended within a chunk, restartable.
    Stopped,
}

/// How a run ended, for [`finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed(String),
    Stopped,
}

impl Outcome {
    /// The outcome of a run's work: its error, else whether a stop cut it short.
    pub fn of<T>(result: &anyhow::Result<T>, stopped: bool) -> Self {
        match result {
            Err(error) => Outcome::Failed(format!("{error:#}")),
            Ok(_) if stopped => Outcome::Stopped,
            Ok(_) => Outcome::Completed,
        }
    }
}

/// First key of the advisory lock that lets one run per job key at a time (the second is its hash).
const RUN_LOCK_SPACE: i32 = 0x5e77_00b1;

pub struct Execution {
    pub id: i64,
    /// Partitions finished by an earlier, interrupted attempt of this execution.
    pub completed: HashSet<i32>,
    /// Holds the run lock for as long as the execution runs (dropped on any path, it closes its session).
    _lock: SessionLock,
}

pub enum Start {
    Run(Execution),
    AlreadyCompleted { id: i64 },
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub rows_read: i64,
    pub rows_written: i64,
    pub discrepancies: i64,
}

/// Starts a new execution or resumes the latest unfinished one of `job`/`key`. `arguments` are the job's
/// own options as its command line spells them (never secrets): what `restart` runs it with again.
pub async fn start(
    pool: &PgPool,
    job: &str,
    key: &str,
    parameters: serde_json::Value,
    arguments: &[String],
    force: bool,
) -> anyhow::Result<Start> {
    let run = LockKey::Named { space: RUN_LOCK_SPACE, name: format!("{job}:{key}") };
    let Some(mut lock) = SessionLock::try_acquire(pool, run).await? else {
        bail!("{job} for {key} is already running elsewhere");
    };
    let latest = sqlx::query!(
        r#"SELECT id, status AS "status: JobStatus", parameters FROM batch_job_executions
           WHERE job_name = $1 AND job_key = $2 ORDER BY started_at DESC, id DESC LIMIT 1"#,
        job,
        key
    )
    .fetch_optional(lock.connection())
    .await?
    .map(|row| (row.id, row.status, row.parameters));
    match latest {
        Some((id, JobStatus::Completed, _)) if !force => Ok(Start::AlreadyCompleted { id }),
        Some((id, _, previous)) if !force => {
            if previous != parameters {
                bail!(
                    "execution {id} of {job} for {key} is unfinished with other parameters ({previous}); \
                     rerun with those, or with --force to start over"
                );
            }
            sqlx::query!(
                "UPDATE batch_job_executions SET status = $4, ended_at = NULL, host = $2, trace_id = $3,
                        stop_requested_at = NULL, arguments = $5
                 WHERE id = $1",
                id,
                host(),
                infra::telemetry::run_trace_id(),
                JobStatus::Started as JobStatus,
                arguments,
            )
            .execute(lock.connection())
            .await?;
            let completed = sqlx::query_scalar!(
                "SELECT partition_no FROM batch_partition_checkpoints WHERE execution_id = $1 AND status = $2",
                id,
                JobStatus::Completed as JobStatus
            )
            .fetch_all(lock.connection())
            .await?;
            tracing::info!(execution = id, skipped = completed.len(), "resuming an unfinished execution");
            Ok(Start::Run(Execution { id, completed: completed.into_iter().collect(), _lock: lock }))
        }
        _ => {
            let id = sqlx::query_scalar!(
                "INSERT INTO batch_job_executions (job_name, job_key, parameters, status, host, trace_id, arguments)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                job,
                key,
                parameters,
                JobStatus::Started as JobStatus,
                host(),
                infra::telemetry::run_trace_id(),
                arguments,
            )
            .fetch_one(lock.connection())
            .await?;
            Ok(Start::Run(Execution { id, completed: HashSet::new(), _lock: lock }))
        }
    }
}

/// Records a finished partition; called inside the transaction that wrote the partition's results.
pub async fn complete_partition(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    execution: i64,
    partition: i32,
    counts: Counts,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO batch_partition_checkpoints (execution_id, partition_no, status, rows_read, rows_written, discrepancies)
         VALUES ($1, $2, $6, $3, $4, $5)
         ON CONFLICT (execution_id, partition_no) DO UPDATE SET status = excluded.status, rows_read = excluded.rows_read,
           rows_written = excluded.rows_written, discrepancies = excluded.discrepancies, updated_at = now()",
        execution,
        partition,
        counts.rows_read,
        counts.rows_written,
        counts.discrepancies,
        JobStatus::Completed as JobStatus,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Closes the execution with the totals of its checkpoints, plus `found` discrepancies of its own.
pub async fn finish(pool: &PgPool, execution: i64, outcome: Outcome, found: i64) -> anyhow::Result<Counts> {
    let (status, message) = match &outcome {
        Outcome::Completed => (JobStatus::Completed, None),
        Outcome::Failed(message) => (JobStatus::Failed, Some(message.as_str())),
        Outcome::Stopped => (JobStatus::Stopped, Some("stopped on request; `settle-batch restart` resumes it")),
    };
    let totals = sqlx::query!(
        r#"WITH totals AS (SELECT coalesce(sum(rows_read), 0)::bigint AS r, coalesce(sum(rows_written), 0)::bigint AS w,
                                  coalesce(sum(discrepancies), 0)::bigint AS d
                           FROM batch_partition_checkpoints WHERE execution_id = $1 AND status = $4)
           UPDATE batch_job_executions SET status = $2, ended_at = now(), exit_message = $3,
                  rows_read = totals.r, rows_written = totals.w, discrepancies = totals.d + $5
           FROM totals WHERE id = $1
           RETURNING totals.r AS "read!", totals.w AS "written!", (totals.d + $5) AS "discrepancies!""#,
        execution,
        status as JobStatus,
        message,
        JobStatus::Completed as JobStatus,
        found,
    )
    .fetch_one(pool)
    .await
    .context("recording the end of the execution")?;
    Ok(Counts { rows_read: totals.read, rows_written: totals.written, discrepancies: totals.discrepancies })
}

/// The exit of a run that ended with `outcome` (its error, if failed, is the caller's to return): a
/// stopped run exits 1 like a failure, saying how to resume it.
pub fn exit_for(outcome: &Outcome, execution: i64) -> crate::Exit {
    match outcome {
        Outcome::Completed => crate::Exit::Success,
        Outcome::Failed(_) => crate::Exit::Failure,
        Outcome::Stopped => {
            println!("execution {execution} STOPPED: `settle-batch restart {execution}` resumes it");
            crate::Exit::Failure
        }
    }
}

/// Whether someone asked `execution` to stop (`settle-batch stop`).
pub async fn stop_requested(pool: &PgPool, execution: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT stop_requested_at IS NOT NULL AS "requested!" FROM batch_job_executions WHERE id = $1"#,
        execution
    )
    .fetch_optional(pool)
    .await
    .map(|requested| requested.unwrap_or(false))
}

/// What `restart` may run again.
pub enum Restartable {
    /// The job's name and the arguments it recorded.
    Yes {
        job: String,
        arguments: Vec<String>,
    },
    /// Only FAILED and STOPPED executions are restarted (this one is, e.g., running or completed).
    No {
        status: String,
    },
    Unknown,
}

pub async fn restartable(pool: &PgPool, execution: i64) -> sqlx::Result<Restartable> {
    let row = sqlx::query!("SELECT job_name, status, arguments FROM batch_job_executions WHERE id = $1", execution)
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        None => Restartable::Unknown,
        Some(row) if row.status == "FAILED" || row.status == "STOPPED" => {
            Restartable::Yes { job: row.job_name, arguments: row.arguments }
        }
        Some(row) => Restartable::No { status: row.status },
    })
}

fn host() -> String {
    std::fs::read_to_string("/etc/hostname").map(|name| name.trim().to_owned()).unwrap_or_else(|_| "unknown".into())
}

/// The latest executions, newest first, as printable lines.
pub async fn recent(pool: &PgPool, limit: i64) -> anyhow::Result<Vec<String>> {
    let runs = infra::jobs::recent(pool, &infra::jobs::ExecutionFilter::default(), limit).await?;
    let mut lines = vec![format!(
        "{:>6}  {:<18} {:<12} {:<10} {:<19} {:>13} {:>12} {:>12} {:>13}",
        "id", "job", "key", "status", "started", "took", "rows read", "written", "discrepancies"
    )];
    for run in runs {
        let took = run.ended_at.map(|ended| {
            let ms = (ended - run.started_at).num_milliseconds().max(0);
            format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1_000 % 60, ms % 1_000)
        });
        lines.push(format!(
            "{:>6}  {:<18} {:<12} {:<10} {:<19} {:>13} {:>12} {:>12} {:>13}",
            run.id,
            run.job_name,
            run.job_key,
            run.status,
            run.started_at.format("%Y-%m-%d %H:%M:%S"),
            took.unwrap_or_else(|| "-".into()),
            run.rows_read,
            run.rows_written,
            run.discrepancies
        ));
    }
    Ok(lines)
}

/// One execution as `runs show` prints it: what ran, how it ended, and each partition's counts; None if
/// there is no such execution.
pub async fn show(pool: &PgPool, execution: i64) -> anyhow::Result<Option<Vec<String>>> {
    let Some(run) = sqlx::query!(
        r#"SELECT job_name, job_key, status, parameters, arguments, exit_message, host, trace_id,
                  to_char(started_at, 'YYYY-MM-DD HH24:MI:SS') AS "started!",
                  extract(epoch FROM coalesce(ended_at, now()) - started_at)::float8 AS "seconds!",
                  rows_read, rows_written, discrepancies, stop_requested_at IS NOT NULL AS "stop_requested!"
           FROM batch_job_executions WHERE id = $1"#,
        execution
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let rate = |rows: i64, seconds: f64| format!("{:.0}", rows as f64 / seconds.max(1e-3));
    let mut lines = vec![
        format!("execution {execution}: {} {} {}", run.job_name, run.job_key, run.status),
        format!("  started      {} on {}", run.started, run.host.as_deref().unwrap_or("?")),
        format!("  took         {:.2} s{}", run.seconds, if run.status == "STARTED" { " so far" } else { "" }),
        format!(
            "  rows         {} read, {} written ({} read/s)",
            run.rows_read,
            run.rows_written,
            rate(run.rows_read, run.seconds)
        ),
        format!("  discrepancies {}", run.discrepancies),
        format!("  parameters   {}", run.parameters),
        format!("  arguments    {}", run.arguments.join(" ")),
        format!("  trace id     {}", run.trace_id.as_deref().unwrap_or("-")),
    ];
    if run.stop_requested {
        lines.push("  stop         requested".to_owned());
    }
    if let Some(message) = run.exit_message {
        lines.push(format!("  message      {message}"));
    }
    let partitions = sqlx::query!(
        "SELECT partition_no, status, rows_read, rows_written, discrepancies,
                to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS') AS done
         FROM batch_partition_checkpoints WHERE execution_id = $1 ORDER BY partition_no",
        execution
    )
    .fetch_all(pool)
    .await?;
    lines.push(format!(
        "  {:>9} {:<10} {:>12} {:>12} {:>13}  {}",
        "partition", "status", "rows read", "written", "discrepancies", "at"
    ));
    for p in partitions {
        lines.push(format!(
            "  {:>9} {:<10} {:>12} {:>12} {:>13}  {}",
            p.partition_no,
            p.status,
            p.rows_read,
            p.rows_written,
            p.discrepancies,
            p.done.unwrap_or_default()
        ));
    }
    Ok(Some(lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::TestEnv;

    #[tokio::test]
    async fn a_run_dropped_on_an_error_path_frees_its_lock_for_other_processes() {
        let env = TestEnv::new().await;
        let Start::Run(execution) =
            start(&env.pool, "lock-test", "2026-11-30", serde_json::json!({}), &[], false).await.expect("starting")
        else {
            panic!("a fresh key cannot be completed already");
        };
        drop(execution); // as when `?` leaves the job early
        let key = LockKey::Named { space: RUN_LOCK_SPACE, name: "lock-test:2026-11-30".to_owned() };
        assert!(testkit::locks::free_elsewhere(&env, key).await, "the run lock went back to the pool still held");
    }
}

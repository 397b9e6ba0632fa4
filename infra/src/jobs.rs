//! The batch job repository as operators read it: `settle-batch runs` and the console's Jobs page show the
//! same executions from this one query.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// An execution as listed (the status as stored: this is only shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionSummary {
    pub id: i64,
    pub job_name: String,
    pub job_key: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub rows_read: i64,
    pub rows_written: i64,
    pub discrepancies: i64,
    /// Partitions that completed, and how many the run was split into when its parameters say so.
    pub partitions_done: i64,
    pub partitions: Option<i64>,
    pub exit_message: Option<String>,
    /// Someone asked it to stop; it ends within one chunk.
    pub stop_requested: bool,
    /// Someone asked the scheduler to restart it, and the restart has not ended yet.
    pub restart_requested: bool,
}

impl ExecutionSummary {
    /// Milliseconds it ran (so far, while it runs).
    pub fn took_ms(&self, now: DateTime<Utc>) -> i64 {
        (self.ended_at.unwrap_or(now) - self.started_at).num_milliseconds().max(0)
    }

    /// Rows read per second of its run time.
    pub fn rows_per_second(&self, now: DateTime<Utc>) -> i64 {
        self.rows_read * 1_000 / self.took_ms(now).max(1)
    }
}

/// Which executions to list: any field left out matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionFilter {
    pub id: Option<i64>,
    pub job: Option<String>,
    pub status: Option<String>,
}

/// The latest executions matching `filter`, newest first.
pub async fn recent(pool: &PgPool, filter: &ExecutionFilter, limit: i64) -> sqlx::Result<Vec<ExecutionSummary>> {
    sqlx::query_as!(
        ExecutionSummary,
        r#"SELECT e.id, e.job_name, e.job_key, e.status, e.started_at, e.ended_at, e.rows_read, e.rows_written,
                  e.discrepancies, e.exit_message, e.stop_requested_at IS NOT NULL AS "stop_requested!",
                  EXISTS (SELECT 1 FROM scheduler_run_requests r WHERE r.execution_id = e.id AND r.detail IS NULL)
                    AS "restart_requested!",
                  (SELECT count(*) FROM batch_partition_checkpoints c
                   WHERE c.execution_id = e.id AND c.status = 'COMPLETED') AS "partitions_done!",
                  CASE WHEN jsonb_typeof(e.parameters -> 'partitions') = 'number'
                       THEN (e.parameters ->> 'partitions')::bigint END AS partitions
           FROM batch_job_executions e
           WHERE ($1::text IS NULL OR e.job_name = $1) AND ($2::text IS NULL OR e.status = $2)
             AND ($4::bigint IS NULL OR e.id = $4)
           ORDER BY e.started_at DESC, e.id DESC LIMIT $3"#,
        filter.job,
        filter.status,
        limit,
        filter.id
    )
    .fetch_all(pool)
    .await
}

/// One execution, if there is such.
pub async fn execution(pool: &PgPool, id: i64) -> sqlx::Result<Option<ExecutionSummary>> {
    let filter = ExecutionFilter { id: Some(id), ..ExecutionFilter::default() };
    Ok(recent(pool, &filter, 1).await?.into_iter().next())
}

/// Every job name the repository has an execution of, for filters.
pub async fn job_names(pool: &PgPool) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!("SELECT DISTINCT job_name FROM batch_job_executions ORDER BY job_name").fetch_all(pool).await
}

/// How many executions started since `since` are in each status, by status.
pub async fn status_counts(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<Vec<(String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT status, count(*) AS "count!" FROM batch_job_executions WHERE started_at >= $1
           GROUP BY status ORDER BY status"#,
        since
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|row| (row.status, row.count)).collect())
}

/// Marks a running execution to stop (it ends within one chunk as STOPPED); the status it has otherwise
/// (None: no such execution). `settle-batch stop` and the console's Stop both ask through this.
pub async fn request_stop(pool: &PgPool, execution: i64) -> sqlx::Result<Result<(), Option<String>>> {
    let asked = sqlx::query!(
        "UPDATE batch_job_executions SET stop_requested_at = coalesce(stop_requested_at, now())
         WHERE id = $1 AND status = 'STARTED'",
        execution
    )
    .execute(pool)
    .await?;
    if asked.rows_affected() == 1 {
        return Ok(Ok(()));
    }
    let status = sqlx::query_scalar!("SELECT status FROM batch_job_executions WHERE id = $1", execution)
        .fetch_optional(pool)
        .await?;
    Ok(Err(status))
}

/// A scheduler entry as the leading scheduler published it, with its latest firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledEntry {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub runs: String,
    pub next_at: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_started_at: Option<DateTime<Utc>>,
    /// Run-now requests the leader has not finished yet.
    pub requests_open: i64,
}

/// The published schedule, by entry name.
pub async fn schedule(pool: &PgPool) -> sqlx::Result<Vec<ScheduledEntry>> {
    sqlx::query_as!(
        ScheduledEntry,
        r#"SELECT e.name, e.cron, e.timezone, e.runs, e.next_at, f.status AS "last_status?", f.started_at AS "last_started_at?",
                  (SELECT count(*) FROM scheduler_run_requests r
                   WHERE r.entry_name = e.name AND r.firing_id IS NULL AND r.detail IS NULL) AS "requests_open!"
           FROM scheduler_entries e
           LEFT JOIN LATERAL (SELECT status, started_at FROM scheduler_firings
                              WHERE entry_name = e.name ORDER BY started_at DESC LIMIT 1) f ON true
           ORDER BY e.name"#
    )
    .fetch_all(pool)
    .await
}

/// Asks the leading scheduler to fire `entry` now (it takes the request within its poll): the request's
/// id, or None when the published schedule has no such entry.
pub async fn request_run(pool: &PgPool, entry: &str, requested_by: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "INSERT INTO scheduler_run_requests (entry_name, requested_by)
         SELECT name, $2 FROM scheduler_entries WHERE name = $1 RETURNING id",
        entry,
        requested_by
    )
    .fetch_optional(pool)
    .await
}

/// Asks the leading scheduler to restart `execution` (`settle-batch restart`); only a FAILED or STOPPED
/// one, once at a time. Otherwise its status (None: no such execution), or "RESTART_REQUESTED".
pub async fn request_restart(
    pool: &PgPool,
    execution: i64,
    requested_by: &str,
) -> sqlx::Result<Result<(), Option<String>>> {
    let asked = sqlx::query!(
        "INSERT INTO scheduler_run_requests (execution_id, requested_by)
         SELECT id, $2 FROM batch_job_executions e
         WHERE id = $1 AND status IN ('FAILED', 'STOPPED')
           AND NOT EXISTS (SELECT 1 FROM scheduler_run_requests r WHERE r.execution_id = e.id AND r.detail IS NULL)",
        execution,
        requested_by
    )
    .execute(pool)
    .await?;
    if asked.rows_affected() == 1 {
        return Ok(Ok(()));
    }
    let status = sqlx::query_scalar!(
        r#"SELECT CASE WHEN EXISTS (SELECT 1 FROM scheduler_run_requests WHERE execution_id = $1 AND detail IS NULL)
                       THEN 'RESTART_REQUESTED' ELSE status END AS "status!"
           FROM batch_job_executions WHERE id = $1"#,
        execution
    )
    .fetch_optional(pool)
    .await?;
    Ok(Err(status))
}

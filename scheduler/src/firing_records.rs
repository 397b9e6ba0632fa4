//! The firing records (`scheduler_firings`): one row per entry and slot, whoever fired it. The unique
//! key on (entry, slot) is the last word on "each slot fires once": a second claimant gets nothing back.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::time::Duration;

/// A firing's state; the CHECK on `scheduler_firings.status` lists the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    Skipped,
    TimedOut,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::Skipped => "SKIPPED",
            Status::TimedOut => "TIMED_OUT",
        }
    }
}

pub struct Slot<'a> {
    pub entry: &'a str,
    pub time: DateTime<Utc>,
    pub leader: &'a str,
    pub trace_id: &'a str,
}

/// Records the start of a firing; None if this slot already has a record (someone else fired it).
pub async fn claim(pool: &PgPool, slot: &Slot<'_>) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "INSERT INTO scheduler_firings (entry_name, slot_time, leader, status, trace_id)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (entry_name, slot_time) DO NOTHING RETURNING id",
        slot.entry,
        slot.time,
        slot.leader,
        Status::Running as Status,
        slot.trace_id,
    )
    .fetch_optional(pool)
    .await
}

/// Records a slot that was not run, and why; None if the slot already has a record.
pub async fn skip(pool: &PgPool, slot: &Slot<'_>, reason: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "INSERT INTO scheduler_firings (entry_name, slot_time, leader, status, ended_at, detail, trace_id)
         VALUES ($1, $2, $3, $4, now(), $5, $6) ON CONFLICT (entry_name, slot_time) DO NOTHING RETURNING id",
        slot.entry,
        slot.time,
        slot.leader,
        Status::Skipped as Status,
        reason,
        slot.trace_id,
    )
    .fetch_optional(pool)
    .await
}

pub struct Outcome {
    pub status: Status,
    pub exit_status: Option<i32>,
    pub batch_execution: Option<i64>,
    pub detail: Option<String>,
}

pub async fn finish(pool: &PgPool, firing: i64, outcome: &Outcome) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE scheduler_firings SET status = $2, ended_at = now(), exit_status = $3, batch_execution_id = $4,
                detail = $5 WHERE id = $1",
        firing,
        outcome.status as Status,
        outcome.exit_status,
        outcome.batch_execution,
        outcome.detail,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Sets a running firing's detail (which process runs it, for operators reading `history`).
pub async fn note(pool: &PgPool, firing: i64, detail: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE scheduler_firings SET detail = $2 WHERE id = $1 AND status = $3",
        firing,
        detail,
        Status::Running as Status
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Closes RUNNING firings of `entry` whose process is gone: all of them when the caller holds the
/// entry lock (`older_than` None), else those started longer ago than any live run can last.
pub async fn close_abandoned(pool: &PgPool, entry: &str, older_than: Option<Duration>) -> sqlx::Result<u64> {
    let seconds = older_than.map(|age| i64::try_from(age.as_secs()).unwrap_or(i64::MAX));
    let closed = sqlx::query!(
        "UPDATE scheduler_firings SET status = $3, ended_at = now(),
                detail = 'abandoned: the process running it stopped before it ended'
         WHERE entry_name = $1 AND status = $4
           AND ($2::bigint IS NULL OR started_at < now() - $2::bigint * interval '1 second')",
        entry,
        seconds,
        Status::Failed as Status,
        Status::Running as Status,
    )
    .execute(pool)
    .await?;
    Ok(closed.rows_affected())
}

/// The batch execution a run started (it records the trace id the scheduler handed it).
pub async fn execution_for_trace(pool: &PgPool, trace_id: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT max(id) FROM batch_job_executions WHERE trace_id = $1", trace_id).fetch_one(pool).await
}

/// One row of `scheduler_firings`, as `history` reads it (and the tests do, by row).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FiringRow {
    pub id: i64,
    pub entry_name: String,
    pub slot_time: DateTime<Utc>,
    pub leader: String,
    pub status: Status,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub exit_status: Option<i32>,
    pub batch_execution_id: Option<i64>,
    pub detail: Option<String>,
    pub trace_id: Option<String>,
}

pub async fn history(pool: &PgPool, entry: Option<&str>, limit: i64) -> sqlx::Result<Vec<FiringRow>> {
    sqlx::query_as!(
        FiringRow,
        r#"SELECT id, entry_name, slot_time, leader, status AS "status: Status", started_at, ended_at, exit_status,
                  batch_execution_id, detail, trace_id
           FROM scheduler_firings WHERE ($1::text IS NULL OR entry_name = $1)
           ORDER BY started_at DESC, id DESC LIMIT $2"#,
        entry,
        limit
    )
    .fetch_all(pool)
    .await
}

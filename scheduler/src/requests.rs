//! What the leader does besides its slots: it publishes the schedule (each entry's next firing) for the
//! operations console, which cannot read the schedule file, and fires the entries someone asked to run
//! now from there, or restarts the executions asked to restart. A request is taken by one leader (`SKIP
//! LOCKED`); an entry fires at the instant it is taken, a slot no scheduled firing has.

use crate::schedule::Schedule;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Writes every entry with its next firing after `now`, and drops entries the schedule no longer has.
pub async fn publish(pool: &PgPool, schedule: &Schedule, identity: &str, now: DateTime<Utc>) -> sqlx::Result<()> {
    let entries = &schedule.entries;
    let names: Vec<&str> = entries.iter().map(|entry| entry.name.as_str()).collect();
    let crons: Vec<&str> = entries.iter().map(|entry| entry.cron.as_str()).collect();
    let zones: Vec<String> = entries.iter().map(|entry| entry.when.zone.to_string()).collect();
    let runs: Vec<String> = entries.iter().map(|entry| entry.describe()).collect();
    let next: Vec<Option<DateTime<Utc>>> = entries.iter().map(|entry| entry.when.after(now).next()).collect();
    let mut tx = pool.begin().await?;
    sqlx::query!("DELETE FROM scheduler_entries WHERE name <> ALL($1)", &names as &[&str]).execute(&mut *tx).await?;
    sqlx::query!(
        r#"INSERT INTO scheduler_entries (name, cron, timezone, runs, next_at, published_by, published_at)
           SELECT name, cron, zone, runs, next_at, $6, now()
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS e(name, cron, zone, runs, next_at)
           ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, runs = excluded.runs,
             next_at = excluded.next_at, published_by = excluded.published_by, published_at = excluded.published_at"#,
        &names as &[&str],
        &crons as &[&str],
        &zones,
        &runs,
        &next as &[Option<DateTime<Utc>>],
        identity
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// A request taken by this leader: an entry to fire now, or an execution to restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: i64,
    pub entry_name: Option<String>,
    pub execution_id: Option<i64>,
}

/// Takes the requests nobody took yet, oldest first.
pub async fn take(pool: &PgPool, identity: &str) -> sqlx::Result<Vec<Request>> {
    sqlx::query_as!(
        Request,
        "UPDATE scheduler_run_requests SET taken_by = $1, taken_at = now()
         WHERE id IN (SELECT id FROM scheduler_run_requests WHERE taken_at IS NULL ORDER BY id FOR UPDATE SKIP LOCKED)
         RETURNING id, entry_name, execution_id",
        identity
    )
    .fetch_all(pool)
    .await
}

/// Records what a taken request came to: its firing, or why it made none.
pub async fn settle(pool: &PgPool, request: i64, firing: Option<i64>, detail: Option<&str>) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE scheduler_run_requests SET firing_id = $2, detail = $3 WHERE id = $1",
        request,
        firing,
        detail
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Answers the requests another scheduler took and never answered: it stopped (its children stop with
/// it), so the request will not end on its own; asking again is possible once it is answered. Called when
/// leadership starts, as abandoned firings are closed then.
pub async fn close_abandoned(pool: &PgPool, identity: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE scheduler_run_requests SET detail = 'abandoned: the scheduler that took it stopped before it ended'
         WHERE taken_at IS NOT NULL AND taken_by <> $1 AND firing_id IS NULL AND detail IS NULL",
        identity
    )
    .execute(pool)
    .await?
    .rows_affected())
}

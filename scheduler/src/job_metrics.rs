//! Batch job metrics for Prometheus, read from the job repository. settle-batch runs are short-lived
//! processes a scraper would mostly miss, so the long-lived scheduler serves what their executions
//! recorded: per job, the last success, and the duration, rows and discrepancies of the latest run that
//! ended, and how many are unfinished (running, or killed and waiting for a rerun).

use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the gauges are read again (a scrape sees values at most this old).
pub const REFRESH: Duration = Duration::from_secs(15);

struct JobRow {
    job_name: String,
    last_success: Option<f64>,
    last_seconds: Option<f64>,
    last_rows_read: Option<i64>,
    last_rows_written: Option<i64>,
    last_discrepancies: Option<i64>,
    last_failed: Option<bool>,
    unfinished: i64,
}

/// Refreshes the gauges every [`REFRESH`] until `stop`.
pub async fn refresh_until(pool: PgPool, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(REFRESH);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = refresh(&pool).await {
            tracing::warn!(%error, "could not read the job repository for metrics");
        }
    }
}

async fn refresh(pool: &PgPool) -> sqlx::Result<()> {
    let jobs = sqlx::query_as!(
        JobRow,
        r#"SELECT j.job_name AS "job_name!",
                  (SELECT extract(epoch FROM max(ended_at))::float8 FROM batch_job_executions
                   WHERE job_name = j.job_name AND status = 'COMPLETED') AS last_success,
                  l.seconds AS last_seconds, l.rows_read AS last_rows_read, l.rows_written AS last_rows_written,
                  l.discrepancies AS last_discrepancies, l.failed AS last_failed,
                  (SELECT count(*) FROM batch_job_executions
                   WHERE job_name = j.job_name AND status = 'STARTED') AS "unfinished!"
           FROM (SELECT DISTINCT job_name FROM batch_job_executions) j
           LEFT JOIN LATERAL (
             SELECT extract(epoch FROM ended_at - started_at)::float8 AS seconds, rows_read, rows_written,
                    discrepancies, status <> 'COMPLETED' AS failed
             FROM batch_job_executions
             WHERE job_name = j.job_name AND ended_at IS NOT NULL ORDER BY ended_at DESC LIMIT 1) l ON true"#
    )
    .fetch_all(pool)
    .await?;
    for job in jobs {
        let name = job.job_name;
        let set = |metric: &'static str, value: Option<f64>| {
            if let Some(value) = value {
                metrics::gauge!(metric, "job" => name.clone()).set(value);
            }
        };
        set("batch_job_last_success_timestamp_seconds", job.last_success);
        set("batch_job_last_duration_seconds", job.last_seconds);
        set("batch_job_last_rows_read", job.last_rows_read.map(|rows| rows as f64));
        set("batch_job_last_rows_written", job.last_rows_written.map(|rows| rows as f64));
        set("batch_job_last_discrepancies", job.last_discrepancies.map(|count| count as f64));
        set("batch_job_last_run_failed", job.last_failed.map(|failed| f64::from(u8::from(failed))));
        set("batch_job_unfinished_executions", Some(job.unfinished as f64));
    }
    Ok(())
}

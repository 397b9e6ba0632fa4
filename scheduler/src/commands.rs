//! The operator commands: `list`, `history` and `run-now`.

use crate::{
    firer::{Fired, Firer},
    firing_records::{self, Status},
    schedule::{Entry, Schedule},
};
use chrono::{DateTime, Utc};
use infra::binary::Exit;
use sqlx::PgPool;

pub fn list(schedule: &Schedule, count: usize, now: DateTime<Utc>) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in &schedule.entries {
        lines.push(format!("{}  [{}]  {}", entry.name, entry.when.zone, entry.cron));
        lines.push(format!("    runs     {}", entry.describe()));
        lines.push(format!(
            "    policy   overlap={:?} missed={:?} timeout={}s",
            entry.overlap,
            entry.missed,
            entry.timeout.as_secs()
        ));
        let upcoming: Vec<String> = entry.when.after(now).take(count).map(|at| local(entry, at)).collect();
        lines.push(format!("    next     {}", if upcoming.is_empty() { "never".into() } else { upcoming.join(", ") }));
    }
    lines
}

pub async fn history(pool: &PgPool, entry: Option<&str>, limit: i64) -> anyhow::Result<Vec<String>> {
    let header = format!(
        "{:>6}  {:<20} {:<25} {:<10} {:<22} {:>9} {:>5} {:>9}  {}",
        "id", "entry", "slot", "status", "leader", "took", "exit", "execution", "detail"
    );
    let mut lines = vec![header];
    for row in firing_records::history(pool, entry, limit).await? {
        let took = row.ended_at.map_or("running".to_owned(), |end| {
            format!("{:.1}s", (end - row.started_at).num_milliseconds().max(0) as f64 / 1000.0)
        });
        lines.push(format!(
            "{:>6}  {:<20} {:<25} {:<10} {:<22} {:>9} {:>5} {:>9}  {}",
            row.id,
            row.entry_name,
            row.slot_time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            row.status.as_str(),
            row.leader,
            took,
            row.exit_status.map_or("-".into(), |code| code.to_string()),
            row.batch_execution_id.map_or("-".into(), |id| id.to_string()),
            [row.detail.unwrap_or_default(), row.trace_id.map(|t| format!("trace {t}")).unwrap_or_default()]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    Ok(lines)
}

/// Fires `entry` now and waits; the slot is the current instant, so it never collides with a scheduled one.
pub async fn run_now(firer: &Firer, entry: &Entry) -> anyhow::Result<Exit> {
    println!("firing {} now: {}", entry.name, entry.describe());
    let fired = firer.fire(entry, Utc::now()).await?;
    let Fired::Recorded { firing, status, exit_status, detail } = fired else {
        anyhow::bail!("the slot was recorded by someone else at the same instant; try again");
    };
    let detail = detail.map(|d| format!(" ({d})")).unwrap_or_default();
    let exit = exit_status.map(|code| format!(", exit {code}")).unwrap_or_default();
    println!("firing {firing}: {}{exit}{detail}", status.as_str());
    Ok(match status {
        Status::Succeeded => Exit::Success,
        Status::Skipped => Exit::StillRunning,
        // A run-now firing is finished when it is reported; RUNNING cannot come back here.
        Status::Failed | Status::TimedOut | Status::Running => Exit::Failure,
    })
}

fn local(entry: &Entry, at: DateTime<Utc>) -> String {
    at.with_timezone(&entry.when.zone).format("%Y-%m-%d %H:%M:%S %:z").to_string()
}

//! How one firing runs: overlap, missed slots, timeouts and shutdown.

mod common;

use chrono::{Duration as Span, Utc};
use common::{await_firings, gone, start, Workdir};
use std::time::Duration;
use testkit::{process, TestEnv};

#[tokio::test]
async fn a_slot_that_comes_while_the_previous_run_goes_on_is_skipped_and_runs_never_overlap() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    dir.schedule(
        r#"
[[entry]]
name = "slow"
cron = "* * * * * *"
program = "/bin/sh"
args = ["-c", "sleep 2.5"]
overlap = "skip"
missed = "skip"
timeout = "1m"
"#,
    );
    let mut scheduler = start(&env, &dir, "solo").await;
    await_firings(&env, Duration::from_secs(30), "two finished runs", |f| {
        f.iter().filter(|f| f.status.as_str() == "SUCCEEDED").count() >= 2
    })
    .await;
    scheduler.terminate(Duration::from_secs(20)).await.expect("stopping");

    let firings = common::firings(&env).await;
    let skipped: Vec<_> = firings.iter().filter(|f| f.status.as_str() == "SKIPPED").collect();
    assert!(
        skipped.iter().any(|f| f.detail.as_deref() == Some("skipped: the previous run is still going")),
        "no slot was skipped for overlap: {firings:#?}"
    );
    let mut runs: Vec<_> = firings.iter().filter(|f| f.status.as_str() == "SUCCEEDED").collect();
    runs.sort_by_key(|f| f.started_at);
    for pair in runs.windows(2) {
        let first_end = pair[0].ended_at.expect("a finished run has an end");
        assert!(first_end <= pair[1].started_at, "runs {} and {} overlapped", pair[0].id, pair[1].id);
    }
}

#[tokio::test]
async fn the_latest_missed_slot_runs_once_at_start_unless_it_was_recorded_or_the_entry_skips_missed_slots() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    let entry = |name: &str, missed: &str| {
        format!(
            "[[entry]]\nname = \"{name}\"\ncron = \"0 0 0 * * *\"\ntimezone = \"UTC\"\nprogram = \"/bin/sh\"\n\
             args = [\"-c\", \"echo {{slot}} >> {{dir}}/{name}\"]\nmissed = \"{missed}\"\ntimeout = \"1m\"\n"
        )
    };
    dir.schedule(&[entry("catch-up", "run-once"), entry("skip-missed", "skip"), entry("done", "run-once")].join("\n"));
    let midnight = Utc::now().date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    sqlx::query(
        "INSERT INTO scheduler_firings (entry_name, slot_time, leader, status, ended_at) \
         VALUES ('done', $1, 'earlier-leader', 'SUCCEEDED', now())",
    )
    .bind(midnight)
    .execute(&env.pool)
    .await
    .expect("recording an earlier firing");

    let mut scheduler = start(&env, &dir, "solo").await;
    await_firings(&env, Duration::from_secs(20), "the catch-up run and the skipped record", |f| {
        let has = |name: &str, status: &str| f.iter().any(|f| f.entry_name == name && f.status.as_str() == status);
        has("catch-up", "SUCCEEDED") && has("skip-missed", "SKIPPED")
    })
    .await;
    // Shutdown waits for every firing task, so "done" has had its chance to (wrongly) run.
    scheduler.terminate(Duration::from_secs(20)).await.expect("stopping");

    let firings = common::firings(&env).await;
    let of = |name: &str| firings.iter().filter(|f| f.entry_name == name).collect::<Vec<_>>();
    assert_eq!(of("catch-up").len(), 1, "{firings:#?}");
    assert_eq!(of("catch-up")[0].slot_time, midnight, "the catch-up is for the latest slot");
    assert_eq!(dir.lines("catch-up"), [common::rfc3339(midnight)]);
    assert_eq!(of("skip-missed")[0].slot_time, midnight);
    assert!(dir.lines("skip-missed").is_empty(), "a skipped missed slot ran");
    assert_eq!(of("done").len(), 1, "the recorded slot was fired again: {firings:#?}");
    assert!(dir.lines("done").is_empty(), "the recorded slot ran again");
}

#[tokio::test]
async fn a_job_past_its_timeout_is_stopped_with_the_processes_it_started() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    let schedule = dir.schedule(
        r#"
[[entry]]
name = "stuck"
cron = "0 0 0 1 Jan *"
program = "/bin/sh"
args = ["-c", "sleep 60 & echo $! > {dir}/pid; wait"]
timeout = "1s"
"#,
    );
    let started = std::time::Instant::now();
    let output = common::run(&env, &schedule, &["run-now", "stuck"]);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(started.elapsed() < Duration::from_secs(20), "the timeout was not enforced");

    let firing = common::firings(&env).await.pop().expect("a firing");
    assert_eq!(firing.status.as_str(), "TIMED_OUT");
    assert!(firing.ended_at.is_some() && firing.detail.as_deref().is_some_and(|d| d.contains("timeout")));
    let pid: u32 = dir.lines("pid")[0].parse().expect("the job's pid");
    assert!(
        process::wait_until(Duration::from_secs(5), || gone(pid)).await,
        "the job's own child outlived the timeout"
    );
}

#[tokio::test]
async fn sigterm_stops_the_running_job_and_records_how_it_ended() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    // A slot in the past and run-once: the scheduler fires it as soon as it leads.
    dir.schedule(
        r#"
[[entry]]
name = "long"
cron = "0 0 0 * * *"
timezone = "UTC"
program = "/bin/sh"
args = ["-c", "sleep 60 & echo $! > {dir}/pid; wait"]
timeout = "1h"
"#,
    );
    let mut scheduler = start(&env, &dir, "solo").await;
    assert!(
        process::wait_until(Duration::from_secs(20), || !dir.lines("pid").is_empty()).await,
        "the job never started"
    );
    let pid: u32 = dir.lines("pid")[0].parse().expect("the job's pid");
    let status = scheduler.terminate(Duration::from_secs(20)).await.expect("the scheduler stops on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(gone(pid), "the job outlived the scheduler");

    let firing = common::firings(&env).await.pop().expect("a firing");
    assert_eq!(firing.status.as_str(), "FAILED");
    assert_eq!(firing.detail.as_deref(), Some("stopped: the scheduler shut down"));
    assert!(firing.ended_at.is_some());
    assert!(Utc::now() - firing.started_at < Span::minutes(1));
}

#[tokio::test]
async fn a_killed_leaders_batch_run_stops_with_it_and_the_successor_closes_its_firing() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    // A long settle-batch run (seeding millions of ledger entries), due at once (past slot, run-once).
    dir.schedule(
        r#"
[[entry]]
name = "long-batch"
cron = "0 0 0 * * *"
timezone = "UTC"
command = "seed-points"
args = ["--users", "2000000", "--transactions", "40000000"]
timeout = "1h"
"#,
    );
    let mut leader = start(&env, &dir, "first").await;
    await_firings(&env, Duration::from_secs(20), "the run recording its process id", |f| {
        f.iter().any(|f| {
            f.status.as_str() == "RUNNING" && f.detail.as_deref().is_some_and(|d| d.starts_with("running as pid"))
        })
    })
    .await;
    let detail = common::firings(&env).await.pop().and_then(|f| f.detail).expect("a detail");
    let pid: u32 = detail.split_whitespace().nth(3).and_then(|pid| pid.parse().ok()).expect("a pid in the detail");
    assert!(!gone(pid), "the batch run is not running");

    leader.kill();
    let stopped = process::wait_until(Duration::from_secs(10), || gone(pid)).await;
    if !stopped {
        let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    }
    assert!(stopped, "the batch run outlived the scheduler that started it");

    let mut successor = start(&env, &dir, "second").await;
    await_firings(&env, Duration::from_secs(15), "the successor closing the abandoned firing", |f| {
        f.iter().any(|f| {
            f.leader == "first"
                && f.status.as_str() == "FAILED"
                && f.detail.as_deref().is_some_and(|d| d.starts_with("abandoned"))
        })
    })
    .await;
    successor.terminate(Duration::from_secs(20)).await.expect("stopping");
}

#[tokio::test]
async fn a_stalled_leader_records_every_slot_it_passed_and_fires_the_latest() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    dir.schedule(
        r#"
[[entry]]
name = "tick"
cron = "* * * * * *"
program = "/bin/true"
missed = "skip"
timeout = "30s"
"#,
    );
    let mut scheduler = start(&env, &dir, "solo").await;
    await_firings(&env, Duration::from_secs(20), "a first run", |f| f.iter().any(|f| f.status.as_str() == "SUCCEEDED"))
        .await;

    // The stall itself: the process is frozen for three seconds, as an overloaded or suspended host would.
    let pid = scheduler.0.id().to_string();
    std::process::Command::new("kill").args(["-STOP", &pid]).status().expect("SIGSTOP");
    tokio::time::sleep(Duration::from_secs(3)).await; // the stall being simulated, not a wait for anything
    std::process::Command::new("kill").args(["-CONT", &pid]).status().expect("SIGCONT");
    let resumed = Utc::now();

    await_firings(&env, Duration::from_secs(15), "a run after the stall", |f| {
        f.iter().any(|f| f.status.as_str() == "SUCCEEDED" && f.started_at > resumed)
    })
    .await;
    scheduler.terminate(Duration::from_secs(20)).await.expect("stopping");

    let firings = common::firings(&env).await;
    assert!(
        firings.iter().any(|f| f.detail.as_deref() == Some("missed: the scheduler was stalled past the slot")),
        "no slot was recorded as passed during the stall: {firings:#?}"
    );
    for pair in firings.windows(2) {
        assert_eq!(pair[1].slot_time - pair[0].slot_time, Span::seconds(1), "a slot has no record: {firings:#?}");
    }
}

/// The gauge lines of `metric` for `job` in a /metrics body.
fn gauge(body: &str, metric: &str, job: &str) -> Option<f64> {
    let prefix = format!("{metric}{{job=\"{job}\"}} ");
    body.lines().find_map(|line| line.strip_prefix(&prefix)).and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn the_scheduler_serves_each_jobs_last_run_from_the_repository_as_metrics() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    // An entry that does not fire during the test: the metrics come from the executions below.
    dir.schedule(
        r#"
[[entry]]
name = "yearly"
cron = "0 0 0 1 1 *"
program = "/bin/true"
missed = "skip"
timeout = "1m"
"#,
    );
    sqlx::query(
        "INSERT INTO batch_job_executions (job_name, job_key, status, started_at, ended_at, rows_read, rows_written, discrepancies)
         VALUES ('reconcile-points', '2026-12-05', 'COMPLETED', '2026-12-06T00:00:00Z', '2026-12-06T00:00:30Z', 900, 80, 3),
                ('reconcile-points', '2026-12-06', 'FAILED', '2026-12-07T00:00:00Z', '2026-12-07T00:00:12Z', 400, 0, 0),
                ('expire-points', '2026-12-06', 'STARTED', '2026-12-07T01:10:00Z', NULL, 0, 0, 0)",
    )
    .execute(&env.pool)
    .await
    .expect("executions");
    let (_replica, port) = common::start_with_port(&env, &dir, "metrics").await;

    let mut body = String::new();
    let served = process::eventually(Duration::from_secs(30), || {
        body = process::http_get(port, "/metrics").map(|(_, body)| body).unwrap_or_default();
        std::future::ready(body.contains("batch_job_last_success_timestamp_seconds"))
    })
    .await;
    assert!(served, "no job metrics: {body}");
    let reconcile = |metric| gauge(&body, metric, "reconcile-points");
    let success = chrono::DateTime::parse_from_rfc3339("2026-12-06T00:00:30Z").expect("instant").timestamp() as f64;
    assert_eq!(reconcile("batch_job_last_success_timestamp_seconds"), Some(success), "{body}");
    assert_eq!(reconcile("batch_job_last_duration_seconds"), Some(12.0), "the latest run, failed");
    assert_eq!(reconcile("batch_job_last_rows_read"), Some(400.0));
    assert_eq!(reconcile("batch_job_last_run_failed"), Some(1.0));
    assert_eq!(gauge(&body, "batch_job_unfinished_executions", "expire-points"), Some(1.0), "{body}");
    assert_eq!(gauge(&body, "batch_job_last_success_timestamp_seconds", "expire-points"), None, "never succeeded");
}

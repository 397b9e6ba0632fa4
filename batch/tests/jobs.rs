//! The job repository's operations against real PostgreSQL: stopping a run (`settle-batch stop`, SIGTERM)
//! ends it within a chunk as STOPPED, `restart` completes only what was missing, `runs show` reports
//! one execution, `jobs` lists the jobs and their options.

use std::{process::Output, time::Duration};
use testkit::{process, TestEnv};

const BATCH: &str = env!("CARGO_BIN_EXE_settle-batch");

fn batch(env: &TestEnv, args: &[&str]) -> Output {
    process::command_for(BATCH.as_ref(), env).args(args).output().expect("running settle-batch")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn count(env: &TestEnv, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&env.pool).await.expect("count")
}

/// The execution of `job` that is running (waits for it to be recorded).
async fn running(env: &TestEnv, job: &str) -> i64 {
    let query = "SELECT coalesce(max(id), 0) FROM batch_job_executions WHERE job_name = $1 AND status = 'STARTED'";
    let started = || async { sqlx::query_scalar::<_, i64>(query).bind(job).fetch_one(&env.pool).await.expect("id") };
    assert!(
        process::eventually(Duration::from_secs(30), || async { started().await > 0 }).await,
        "{job} never started"
    );
    started().await
}

async fn status(env: &TestEnv, execution: i64) -> String {
    sqlx::query_scalar("SELECT status FROM batch_job_executions WHERE id = $1")
        .bind(execution)
        .fetch_one(&env.pool)
        .await
        .expect("status")
}

#[tokio::test]
async fn a_stopped_run_ends_within_a_chunk_and_a_restart_completes_only_what_was_missing() {
    let env = TestEnv::new().await;
    let seeded = batch(&env, &["seed-points", "--users", "4000", "--transactions", "12000", "--days", "3"]);
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
    let due = "UPDATE point_lots SET expires_at = now() - interval '3 days' WHERE remaining > 0";
    let due_users = sqlx::query(due).execute(&env.pool).await.expect("due lots").rows_affected() as i64;
    let date = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let mut command = process::command_for(BATCH.as_ref(), &env);
    command.args(["expire-points", "--date", &date, "--timezone", "UTC", "--chunk", "5", "--workers", "1"]);
    let mut child = process::Running::spawn(command.stdout(std::process::Stdio::piped())).expect("batch");
    let execution = running(&env, "expire-points").await;
    let expired = "SELECT count(*) FROM points WHERE kind = 'EXPIRE'";
    assert!(process::progresses_to(100, Duration::from_secs(30), || count(&env, expired)).await);

    let stop = batch(&env, &["stop", &execution.to_string()]);
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    let mut exit = None;
    let ended = process::eventually(Duration::from_secs(30), || {
        exit = child.0.try_wait().expect("the run");
        std::future::ready(exit.is_some())
    })
    .await;
    assert!(ended, "the run did not end within a chunk of the stop");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().expect("piped"), &mut stdout).expect("stdout");
    assert_eq!(exit.and_then(|status| status.code()), Some(1), "a stopped run exits 1: {stdout}");
    assert!(stdout.contains(&format!("settle-batch restart {execution}")), "{stdout}");
    assert_eq!(status(&env, execution).await, "STOPPED");
    let done_before = count(&env, "SELECT count(*) FROM batch_partition_checkpoints").await;
    assert!(done_before < 16, "stopped before the end ({done_before} partitions done)");
    assert!(count(&env, expired).await < due_users);

    let restarted = batch(&env, &["restart", &execution.to_string()]);
    assert!(restarted.status.success(), "{}{}", text(&restarted.stdout), text(&restarted.stderr));
    assert_eq!(status(&env, execution).await, "COMPLETED", "the same execution, resumed");
    let once = "SELECT count(*) FROM (SELECT user_id FROM points WHERE kind = 'EXPIRE' GROUP BY user_id HAVING count(*) = 1) u";
    assert_eq!(count(&env, once).await, due_users, "every user expired exactly once");
    assert_eq!(count(&env, "SELECT count(*) FROM batch_partition_checkpoints").await, 16, "each partition once");

    let shown = batch(&env, &["runs", "show", &execution.to_string()]);
    let shown = text(&shown.stdout);
    assert!(shown.contains("expire-points") && shown.contains("COMPLETED") && shown.contains("--chunk 5"), "{shown}");
    assert_eq!(shown.lines().filter(|line| line.trim_start().starts_with(char::is_numeric)).count(), 16, "{shown}");
    for (args, message) in [
        (vec!["restart", &execution.to_string()], "only FAILED or STOPPED"),
        (vec!["stop", &execution.to_string()], "not running"),
        (vec!["restart", "999999"], "no execution"),
        (vec!["runs", "show", "999999"], "no execution"),
    ] {
        let refused = batch(&env, &args);
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        assert!(text(&refused.stderr).contains(message), "{args:?}: {}", text(&refused.stderr));
    }
}

#[tokio::test]
async fn sigterm_stops_a_run_within_a_chunk_and_the_same_command_resumes_it() {
    let env = TestEnv::new().await;
    let buyer = testkit::orders::buyer(&env.pool).await;
    let orders = testkit::orders::delivered(&env.pool, buyer, 1_500, 1_000, 9).await;
    let args = ["auto-confirm", "--as-of", "2099-01-01T00:00:00Z", "--chunk", "2", "--workers", "1"];
    let mut child = process::Running::spawn(process::command_for(BATCH.as_ref(), &env).args(args)).expect("batch");
    let execution = running(&env, "auto-confirm").await;
    let confirmed = "SELECT count(*) FROM orders WHERE status = 'CONFIRMED'";
    assert!(process::progresses_to(50, Duration::from_secs(30), || count(&env, confirmed)).await);

    let ended = child.terminate(Duration::from_secs(30)).await.expect("the run ends on SIGTERM");
    assert_eq!(ended.code(), Some(1), "stopped, not killed");
    assert_eq!(status(&env, execution).await, "STOPPED");
    let part = count(&env, confirmed).await;
    assert!(part < orders.len() as i64, "stopped before the end ({part} confirmed)");

    let again = batch(&env, &args);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(status(&env, execution).await, "COMPLETED");
    assert_eq!(count(&env, confirmed).await, orders.len() as i64);
}

#[test]
fn jobs_lists_every_job_with_its_options() {
    let output = std::process::Command::new(BATCH).arg("jobs").output().expect("settle-batch jobs");
    assert!(output.status.success());
    let listing = text(&output.stdout);
    for job in ["reconcile-points:", "expire-points:", "notify-expiring-points:", "auto-confirm:"] {
        assert!(listing.lines().any(|line| line.starts_with(job)), "{job} missing: {listing}");
    }
    assert!(listing.contains("--date") && listing.contains("[default: 1000]"), "{listing}");
}

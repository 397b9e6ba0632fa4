//! The leader publishes its schedule for the operations console and fires the entries asked to run now
//! from there: once each, linked to its firing; a request for an entry it does not have is answered so.

mod common;

use common::{await_firings, start, Workdir};
use std::time::Duration;
use testkit::{process, TestEnv};

/// Once a year: only a run-now request fires it during the test.
const YEARLY: &str = r#"
[[entry]]
name = "yearly-note"
cron = "0 0 0 1 1 *"
timezone = "UTC"
program = "/bin/sh"
args = ["-c", "echo {slot} >> {dir}/notes"]
missed = "skip"
timeout = "30s"
"#;

/// Queues a request to fire `entry` now, as the console does.
async fn request(env: &TestEnv, entry: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO scheduler_run_requests (entry_name, requested_by) VALUES ($1, 'console:test') RETURNING id",
    )
    .bind(entry)
    .fetch_one(&env.pool)
    .await
    .expect("a request")
}

#[tokio::test]
async fn the_leader_publishes_its_schedule_and_fires_each_run_now_request_once() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    dir.schedule(YEARLY);
    let mut leader = start(&env, &dir, "leader").await;

    let published = process::eventually(Duration::from_secs(10), || async {
        let next: Option<(Option<chrono::DateTime<chrono::Utc>>, String)> =
            sqlx::query_as("SELECT next_at, runs FROM scheduler_entries WHERE name = 'yearly-note'")
                .fetch_optional(&env.pool)
                .await
                .expect("entries");
        next.is_some_and(|(next_at, runs)| next_at.is_some() && runs.starts_with("/bin/sh"))
    })
    .await;
    assert!(published, "the schedule was published with the entry's next firing");

    let asked = request(&env, "yearly-note").await;
    let unknown = request(&env, "no-such-entry").await;
    await_firings(&env, Duration::from_secs(10), "the requested firing", |f| {
        f.iter().any(|f| f.entry_name == "yearly-note" && f.status.as_str() == "SUCCEEDED")
    })
    .await;
    let settled = process::eventually(Duration::from_secs(5), || async {
        let answered: Vec<bool> = sqlx::query_scalar(
            "SELECT firing_id IS NOT NULL OR detail IS NOT NULL FROM scheduler_run_requests ORDER BY id",
        )
        .fetch_all(&env.pool)
        .await
        .expect("requests");
        answered == [true, true]
    })
    .await;
    assert!(settled, "both requests answered");
    let (firing, taken_by): (i64, String) =
        sqlx::query_as("SELECT firing_id, taken_by FROM scheduler_run_requests WHERE id = $1")
            .bind(asked)
            .fetch_one(&env.pool)
            .await
            .expect("the request");
    assert_eq!(taken_by, "leader");
    let fired: String = sqlx::query_scalar("SELECT entry_name FROM scheduler_firings WHERE id = $1")
        .bind(firing)
        .fetch_one(&env.pool)
        .await
        .expect("its firing");
    assert_eq!(fired, "yearly-note");
    let detail: String = sqlx::query_scalar("SELECT detail FROM scheduler_run_requests WHERE id = $1")
        .bind(unknown)
        .fetch_one(&env.pool)
        .await
        .expect("the unknown one");
    assert_eq!(detail, "no such entry in the schedule");
    assert_eq!(dir.lines("notes").len(), 1, "fired once");
    leader.terminate(Duration::from_secs(10)).await.ok();
}

#[tokio::test]
async fn the_leader_runs_settle_batch_restart_for_a_restart_request_and_records_how_it_ended() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    dir.schedule(YEARLY);
    let completed: i64 = sqlx::query_scalar(
        "INSERT INTO batch_job_executions (job_name, job_key, status, ended_at) VALUES ('reconcile-points', '2026-12-01', 'COMPLETED', now())
         RETURNING id",
    )
    .fetch_one(&env.pool)
    .await
    .expect("an execution");
    // Taken by a scheduler that died before answering: the new leader answers it, so it can be asked again.
    sqlx::query(
        "INSERT INTO scheduler_run_requests (execution_id, requested_by, taken_by, taken_at)
         VALUES ($1, 'console:earlier', 'dead-leader', now() - interval '1 hour')",
    )
    .bind(completed)
    .execute(&env.pool)
    .await
    .expect("an abandoned request");
    let mut leader = start(&env, &dir, "leader").await;
    sqlx::query("INSERT INTO scheduler_run_requests (execution_id, requested_by) VALUES ($1, 'console:test')")
        .bind(completed)
        .execute(&env.pool)
        .await
        .expect("a restart request");

    let detail = process::eventually(Duration::from_secs(15), || async {
        let detail: Option<String> =
            sqlx::query_scalar("SELECT detail FROM scheduler_run_requests WHERE taken_by = 'leader'")
                .fetch_optional(&env.pool)
                .await
                .expect("the request")
                .flatten();
        detail.is_some()
    })
    .await;
    assert!(detail, "the restart ran and its end was recorded");
    let detail: String = sqlx::query_scalar("SELECT detail FROM scheduler_run_requests WHERE taken_by = 'leader'")
        .fetch_one(&env.pool)
        .await
        .expect("detail");
    let abandoned: String =
        sqlx::query_scalar("SELECT detail FROM scheduler_run_requests WHERE taken_by = 'dead-leader'")
            .fetch_one(&env.pool)
            .await
            .expect("the abandoned one");
    assert!(abandoned.starts_with("abandoned"), "{abandoned}");
    // settle-batch refuses to restart a completed execution (exit 2): the leader ran the CLI's own check.
    assert!(detail.starts_with(&format!("settle-batch restart {completed} exited 2")), "{detail}");
    leader.terminate(Duration::from_secs(10)).await.ok();
}

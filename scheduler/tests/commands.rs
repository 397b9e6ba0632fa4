//! The operator commands against the real batch binary: list, run-now, history, and a bad file.

mod common;

use common::Workdir;
use testkit::TestEnv;

const RECONCILE: &str = r#"
[[entry]]
name = "reconcile-points"
cron = "0 30 0 * * *"
command = "reconcile-points"
args = ["--date", "{yesterday}"]
timeout = "10m"
"#;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn run_now_fires_the_batch_links_its_execution_and_forwards_its_logs_with_the_trace_id() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    let schedule = dir.schedule(RECONCILE);

    let output = common::run(&env, &schedule, &["run-now", "reconcile-points"]);
    assert!(output.status.success(), "stdout: {}\nstderr: {}", text(&output.stdout), text(&output.stderr));
    let firing = common::firings(&env).await.pop().expect("a firing");
    assert_eq!(
        (firing.entry_name.as_str(), firing.status.as_str(), firing.exit_status),
        ("reconcile-points", "SUCCEEDED", Some(0))
    );
    assert!(firing.leader.starts_with("run-now:"), "{}", firing.leader);
    let trace_id = firing.trace_id.clone().expect("a trace id");
    let execution = firing.batch_execution_id.expect("the batch execution is linked");
    let (job, key, execution_trace): (String, String, Option<String>) =
        sqlx::query_as("SELECT job_name, job_key, trace_id FROM batch_job_executions WHERE id = $1")
            .bind(execution)
            .fetch_one(&env.pool)
            .await
            .expect("the execution");
    assert_eq!(job, "reconcile-points");
    let yesterday_in_seoul =
        (chrono::Utc::now().with_timezone(&chrono_tz::Asia::Seoul).date_naive() - chrono::Days::new(1)).to_string();
    assert!(key.contains(&yesterday_in_seoul), "the job ran for {key}, not {yesterday_in_seoul}");
    assert_eq!(execution_trace.as_deref(), Some(trace_id.as_str()), "the batch did not inherit the trace id");
    let log = text(&output.stdout);
    let forwarded: Vec<&str> = log.lines().filter(|line| line.contains("job: ")).collect();
    assert!(!forwarded.is_empty(), "no job log line was forwarded: {log}");
    assert!(
        forwarded.iter().all(|line| line.contains(&trace_id)),
        "a forwarded line lacks the trace id: {forwarded:?}"
    );

    // Again: the batch says the date is done (exit 3), which is success for the schedule.
    let again = common::run(&env, &schedule, &["run-now", "reconcile-points"]);
    assert!(again.status.success(), "{}", text(&again.stdout));
    let second = common::firings(&env).await.pop().expect("a second firing");
    assert_eq!((second.status.as_str(), second.exit_status), ("SUCCEEDED", Some(3)));
    assert!(second.detail.as_deref().is_some_and(|d| d.contains("already completed")));

    let history = common::run(&env, &schedule, &["history", "--limit", "5"]);
    assert!(history.status.success());
    let history = text(&history.stdout);
    for id in [firing.id, second.id] {
        assert!(
            history.lines().any(|line| line.trim_start().starts_with(&format!("{id} "))),
            "{id} missing:\n{history}"
        );
    }
    assert!(history.contains(&trace_id) && history.contains(&execution.to_string()), "{history}");
}

#[tokio::test]
async fn a_failing_job_is_recorded_with_its_exit_status_and_error() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    let schedule =
        dir.schedule(&RECONCILE.replace("\"{yesterday}\"", "\"{yesterday}\", \"--timezone\", \"Mars/Olympus\""));
    let output = common::run(&env, &schedule, &["run-now", "reconcile-points"]);
    assert_eq!(output.status.code(), Some(1));
    let firing = common::firings(&env).await.pop().expect("a firing");
    assert_eq!((firing.status.as_str(), firing.exit_status), ("FAILED", Some(2)));
    assert!(firing.detail.as_deref().is_some_and(|d| d.contains("Mars/Olympus")), "{:?}", firing.detail);
}

#[tokio::test]
async fn list_shows_each_entry_with_its_next_three_fire_times_in_its_zone() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    let schedule = dir.schedule(RECONCILE);
    let output = common::run(&env, &schedule, &["list"]);
    assert!(output.status.success());
    let listing = text(&output.stdout);
    let next = listing.lines().find(|line| line.trim_start().starts_with("next")).expect("a next line");
    let times: Vec<&str> = next.trim_start().trim_start_matches("next").split(", ").map(str::trim).collect();
    assert_eq!(times.len(), 3, "{listing}");
    assert!(times.iter().all(|t| t.ends_with("00:30:00 +09:00")), "{listing}");
    assert!(listing.contains("settle-batch reconcile-points --date {yesterday}"), "{listing}");
}

#[tokio::test]
async fn a_malformed_schedule_is_rejected_at_start_with_its_line_and_reason() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    let schedule = dir.schedule(&RECONCILE.replace("0 30 0 * * *", "0 30 25 * * *"));
    for args in [&[][..], &["list"][..], &["run-now", "reconcile-points"][..]] {
        let output = common::run(&env, &schedule, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains("schedule.toml:4: cron \"0 30 25 * * *\""), "{args:?}: {stderr}");
    }
    assert!(common::firings(&env).await.is_empty());

    let good = dir.schedule(RECONCILE);
    let unknown = common::run(&env, &good, &["run-now", "nightly"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no entry named \"nightly\""));
}

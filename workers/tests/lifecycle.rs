use std::time::Duration;
use testkit::{broker::free_port, process, TestEnv};

const WORKERS: &str = env!("CARGO_BIN_EXE_settle-workers");

#[tokio::test]
async fn settle_workers_becomes_ready_creates_its_topics_and_stops_cleanly_on_sigterm() {
    let env = TestEnv::new().await;
    let (mut child, _port) =
        process::start_ready(WORKERS, &env, "WORKERS_OPS_ADDR").await.expect("settle-workers ready");

    let kafka = infra::kafka::Kafka::new(env.kafka.clone());
    let expected = kafka.topic_name(infra::kafka::Topic::CouponIssueRequested);
    let topics = testkit::topics_with_prefix(&env.kafka.brokers, &env.kafka.topic_prefix).expect("listing topics");
    assert!(topics.contains(&expected), "{expected} missing from {topics:?}");

    let status = child.terminate(Duration::from_secs(20)).await.expect("stopping");
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn an_unknown_worker_name_stops_start_up_with_an_error() {
    let env = TestEnv::new().await;
    let output = process::command_for(WORKERS.as_ref(), &env)
        .env("WORKERS_OPS_ADDR", format!("127.0.0.1:{}", free_port()))
        .args(["--only", "no-such-worker"])
        .output()
        .expect("running settle-workers");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown worker \"no-such-worker\""));
}

#[tokio::test]
async fn a_failing_worker_stops_every_other_worker_and_the_process_exits_non_zero() {
    let env = TestEnv::new().await;
    // A well-formed event that point-activity cannot apply (its table is gone): not a transient error,
    // so the consumer must stop rather than skip it, and with it the whole process.
    sqlx::query("DROP TABLE point_activity_daily").execute(&env.pool).await.expect("dropping the projection");
    sqlx::query(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload) \
         VALUES (gen_random_uuid(), 'points', '1', 'PointsEarned', '{\"userId\": 1, \"amount\": 5}')",
    )
    .execute(&env.pool)
    .await
    .expect("an event");
    let mut command = process::command_for(WORKERS.as_ref(), &env);
    command
        .args(["--only", "outbox-relay,point-activity", "--concurrency", "2"])
        .env("WORKERS_OPS_ADDR", format!("127.0.0.1:{}", free_port()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut workers = process::Running::spawn(&mut command).expect("settle-workers");

    let mut status = None;
    let exited = process::wait_until(Duration::from_secs(90), || {
        status = workers.0.try_wait().expect("waiting");
        status.is_some()
    })
    .await;
    assert!(exited, "the process kept running with a failed worker");
    assert!(!status.expect("an exit status").success(), "a failed worker must exit non-zero: {status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(workers.0.stderr.as_mut().expect("stderr"), &mut stderr).expect("stderr");
    assert!(stderr.contains("worker point-activity failed"), "{stderr}");
}

#[tokio::test]
async fn the_relay_names_parked_outbox_rows_in_its_readiness_and_stays_ready() {
    let env = TestEnv::new().await;
    let parked: i64 = sqlx::query_scalar(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, attempts, parked_at) \
         VALUES (gen_random_uuid(), 'points', '3', 'PointsEarned', '{}', 10, now()) RETURNING id",
    )
    .fetch_one(&env.pool)
    .await
    .expect("a parked row");
    let mut command = process::command_for(WORKERS.as_ref(), &env);
    let port = free_port();
    command.args(["--only", "outbox-relay"]).env("WORKERS_OPS_ADDR", format!("127.0.0.1:{port}"));
    let _relay = process::Running::spawn(&mut command).expect("settle-workers");
    let mut body = String::new();
    let ready = process::wait_until(Duration::from_secs(30), || match process::http_get(port, "/health/ready") {
        Some((200, text)) => {
            body = text;
            true
        }
        _ => false,
    })
    .await;
    assert!(ready, "a parked row must not make the relay unready");
    let report: serde_json::Value = serde_json::from_str(&body).expect("a JSON readiness report");
    let detail = report["checks"]["outbox"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&format!("ids {parked}")) && detail.contains("settle-batch outbox retry"), "{report}");
}

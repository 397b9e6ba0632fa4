use std::time::Duration;
use testkit::{broker::free_port, process, TestEnv};

const WORKERS: &str = env!("CARGO_BIN_EXE_settle-workers");

#[tokio::test]
async fn settle_workers_becomes_ready_creates_its_topics_and_stops_cleanly_on_sigterm() {
    let env = TestEnv::new().await;
    let (mut child, _port) = process::start_ready(WORKERS, &env, "WORKERS_OPS_ADDR").expect("settle-workers ready");

    let kafka = infra::kafka::Kafka::new(env.kafka.clone());
    let expected = kafka.topic_name(infra::kafka::Topic::CouponIssueRequested);
    let topics = testkit::topics_with_prefix(&env.kafka.brokers, &env.kafka.topic_prefix).expect("listing topics");
    assert!(topics.contains(&expected), "{expected} missing from {topics:?}");

    let status = child.terminate(Duration::from_secs(20)).expect("stopping");
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

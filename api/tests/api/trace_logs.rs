//! Trace ids across processes, the way ELK would show them: settle-api and three settle-workers
//! processes (issuance, outbox relay, point-activity consumer) write ECS JSON lines to their own log
//! files; one V3 request is followed API → Kafka header → issuance worker, and one point write API →
//! outbox row → relay → consumer, by the trace id the API answered with.

use crate::coupons::support::{create_policy, create_users, policy_body};
use crate::helpers::{spawn_app, SECRET};
use domain::Role;
use serde_json::{json, Value};
use std::{
    fs::File,
    path::{Path, PathBuf},
    time::Duration,
};
use testkit::process::{command_for, eventually, http_status, wait_until, Running};

const API: &str = env!("CARGO_BIN_EXE_settle-api");
/// Every line carries these, so Filebeat or Logstash can ship it to Elasticsearch as it is.
const ECS_KEYS: [&str; 5] = ["@timestamp", "log.level", "message", "service.name", "trace.id"];

/// settle-workers, built beside settle-api by the workspace's test build.
fn workers_binary() -> PathBuf {
    let binary = Path::new(API).with_file_name("settle-workers");
    assert!(binary.exists(), "{} is missing: run the workspace's tests (scripts/run-tests)", binary.display());
    binary
}

/// One binary against `env` with ECS JSON logs into `log`, its HTTP or ops port at `port` (set by `port_var`).
fn start(binary: &Path, env: &testkit::TestEnv, args: &[&str], port_var: &str, log: &Path) -> (Running, u16) {
    let port = testkit::broker::free_port();
    let file = File::create(log).expect("a log file");
    let child = Running::spawn(
        command_for(binary, env)
            .args(args)
            .env(port_var, format!("127.0.0.1:{port}"))
            .env("JWT_SECRET", SECRET)
            .env("LOG_JSON", "true")
            .env("RUST_LOG", "info")
            .stdout(file),
    )
    .expect("a settle binary");
    (child, port)
}

fn lines(log: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("{}: not JSON: {line}", log.display())))
        .collect()
}

/// True once `log` has a line with this trace id and message.
fn logged(log: &Path, trace_id: &str, message: &str) -> bool {
    lines(log).iter().any(|line| line["trace.id"] == trace_id && line["message"] == message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_v3_request_and_one_point_event_are_followed_across_the_processes_logs_by_trace_id() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let policy = create_policy(&app, policy_body(10)).await;
    let dir = std::env::temp_dir().join(format!("settle-logs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a log directory");
    let log = |name: &str| dir.join(format!("{name}.log"));
    let workers = workers_binary();
    let ops = "WORKERS_OPS_ADDR";
    let (_consumer, consumer_port) = start(&workers, &app.env, &["--only", "point-activity"], ops, &log("consumer"));
    let (_issuance, issuance_port) = start(&workers, &app.env, &["--only", "coupon-issuance"], ops, &log("issuance"));
    let (_relay, relay_port) = start(&workers, &app.env, &["--only", "outbox-relay"], ops, &log("relay"));
    let (_api, api_port) = start(API.as_ref(), &app.env, &[], "API_LISTEN_ADDR", &log("api"));
    let ready = wait_until(Duration::from_secs(60), || {
        [consumer_port, issuance_port, relay_port, api_port]
            .iter()
            .all(|p| http_status(*p, "/health/ready") == Some(200))
    });
    assert!(ready.await, "every process reports ready");
    let joined = wait_until(Duration::from_secs(60), || {
        lines(&log("consumer")).iter().any(|l| l["message"] == "partitions assigned" && l["partitions"] != 0)
    });
    assert!(joined.await, "the consumer joined its group");

    let api = format!("http://127.0.0.1:{api_port}");
    let issued = app
        .client
        .post(format!("{api}/api/v3/coupons"))
        .bearer_auth(app.token(user, Role::User))
        .json(&json!({ "couponPolicyId": policy }))
        .send()
        .await
        .expect("V3");
    assert_eq!(issued.status(), 202);
    let coupon_trace = issued.headers()["x-trace-id"].to_str().expect("trace id").to_owned();
    let earned = app
        .client
        .post(format!("{api}/api/v2/points/earn"))
        .bearer_auth(app.token(1, Role::Admin))
        .json(&json!({ "userId": user, "amount": 500 }))
        .send()
        .await
        .expect("earn");
    assert_eq!(earned.status(), 200);
    let points_trace = earned.headers()["x-trace-id"].to_str().expect("trace id").to_owned();

    let story = [
        ("api", &coupon_trace, "request finished"),
        ("issuance", &coupon_trace, "coupon issue request persisted"),
        ("api", &points_trace, "request finished"),
        ("relay", &points_trace, "outbox event published"),
        ("consumer", &points_trace, "point event consumed"),
    ];
    for (process, trace_id, message) in story {
        let found =
            eventually(Duration::from_secs(60), || std::future::ready(logged(&log(process), trace_id, message)));
        assert!(found.await, "{process}.log has no {message:?} line with trace.id {trace_id}");
    }
    for (process, service) in [
        ("api", "settle-api"),
        ("issuance", "settle-workers"),
        ("relay", "settle-workers"),
        ("consumer", "settle-workers"),
    ] {
        let lines = lines(&log(process));
        assert!(!lines.is_empty());
        for line in &lines {
            for key in ECS_KEYS {
                assert!(line[key].is_string(), "{process}.log: {key} missing in {line}");
            }
            assert_eq!(line["service.name"], service, "{line}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

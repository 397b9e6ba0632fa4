//! The issuance worker against real Kafka and PostgreSQL, fed records exactly as settle-api produces them.

use chrono::Utc;
use domain::{coupon::IssueRequested, PolicyId, UserId};
use infra::kafka::{Kafka, Topic};
use rdkafka::{
    consumer::Consumer,
    message::{Headers, Message},
    producer::{FutureProducer, FutureRecord},
};
use std::time::Duration;
use testkit::{process, TestEnv};
use uuid::Uuid;

const WORKERS: &str = env!("CARGO_BIN_EXE_settle-workers");

async fn users(env: &TestEnv, count: i32) -> Vec<i64> {
    sqlx::query_scalar(
        "INSERT INTO users (email, password_hash, name) SELECT 'w' || g || '@x.io', 'x', 'W' FROM generate_series(1, $1) g RETURNING id",
    )
    .bind(count)
    .fetch_all(&env.pool)
    .await
    .expect("users")
}

async fn policy(env: &TestEnv, quantity: i32) -> PolicyId {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO coupon_policies (name, discount_type, discount_value, total_quantity, issue_starts_at, \
         issue_ends_at, coupon_valid_days) VALUES ('p', 'FIXED_AMOUNT', 500, $1, now() - interval '1 hour', \
         now() + interval '1 hour', 7) RETURNING id",
    )
    .bind(quantity)
    .fetch_one(&env.pool)
    .await
    .expect("policy");
    PolicyId::parse(id).expect("id")
}

fn request(policy: PolicyId, user: i64) -> IssueRequested {
    IssueRequested {
        request_id: Uuid::new_v4(),
        policy_id: policy,
        user_id: UserId::parse(user).expect("id"),
        requested_at: Utc::now(),
    }
}

async fn produce(kafka: &Kafka, producer: &FutureProducer, payloads: &[(String, Vec<u8>)]) {
    kafka.ensure_topics(&Topic::ALL).await.expect("topics");
    let topic = kafka.topic_name(Topic::CouponIssueRequested);
    for (key, payload) in payloads {
        producer
            .send(FutureRecord::to(&topic).key(key).payload(payload), Duration::from_secs(10))
            .await
            .map_err(|(error, _)| error)
            .expect("acknowledged");
    }
}

fn encoded(requests: &[IssueRequested]) -> Vec<(String, Vec<u8>)> {
    requests.iter().map(|r| (r.user_id.to_string(), serde_json::to_vec(r).expect("json"))).collect()
}

fn small_batch_worker(env: &TestEnv) -> std::process::Command {
    let mut command = process::command_for(WORKERS.as_ref(), env);
    command
        .env("WORKERS_BATCH_SIZE", "50")
        .env("WORKERS_ONLY", "coupon-issuance")
        .env("WORKERS_OPS_ADDR", format!("127.0.0.1:{}", testkit::broker::free_port()));
    command
}

async fn decided(env: &TestEnv) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM coupon_issue_requests WHERE status <> 'PENDING'")
        .fetch_one(&env.pool)
        .await
        .expect("count")
}

async fn wait_for_decided(env: &TestEnv, expected: i64, within: Duration) -> bool {
    process::eventually(within, || async { decided(env).await >= expected }).await
}

/// (coupons, distinct holders, requests recorded, distinct requests recorded)
async fn counts(env: &TestEnv) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM coupons), (SELECT count(DISTINCT (policy_id, user_id)) FROM coupons), \
                (SELECT count(*) FROM coupon_issue_requests), (SELECT count(DISTINCT id) FROM coupon_issue_requests)",
    )
    .fetch_one(&env.pool)
    .await
    .expect("counts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_stream_and_restarted_persists_every_accepted_request_once() {
    let env = TestEnv::new().await;
    let kafka = Kafka::new(env.kafka.clone());
    let users = users(&env, 3_000).await;
    let policy = policy(&env, 2_000).await;
    let requests: Vec<_> = users.iter().map(|user| request(policy, *user)).collect();
    produce(&kafka, &kafka.producer().expect("producer"), &encoded(&requests)).await;

    // Bounded by stalls, not by total time: a worker on a loaded machine is slower, not wrong. A stall longer
    // than the group's session timeout (the killed member's partitions move after it) and a start is a failure.
    let stall = infra::kafka::CONSUMER_SESSION_TIMEOUT + Duration::from_secs(50);
    let mut first = process::Running::spawn(&mut small_batch_worker(&env)).expect("first worker");
    assert!(process::progresses_to(200, stall, || decided(&env)).await, "the first worker made no progress");
    first.kill(); // SIGKILL: no drain, no final commit
    let at_kill = decided(&env).await;
    assert!(at_kill < 3_000, "killed too late to prove anything ({at_kill} already decided)");

    let mut second = process::Running::spawn(&mut small_batch_worker(&env)).expect("second worker");
    assert!(process::progresses_to(3_000, stall, || decided(&env)).await, "deciding stalled before the last request");
    assert_eq!(counts(&env).await, (2_000, 2_000, 3_000, 3_000), "coupons, holders, requests, distinct requests");
    let status = second.terminate(Duration::from_secs(20)).await.expect("stopping");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_records_delivered_twice_change_nothing_and_a_malformed_record_goes_to_the_dlq() {
    let mut env = TestEnv::new().await;
    // One partition: records are consumed in order, so deciding the last one proves all came before it.
    env.kafka.partitions = 1;
    let kafka = Kafka::new(env.kafka.clone());
    let users = users(&env, 41).await;
    let policy = policy(&env, 30).await;
    let requests: Vec<_> = users[..40].iter().map(|user| request(policy, *user)).collect();
    let mut payloads = encoded(&requests);
    payloads.insert(10, ("7".to_owned(), b"{not json".to_vec()));
    payloads.extend(encoded(&requests)); // every valid record again: a redelivery
    payloads.extend(encoded(&[request(policy, users[40])])); // the sentinel, last
    produce(&kafka, &kafka.producer().expect("producer"), &payloads).await;

    let (mut worker, _) = process::start_ready(WORKERS, &env, "WORKERS_OPS_ADDR").await.expect("worker ready");
    assert!(wait_for_decided(&env, 41, Duration::from_secs(60)).await, "the sentinel was never decided");
    assert_eq!(counts(&env).await, (30, 30, 41, 41), "the duplicates changed nothing");
    let sold_out: i64 = sqlx::query_scalar("SELECT count(*) FROM coupon_issue_requests WHERE reason = 'SOLD_OUT'")
        .fetch_one(&env.pool)
        .await
        .expect("count");
    assert_eq!(sold_out, 11);

    let dlq = kafka.consumer("dlq-reader").expect("consumer");
    dlq.subscribe(&[&kafka.topic_name(Topic::CouponIssueDeadLetter)]).expect("subscribe");
    let dead = tokio::time::timeout(Duration::from_secs(30), dlq.recv()).await.expect("a dead letter").expect("recv");
    assert_eq!(dead.payload(), Some(&b"{not json"[..]));
    let reason = dead.headers().and_then(|h| h.iter().find(|h| h.key == "dlq_reason")).and_then(|h| h.value);
    assert!(reason.is_some_and(|r| String::from_utf8_lossy(r).contains("malformed")), "reason header");
    let status = worker.terminate(Duration::from_secs(20)).await.expect("stopping");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_share_the_work_without_deadlocks_or_over_issue() {
    let env = TestEnv::new().await;
    let kafka = Kafka::new(env.kafka.clone());
    let users = users(&env, 2_000).await;
    let mut policies = Vec::new();
    for _ in 0..4 {
        policies.push(policy(&env, 300).await);
    }
    let requests: Vec<_> = users.iter().enumerate().map(|(i, user)| request(policies[i % 4], *user)).collect();
    produce(&kafka, &kafka.producer().expect("producer"), &encoded(&requests)).await;

    let mut first = process::Running::spawn(&mut small_batch_worker(&env)).expect("first worker");
    let mut second = process::Running::spawn(&mut small_batch_worker(&env)).expect("second worker");
    assert!(wait_for_decided(&env, 2_000, Duration::from_secs(120)).await, "not every request was decided");
    for worker in [&mut first, &mut second] {
        assert!(worker.terminate(Duration::from_secs(20)).await.expect("stopping").success());
    }
    assert_eq!(counts(&env).await, (1_200, 1_200, 2_000, 2_000), "coupons, holders, requests, distinct requests");
    // Backends flush their statistics when they exit, which the workers' connections just did.
    let deadlocks: i64 =
        sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            .fetch_one(&env.pool)
            .await
            .expect("pg_stat_database");
    assert_eq!(deadlocks, 0, "the two workers deadlocked on policy rows");
}

//! Circuit breakers against real services that a test stops and starts again: while a dependency is
//! down the API fails fast (or serves from PostgreSQL), leaves nothing reserved, and recovers by itself.

use crate::coupons::support::{create_policy, create_users, holding_a_place, policy_body};
use crate::helpers::{assert_problem, private_redis, spawn_app_with, TestApp};
use crate::shop::support::{order_body, place, product};
use domain::Role;
use infra::breaker::BreakerArgs;
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::broker::OwnBroker;

/// Opens after 3 outages in a row and stays open 2 s (longer than the fast-fail checks take).
fn quick_breakers() -> BreakerArgs {
    BreakerArgs { failures: 3, open_ms: 2_000, probes: 1 }
}

async fn issue(app: &TestApp, user: i64, policy: i64) -> (u16, String, Duration) {
    let asked = Instant::now();
    let response =
        app.post_json("/api/v3/coupons", &app.token(user, Role::User), &json!({ "couponPolicyId": policy })).await;
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("json");
    (status, body["code"].as_str().unwrap_or_default().to_owned(), asked.elapsed())
}

/// Asks with fresh users until one answer is `status`; each user asks once.
async fn until_answered(
    app: &TestApp,
    users: &mut impl Iterator<Item = i64>,
    policy: i64,
    status: u16,
    within: Duration,
) -> Vec<(u16, String, Duration)> {
    let deadline = Instant::now() + within;
    let mut answers = Vec::new();
    while Instant::now() < deadline {
        let answer = issue(app, users.next().expect("enough users"), policy).await;
        let done = answer.0 == status;
        answers.push(answer);
        if done {
            return answers;
        }
        // A client retrying, as a client told Retry-After would (the condition is the answer itself).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {status} within {within:?}: {answers:?}");
}

/// Issues with fresh users until the readiness report shows `state` for the breaker (e.g. "kafka=open");
/// returns how many requests that took.
async fn until_breaker(app: &TestApp, users: &mut impl Iterator<Item = i64>, policy: i64, state: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut asked = 0;
    while !breaker_states(app).await.contains(state) {
        assert!(Instant::now() < deadline, "the breaker never showed {state}");
        issue(app, users.next().expect("enough users"), policy).await;
        asked += 1;
    }
    asked
}

fn p99(latencies: &mut [Duration]) -> Duration {
    latencies.sort();
    latencies[(latencies.len() * 99).div_ceil(100) - 1]
}

async fn breaker_states(app: &TestApp) -> String {
    let body: serde_json::Value =
        app.client.get(app.url("/health/ready")).send().await.expect("ready").json().await.expect("json");
    body["checks"]["circuit_breakers"]["detail"].as_str().unwrap_or_default().to_owned()
}

/// An app whose producer talks to `broker`, 400 users and a policy of 100, with one 202 behind it.
async fn issuing_through(broker: &OwnBroker) -> (TestApp, std::vec::IntoIter<i64>, i64) {
    let brokers = broker.brokers();
    let app = spawn_app_with(Default::default(), |config| {
        config.kafka.brokers = brokers;
        config.kafka.message_timeout_ms = 1_000;
        config.breakers = quick_breakers();
    })
    .await;
    let mut users = create_users(&app, 400).await.into_iter();
    let policy = create_policy(&app, policy_body(100)).await;
    assert_eq!(issue(&app, users.next().expect("user"), policy).await.0, 202);
    (app, users, policy)
}

/// Each of `users` asks once while the breaker is open: every answer is a 503, and their p99 is fast.
async fn refused_fast(app: &TestApp, users: &[i64], policy: i64) -> Duration {
    let mut latencies = Vec::new();
    for user in users {
        let (status, code, took) = issue(app, *user, policy).await;
        assert_eq!((status, code.as_str()), (503, "DEPENDENCY_UNAVAILABLE"));
        latencies.push(took);
    }
    let p99_open = p99(&mut latencies);
    assert!(p99_open < Duration::from_millis(50), "503s while open answer fast: p99 {p99_open:?}");
    p99_open
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_down_v3_fails_fast_without_reserving_and_resumes_when_it_returns() {
    let mut broker = OwnBroker::start().await.expect("a private broker");
    let (app, mut users, policy) = issuing_through(&broker).await;

    broker.stop();
    let stopped = Instant::now();
    let failing = until_breaker(&app, &mut users, policy, "kafka=open").await;
    let fast_fail: Vec<_> = (0..20).map(|_| users.next().expect("user")).collect();
    let p99_open = refused_fast(&app, &fast_fail, policy).await;
    eprintln!(
        "broker down: open after {failing} requests, {:?} after the stop; p99 of the 503s while open {p99_open:?}",
        stopped.elapsed()
    );

    // Nothing is held for a request that got 503: the users who were refused hold no place in Redis.
    let held = holding_a_place(&app, policy, &fast_fail).await;
    assert!(held.is_empty(), "users {held:?} got 503 but hold a place");

    broker.restart().await.expect("the broker returns");
    let returned = Instant::now();
    until_answered(&app, &mut users, policy, 202, Duration::from_secs(30)).await;
    eprintln!("broker back: issuance resumed {:?} after the restart", returned.elapsed());
    assert!(breaker_states(&app).await.contains("kafka=closed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_v3_fails_fast_balances_come_from_postgres_orders_are_placed_and_all_recovers() {
    let (mut redis, url) = private_redis().await;
    let port: u16 = url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    let app = spawn_app_with(Default::default(), |config| {
        config.redis.url = url.clone();
        config.breakers = quick_breakers();
    })
    .await;
    let mut users = create_users(&app, 400).await.into_iter();
    let policy = create_policy(&app, policy_body(100)).await;
    let (sale, options) = product(&app, 1_000, &[("one", 0, 10)]).await;
    let buyer = users.next().expect("user");
    assert_eq!(issue(&app, users.next().expect("user"), policy).await.0, 202);

    redis.kill();
    let stopped = Instant::now();
    until_breaker(&app, &mut users, policy, "redis=open").await;
    let first_fast = stopped.elapsed();
    let p99_open = refused_fast(&app, &(0..20).map(|_| users.next().expect("user")).collect::<Vec<_>>(), policy).await;
    let balance = app
        .client
        .get(app.url(&format!("/api/v2/points/users/{buyer}/balance")))
        .bearer_auth(app.token(buyer, Role::User))
        .send()
        .await
        .expect("balance");
    assert_eq!(balance.status(), 200, "balances are read from PostgreSQL");
    assert_eq!(
        place(&app, buyer, &order_body(&[(sale, options[0], 1)], json!({}))).await.status(),
        201,
        "orders do not need Redis"
    );
    eprintln!("redis down: first fast 503 after {first_fast:?}; p99 of the 503s while open {p99_open:?}");

    let _restarted = testkit::process::Running::spawn(
        std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null()),
    )
    .expect("redis-server again");
    let returned = Instant::now();
    until_answered(&app, &mut users, policy, 202, Duration::from_secs(30)).await;
    eprintln!(
        "redis back: issuance resumed {:?} after the restart (state rebuilt from the database)",
        returned.elapsed()
    );
    assert_problem(place(&app, buyer, &order_body(&[(sale, options[0], 10)], json!({}))).await, 409, "OUT_OF_STOCK")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_brokers_port_blackholed_the_breaker_opens_v3_fails_fast_and_resumes_once_the_path_opens() {
    if !testkit::firewall::Blackhole::possible() {
        eprintln!(
            "SKIPPED: nftables is not usable here (needs root and the nft command); the blackhole test did not run"
        );
        return;
    }
    let broker = OwnBroker::start().await.expect("a private broker");
    let port: u16 = broker.brokers().rsplit(':').next().and_then(|p| p.parse().ok()).expect("broker port");
    let (app, mut users, policy) = issuing_through(&broker).await;

    let blackhole = testkit::firewall::Blackhole::drop_port(port).expect("the blackhole");
    let cut = Instant::now();
    let failing = until_breaker(&app, &mut users, policy, "kafka=open").await;
    let opened_after = cut.elapsed();
    let p99_open = refused_fast(&app, &(0..20).map(|_| users.next().expect("user")).collect::<Vec<_>>(), policy).await;
    // The path stays cut for 10 s from the first dropped packet: the fault's length, not a synchronisation.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(cut.elapsed())).await;
    drop(blackhole);
    let restored = Instant::now();
    until_answered(&app, &mut users, policy, 202, Duration::from_secs(60)).await;
    eprintln!(
        "broker blackholed: breaker open after {failing} requests, {opened_after:?}; p99 of the 503s {p99_open:?}; \
         issuance resumed {:?} after the path opened",
        restored.elapsed()
    );
}

/// A V3 request sent into a dead path (the broker's port blackholed): the record may or may not reach
/// the log and no acknowledgement comes back. Checks the answer, the place and the status, and returns
/// (app, policy, user, status path) with the path still cut.
async fn unacknowledged_request(broker: &OwnBroker) -> (TestApp, i64, i64, String, testkit::firewall::Blackhole) {
    let port: u16 = broker.brokers().rsplit(':').next().and_then(|p| p.parse().ok()).expect("broker port");
    let (app, mut users, policy) = issuing_through(broker).await;
    let user = users.next().expect("user");
    let blackhole = testkit::firewall::Blackhole::drop_port(port).expect("the blackhole");
    let response =
        app.post_json("/api/v3/coupons", &app.token(user, Role::User), &json!({ "couponPolicyId": policy })).await;
    let problem = assert_problem(response, 503, "ISSUE_OUTCOME_UNKNOWN").await;
    let request = problem["requestId"].as_str().expect("the answer names the request").to_owned();
    assert_eq!(holding_a_place(&app, policy, &[user]).await, [user], "an unknown outcome keeps its place");
    let status_path = format!("/api/v3/coupons/requests/{request}");
    assert_eq!(app.get_json(&status_path, &app.token(user, Role::User)).await["status"], "PENDING");
    (app, policy, user, status_path, blackhole)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_request_the_broker_never_acknowledged_answers_its_id_keeps_its_place_and_reads_pending() {
    if !testkit::firewall::Blackhole::possible() {
        eprintln!("SKIPPED: nftables is not usable here (needs root and the nft command); the test did not run");
        return;
    }
    let broker = OwnBroker::start().await.expect("a private broker");
    unacknowledged_request(&broker).await;
}

// Ignored because the broker, not settle, breaks in about half the runs (measured 2026-12-06): when the
// path opens, the dropped produce request reaches tansu 0.6.0 again, and its idempotence check panics
// (`tansu-storage` lite.rs:503, "more or less than one row", inside `idempotent_message_check`: a batch
// whose producer epoch has no row). Its storage task dies. The process keeps listening but answers every
// call with an error, so nothing can be decided. In the runs where tansu survives, the request is
// decided within 1 s. Run with --run-ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "tansu 0.6.0 panics on the stale produce request (idempotence check, lite.rs:503) in about half the runs"]
async fn a_v3_request_the_broker_never_acknowledged_is_decided_once_the_path_opens() {
    if !testkit::firewall::Blackhole::possible() {
        eprintln!("SKIPPED: nftables is not usable here (needs root and the nft command); the test did not run");
        return;
    }
    let broker = OwnBroker::start().await.expect("a private broker");
    let (app, policy, user, status_path, blackhole) = unacknowledged_request(&broker).await;
    drop(blackhole);
    let brokers = broker.brokers();
    let _worker = crate::coupons::support::Worker::start_with(&app, |config| config.kafka.brokers = brokers);
    let token = app.token(user, Role::User);
    let (app_ref, path, token) = (&app, &status_path, &token);
    let decided = testkit::process::eventually(Duration::from_secs(60), || async move {
        app_ref.get_json(path, token).await["status"] != "PENDING"
    })
    .await;
    assert!(decided, "the request was sent again and decided once the path opened");
    assert_eq!(app.get_json(&status_path, token).await["status"], "ISSUED");
    let coupons: i64 = sqlx::query_scalar("SELECT count(*) FROM coupons WHERE policy_id = $1 AND user_id = $2")
        .bind(policy)
        .bind(user)
        .fetch_one(&app.env.pool)
        .await
        .expect("coupons");
    assert_eq!(coupons, 1, "issued once, however many copies arrived");
    assert_eq!(holding_a_place(&app, policy, &[user]).await, [user], "the issued coupon keeps its place");
}

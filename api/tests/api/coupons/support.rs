use crate::helpers::TestApp;
use domain::Role;
use infra::config::TelemetryArgs;
use serde_json::{json, Value};
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Inserts `count` users in one statement and returns their ids.
pub async fn create_users(app: &TestApp, count: usize) -> Vec<i64> {
    sqlx::query_scalar(
        "INSERT INTO users (email, password_hash, name) \
         SELECT 'user' || g || '@rush.test', 'x', 'Rush ' || g FROM generate_series(1, $1) g RETURNING id",
    )
    .bind(count as i32)
    .fetch_all(&app.env.pool)
    .await
    .expect("inserting users")
}

pub fn admin_token(app: &TestApp) -> String {
    app.token(1, Role::Admin)
}

pub fn policy_body(quantity: i32) -> Value {
    let now = chrono::Utc::now();
    json!({
        "name": "First come",
        "discountType": "FIXED_AMOUNT",
        "discountValue": 3000,
        "minimumOrderAmount": 10000,
        "totalQuantity": quantity,
        "startTime": now - chrono::Duration::minutes(1),
        "endTime": now + chrono::Duration::hours(1),
        "couponValidDays": 7,
    })
}

pub async fn create_policy(app: &TestApp, body: Value) -> i64 {
    let response = app
        .client
        .post(app.url("/api/v3/coupon-policies"))
        .bearer_auth(admin_token(app))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.expect("json")["id"].as_i64().expect("policy id")
}

/// What a rush got back: response counts by status and by problem code, and the V3 request ids.
#[derive(Debug, Default)]
pub struct Tally {
    pub statuses: BTreeMap<u16, usize>,
    pub codes: BTreeMap<String, usize>,
    pub request_ids: Vec<String>,
}

/// Every user asks `times` times, interleaved, with at most `in_flight` requests outstanding.
pub async fn rush(app: &TestApp, version: &str, policy: i64, users: &[i64], times: usize, in_flight: usize) -> Tally {
    let gate = Arc::new(Semaphore::new(in_flight));
    let url = app.url(&format!("/api/{version}/coupons"));
    let mut tasks = Vec::new();
    for round in 0..times {
        for (index, user) in users.iter().enumerate() {
            // Alternate direction per round so each user's two requests are far apart in the queue.
            let user = if round % 2 == 0 { *user } else { users[users.len() - 1 - index] };
            let (client, url, token, gate) =
                (app.client.clone(), url.clone(), app.token(user, Role::User), gate.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("semaphore");
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({ "couponPolicyId": policy }))
                    .send()
                    .await
                    .expect("request");
                (response.status().as_u16(), response.json::<Value>().await.expect("json body"))
            }));
        }
    }
    let mut tally = Tally::default();
    for task in tasks {
        let (status, body) = task.await.expect("request task");
        *tally.statuses.entry(status).or_default() += 1;
        if let Some(code) = body["code"].as_str() {
            *tally.codes.entry(code.to_owned()).or_default() += 1;
        }
        if let Some(request_id) = body["requestId"].as_str() {
            tally.request_ids.push(request_id.to_owned());
        }
    }
    tally
}

/// The invariants read from the database: (coupons, distinct holders, the policy's issued count).
pub async fn coupon_counts(app: &TestApp, policy: i64) -> (i64, i64, i32) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM coupons WHERE policy_id = $1), \
                (SELECT count(DISTINCT user_id) FROM coupons WHERE policy_id = $1), \
                (SELECT issued_quantity FROM coupon_policies WHERE id = $1)",
    )
    .bind(policy)
    .fetch_one(&app.env.pool)
    .await
    .expect("counts")
}

/// How many coupons the requests `ids` (V3 request ids, as the API answered them) became.
pub async fn coupons_of_requests(app: &TestApp, ids: &[String]) -> usize {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|id| id.parse().expect("a request id")).collect();
    let issued: i64 = sqlx::query_scalar("SELECT count(*) FROM coupons WHERE request_id = ANY($1)")
        .bind(&ids)
        .fetch_one(&app.env.pool)
        .await
        .expect("count");
    issued as usize
}

/// Which of `users` hold a place (a reservation) of `policy` in Redis.
pub async fn holding_a_place(app: &TestApp, policy: i64, users: &[i64]) -> Vec<i64> {
    let client = redis::Client::open(app.env.redis.url.as_str()).expect("url");
    let mut redis = client.get_multiplexed_async_connection().await.expect("redis");
    let key = format!("{}coupon:policy:{policy}:users", app.env.redis.key_prefix);
    let mut holding = Vec::new();
    for user in users {
        let held: bool = redis::cmd("SISMEMBER").arg(&key).arg(user).query_async(&mut redis).await.expect("SISMEMBER");
        if held {
            holding.push(*user);
        }
    }
    holding
}

/// The issuance worker, in-process, against the app's services; stopped on drop.
pub struct Worker {
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Worker {
    pub fn start(app: &TestApp) -> Self {
        Self::start_with(app, |_| {})
    }

    /// Like [`Worker::start`], with a chance to change the configuration (e.g. Redis through sentinels).
    pub fn start_with(app: &TestApp, adjust: impl FnOnce(&mut settle_workers::WorkersConfig)) -> Self {
        Self::start_on(&app.env, adjust)
    }

    /// The worker over `env`'s services (for a test whose API runs as a process).
    pub fn start_on(env: &testkit::TestEnv, adjust: impl FnOnce(&mut settle_workers::WorkersConfig)) -> Self {
        let mut config = <settle_workers::WorkersConfig as clap::Parser>::parse_from([
            "settle-workers",
            "--only=coupon-issuance",
            "--concurrency=2",
            "--batch-size=200",
            "--batch-wait-ms=10",
            "--max-attempts=3",
            "--ops-addr=127.0.0.1:0",
        ]);
        config.postgres = env.postgres.clone();
        config.redis = env.redis.clone();
        config.kafka = env.kafka.clone();
        config.telemetry = TelemetryArgs { json: false, filter: "warn".to_owned() };
        adjust(&mut config);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(settle_workers::run(config, shutdown.clone()));
        Self { shutdown, task: Some(task) }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("worker task").expect("worker stopped cleanly");
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Waits until `expected` issue requests have a final outcome in the database: a verdict, or a rejection
/// recorded when the worker dead-lettered them.
pub async fn wait_for_verdicts(app: &TestApp, expected: i64) {
    let pool = app.env.pool.clone();
    let decided = testkit::process::eventually(Duration::from_secs(90), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT (SELECT count(*) FROM coupon_issue_requests WHERE status <> 'PENDING') \
                      + (SELECT count(*) FROM coupon_issue_dead_letters)",
            )
            .fetch_one(&pool)
            .await
            .expect("count")
                >= expected
        }
    })
    .await;
    assert!(decided, "the worker did not decide {expected} requests within 90 s");
}

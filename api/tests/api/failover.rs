//! Redis Sentinel: the master killed with SIGKILL in the middle of a V3 rush. The API and the worker
//! find the new master through the sentinels, issuance comes back within 10 s of the kill, and the
//! database ends up with exactly one coupon per accepted request, never more than the quantity.

use crate::coupons::support::{
    coupon_counts, coupons_of_requests, create_policy, create_users, policy_body, wait_for_verdicts, Worker,
};
use crate::helpers::{spawn_app_with, TestApp};
use domain::Role;
use infra::{breaker::BreakerArgs, config::RedisArgs};
use serde_json::json;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use testkit::{
    process::eventually,
    sentinel::{SentinelTopology, MASTER_NAME},
};
use tokio::task::JoinSet;

const QUANTITY: i32 = 5_000;
const CLIENTS: usize = 4;

/// One answered request: its status, its request id if accepted, and when it was sent and answered.
#[derive(Debug, Clone)]
struct Answer {
    sent: Instant,
    answered: Instant,
    status: u16,
    request: Option<String>,
}

/// `base` with the master found through `sentinels`; the URL then gives only credentials and database.
fn through(base: &RedisArgs, sentinels: Vec<String>) -> RedisArgs {
    RedisArgs { url: "redis://127.0.0.1:1".to_owned(), sentinels, master_name: MASTER_NAME.to_owned(), ..base.clone() }
}

/// `CLIENTS` loops, each sending V3 requests for fresh users (one request per user) until `stop` is set;
/// a 503 is followed by a 50 ms pause, as a client told Retry-After would, then the next user.
fn rush(
    app: &TestApp,
    users: Vec<i64>,
    policy: i64,
    answers: Arc<Mutex<Vec<Answer>>>,
    stop: Arc<AtomicBool>,
) -> JoinSet<()> {
    let tokens: Vec<String> = users.iter().map(|user| app.token(*user, Role::User)).collect();
    let users = Arc::new(Mutex::new(tokens.into_iter()));
    let mut clients = JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, url) = (app.client.clone(), app.url("/api/v3/coupons"));
        let (users, answers, stop) = (users.clone(), answers.clone(), stop.clone());
        clients.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let Some(token) = users.lock().expect("users").next() else { break };
                let sent = Instant::now();
                let response =
                    client.post(&url).bearer_auth(token).json(&json!({ "couponPolicyId": policy })).send().await;
                let response = response.expect("the API answers");
                let status = response.status().as_u16();
                let body: serde_json::Value = response.json().await.expect("json");
                let request = body["requestId"].as_str().map(str::to_owned);
                answers.lock().expect("answers").push(Answer { sent, answered: Instant::now(), status, request });
                if status == 503 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
    }
    clients
}

fn accepted(answers: &Mutex<Vec<Answer>>) -> usize {
    answers.lock().expect("answers").iter().filter(|a| a.status == 202).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_redis_master_mid_rush_fails_over_within_10_s_without_over_issuing() {
    let mut topology = SentinelTopology::start().await.expect("a sentinel topology");
    let old_master = topology.named_master().await.expect("the master");
    let breakers = BreakerArgs { failures: 3, open_ms: 500, probes: 1 };
    let sentinels = topology.sentinel_addresses();
    let app = spawn_app_with(Default::default(), |config| {
        config.redis = through(&config.redis, sentinels.clone());
        config.breakers = breakers.clone();
    })
    .await;
    let worker = Worker::start_with(&app, |config| {
        config.redis = through(&app.env.redis, sentinels.clone());
        config.breakers = breakers.clone();
    });
    let users = create_users(&app, 8_000).await;
    let policy = create_policy(&app, policy_body(QUANTITY)).await;

    let (answers, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
    let mut clients = rush(&app, users, policy, answers.clone(), stop.clone());
    assert!(eventually(Duration::from_secs(30), || std::future::ready(accepted(&answers) >= 200)).await);
    topology.kill_master();
    let killed = Instant::now();
    let back = || {
        let answers = answers.lock().expect("answers");
        answers.iter().filter(|a| a.status == 202 && a.sent > killed).map(|a| a.answered).min()
    };
    assert!(
        eventually(Duration::from_secs(20), || std::future::ready(back().is_some())).await,
        "no 202 after the kill"
    );
    let failover = back().expect("a 202 after the kill") - killed;
    let resumed = accepted(&answers);
    assert!(eventually(Duration::from_secs(10), || std::future::ready(accepted(&answers) >= resumed + 200)).await);
    stop.store(true, Ordering::SeqCst);
    while clients.join_next().await.is_some() {}

    let answers = answers.lock().expect("answers").clone();
    let new_master = topology.named_master().await.expect("the new master");
    assert_ne!(new_master, old_master, "the sentinels promoted the replica");
    let unexpected: Vec<_> = answers.iter().filter(|a| ![202, 503].contains(&a.status)).collect();
    assert!(unexpected.is_empty(), "only 202 and 503 while failing over: {unexpected:?}");
    let accepted: Vec<String> = answers.iter().filter_map(|a| a.request.clone()).collect();
    let refused = answers.iter().filter(|a| a.status == 503).count();
    eprintln!(
        "sentinel failover: first 202 through the new master {failover:?} after SIGKILL; {} accepted, {refused} 503s",
        accepted.len()
    );
    assert!(failover < Duration::from_secs(10), "issuance back within 10 s of the kill, took {failover:?}");

    wait_for_verdicts(&app, accepted.len() as i64).await;
    assert_eq!(coupons_of_requests(&app, &accepted).await, accepted.len(), "every 202 became a coupon");
    let (coupons, holders, issued_quantity) = coupon_counts(&app, policy).await;
    assert_eq!((coupons, holders), (accepted.len() as i64, accepted.len() as i64), "no duplicates, nothing else");
    assert!(issued_quantity <= QUANTITY && i64::from(issued_quantity) == coupons, "never over the quantity");
    worker.stop().await;
}

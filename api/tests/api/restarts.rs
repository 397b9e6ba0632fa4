//! PostgreSQL restarted with `pg_ctl restart -m immediate` (every backend killed) in the middle of
//! writes, on a server of the test's own. Clients do what an operator's clients do: on 503 they wait
//! and retry with the same Idempotency-Key. Nobody is told 500, every write lands exactly once, a
//! user told 503 for a write that did commit gets the committed answer on retry, and the API's pool
//! recovers without a restart.

use crate::coupons::support::{
    coupon_counts, coupons_of_requests, create_policy, create_users, policy_body, wait_for_verdicts, Worker,
};
use crate::helpers::{spawn_app_on, TestApp};
use domain::Role;
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use testkit::{postgres::PrivatePostgres, process::eventually, TestEnv};
use tokio::task::JoinSet;

const CLIENTS: usize = 8;

async fn app_on_private_postgres() -> (PrivatePostgres, TestApp) {
    let server = PrivatePostgres::start().expect("a private PostgreSQL");
    let env = TestEnv::on_postgres(server.admin_url()).await;
    let app = spawn_app_on(env, Default::default(), |config| config.postgres.acquire_timeout_ms = 1_000).await;
    (server, app)
}

/// Every status a client saw, and each write's final answer.
#[derive(Default, Debug)]
struct Seen {
    statuses: BTreeMap<u16, usize>,
    finals: Vec<(i64, u16, Value)>,
}

/// Sends `request(user)` with the same Idempotency-Key until it is not answered 503 (waiting the
/// Retry-After it was given, as a client would) or 60 s pass.
async fn until_decided(
    client: &reqwest::Client,
    request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    seen: &mut BTreeMap<u16, usize>,
) -> (u16, Value) {
    let key = uuid::Uuid::new_v4().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = request(client).header("Idempotency-Key", &key).send().await.expect("the API answers");
        let status = response.status().as_u16();
        *seen.entry(status).or_default() += 1;
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let body: Value = response.json().await.expect("a JSON body");
        if status != 503 || Instant::now() > deadline {
            return (status, body);
        }
        assert!(retry_after.is_some(), "a 503 says when to retry: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `CLIENTS` clients working through `users`, one write each; `done` counts finished writes.
async fn writes<F>(app: &TestApp, users: Vec<i64>, done: Arc<AtomicUsize>, request: F) -> Seen
where
    F: Fn(&reqwest::Client, i64) -> reqwest::RequestBuilder + Clone + Send + Sync + 'static,
{
    let queue = Arc::new(std::sync::Mutex::new(users.into_iter()));
    let mut clients = JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, queue, done, request) = (app.client.clone(), queue.clone(), done.clone(), request.clone());
        clients.spawn(async move {
            let mut seen = Seen::default();
            loop {
                let Some(user) = queue.lock().expect("queue").next() else { return seen };
                let (status, body) = until_decided(&client, |c| request(c, user), &mut seen.statuses).await;
                seen.finals.push((user, status, body));
                done.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let mut all = Seen::default();
    while let Some(seen) = clients.join_next().await {
        let seen = seen.expect("client");
        for (status, count) in seen.statuses {
            *all.statuses.entry(status).or_default() += count;
        }
        all.finals.extend(seen.finals);
    }
    all
}

/// Restarts `server` once `done` reaches `after`; returns how long the restart took.
async fn restart_when(server: &PrivatePostgres, done: &AtomicUsize, after: usize) -> Duration {
    assert!(eventually(Duration::from_secs(60), || std::future::ready(done.load(Ordering::SeqCst) >= after)).await);
    let started = Instant::now();
    server.restart_immediately().expect("pg_ctl restart -m immediate");
    started.elapsed()
}

fn assert_only(seen: &Seen, allowed: &[u16]) {
    let unexpected: Vec<_> = seen.statuses.keys().filter(|s| !allowed.contains(s)).collect();
    assert!(unexpected.is_empty(), "statuses {unexpected:?} in {:?}", seen.statuses);
}

/// `users` each asking `version` once for a coupon of a fresh policy, PostgreSQL restarted after
/// `restart_after` of them were decided. Returns the policy, what the clients saw and the restart's length.
async fn coupon_rush(
    server: &PrivatePostgres,
    app: &TestApp,
    version: &str,
    users: usize,
    restart_after: usize,
) -> (i64, Seen, Duration) {
    let users = create_users(app, users).await;
    let policy = create_policy(app, policy_body(10_000)).await;
    let tokens: BTreeMap<i64, String> = users.iter().map(|u| (*u, app.token(*u, Role::User))).collect();
    let done = Arc::new(AtomicUsize::new(0));
    let url = app.url(&format!("/api/{version}/coupons"));
    let rush = writes(app, users, done.clone(), move |client, user| {
        client.post(&url).bearer_auth(&tokens[&user]).json(&json!({ "couponPolicyId": policy }))
    });
    let (seen, took) = tokio::join!(rush, restart_when(server, &done, restart_after));
    (policy, seen, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_rush_through_a_postgres_restart_answers_503_never_500_and_every_retry_gets_its_coupon() {
    let (server, app) = app_on_private_postgres().await;
    let (policy, rush, took) = coupon_rush(&server, &app, "v2", 600, 150).await;

    eprintln!("V2 rush through a PostgreSQL restart ({took:?}): statuses {:?}", rush.statuses);
    assert_only(&rush, &[201, 503]);
    assert!(rush.statuses.get(&503).is_some_and(|&n| n > 0), "the restart was felt: {:?}", rush.statuses);
    let answered: BTreeMap<i64, i64> = rush
        .finals
        .iter()
        .map(|(user, status, body)| {
            assert_eq!(*status, 201, "user {user}'s write ended with {status}: {body}");
            (*user, body["id"].as_i64().expect("a coupon id"))
        })
        .collect();
    let held: BTreeMap<i64, i64> = sqlx::query_as("SELECT user_id, id FROM coupons WHERE policy_id = $1")
        .bind(policy)
        .fetch_all(&app.env.pool)
        .await
        .expect("coupons")
        .into_iter()
        .collect();
    assert_eq!(held, answered, "each user holds exactly the coupon they were given, nobody holds one unanswered");
    assert_eq!(coupon_counts(&app, policy).await, (600, 600, 600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_writes_through_a_postgres_restart_apply_exactly_once_and_balances_equal_ledgers() {
    let (server, app) = app_on_private_postgres().await;
    let users = create_users(&app, 300).await;
    let admin = app.token(1, Role::Admin);
    let done = Arc::new(AtomicUsize::new(0));
    let url = app.url("/api/v2/points/earn");
    let earned = writes(&app, users.clone(), done.clone(), move |client, user| {
        client.post(&url).bearer_auth(&admin).json(&json!({ "userId": user, "amount": 100 }))
    });
    let (earned, took) = tokio::join!(earned, restart_when(&server, &done, 100));
    let tokens: BTreeMap<i64, String> = users.iter().map(|u| (*u, app.token(*u, Role::User))).collect();
    let url = app.url("/api/v2/points/use");
    let spent = writes(&app, users.iter().flat_map(|u| [*u, *u]).collect(), done.clone(), move |client, user| {
        client.post(&url).bearer_auth(&tokens[&user]).json(&json!({ "amount": 30 }))
    });
    let (spent, _) = tokio::join!(spent, restart_when(&server, &done, 300 + 200));

    eprintln!(
        "point writes through PostgreSQL restarts ({took:?}): earn {:?}, use {:?}",
        earned.statuses, spent.statuses
    );
    for seen in [&earned, &spent] {
        assert_only(seen, &[200, 201, 503]);
        assert!(seen.finals.iter().all(|(_, status, _)| matches!(status, 200 | 201)), "{:?}", seen.statuses);
    }
    let ledgers: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT u.id, b.balance, coalesce(sum(p.amount), 0)::bigint, count(p.id) FROM users u \
         JOIN point_balances b ON b.user_id = u.id LEFT JOIN points p ON p.user_id = u.id \
         WHERE u.id = ANY($1) GROUP BY u.id, b.balance",
    )
    .bind(&users)
    .fetch_all(&app.env.pool)
    .await
    .expect("ledgers");
    assert_eq!(ledgers.len(), users.len(), "every user has a balance");
    for (user, balance, ledger, entries) in ledgers {
        assert_eq!((balance, ledger, entries), (40, 40, 3), "user {user}: one earn and two uses, each once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_rush_through_a_postgres_restart_persists_every_accepted_request_once() {
    let (server, app) = app_on_private_postgres().await;
    let worker = Worker::start(&app);
    let (policy, rush, took) = coupon_rush(&server, &app, "v3", 1_500, 500).await;

    eprintln!("V3 rush through a PostgreSQL restart ({took:?}): statuses {:?}", rush.statuses);
    assert_only(&rush, &[202, 503]);
    let accepted: Vec<String> = rush
        .finals
        .iter()
        .map(|(_, status, body)| {
            assert_eq!(*status, 202, "{body}");
            body["requestId"].as_str().expect("request id").to_owned()
        })
        .collect();
    wait_for_verdicts(&app, accepted.len() as i64).await;
    let issued = coupons_of_requests(&app, &accepted).await;
    assert_eq!(issued, accepted.len(), "every accepted request became exactly one coupon");
    assert_eq!(coupon_counts(&app, policy).await, (1_500, 1_500, 1_500));
    worker.stop().await;
}

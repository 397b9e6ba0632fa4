//! Clients that give up mid-request must not leave a transaction open on a pooled connection (the
//! benchmark once saw every later V2 request fail with "current transaction is aborted").

use super::support::{create_policy, create_users, policy_body, rush};
use crate::helpers::spawn_app;
use domain::Role;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_abandoned_by_their_clients_leave_no_open_transaction_behind() {
    let app = spawn_app().await;
    let users = create_users(&app, 400).await;
    let policy = create_policy(&app, policy_body(1_000)).await;
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(2)).build().expect("client");
    let mut abandoned = Vec::new();
    for (index, user) in users[..300].iter().enumerate() {
        let version = ["v1", "v2", "v3"][index % 3];
        let request = impatient
            .post(app.url(&format!("/api/{version}/coupons")))
            .bearer_auth(app.token(*user, Role::User))
            .json(&serde_json::json!({ "couponPolicyId": policy }))
            .send();
        abandoned.push(tokio::spawn(request));
    }
    for request in abandoned {
        let _ = request.await.expect("task"); // most time out on the client side: that is the point
    }

    let pool = app.env.pool.clone();
    let settled = testkit::process::eventually(Duration::from_secs(20), || {
        let pool = pool.clone();
        async move {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
            )
            .fetch_one(&pool)
            .await
            .expect("pg_stat_activity");
            open == 0
        }
    })
    .await;
    assert!(settled, "a connection stayed idle in a transaction after its client left");

    let tally = rush(&app, "v2", policy, &users[300..], 1, 50).await;
    assert_eq!(tally.statuses.get(&201), Some(&100), "later requests still work: {tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_v2_request_abandoned_after_its_reservation_still_ends_with_redis_and_the_database_agreeing() {
    let app = spawn_app().await;
    let users = create_users(&app, 300).await;
    let policy = create_policy(&app, policy_body(1_000)).await;
    let mut abandoned = Vec::new();
    for (index, user) in users.iter().enumerate() {
        // Give up at 1 to 6 ms: between the Redis reservation and the insert, for many of them.
        let client =
            reqwest::Client::builder().timeout(Duration::from_millis(1 + (index % 6) as u64)).build().expect("client");
        let request = client
            .post(app.url("/api/v2/coupons"))
            .bearer_auth(app.token(*user, Role::User))
            .json(&serde_json::json!({ "couponPolicyId": policy }))
            .send();
        abandoned.push(tokio::spawn(request));
    }
    for request in abandoned {
        let _ = request.await.expect("task");
    }

    let redis = infra::redis_client::Redis::connect(&app.env.redis).await.expect("redis");
    let key = redis.key(&format!("coupon:policy:{policy}:users"));
    let pool = app.env.pool.clone();
    let agree = testkit::process::eventually(Duration::from_secs(20), || {
        let (pool, redis, key) = (pool.clone(), redis.clone(), key.clone());
        async move {
            let mut reserved: Vec<i64> =
                redis::cmd("SMEMBERS").arg(&key).query_async(&mut redis.connection()).await.expect("SMEMBERS");
            let mut holders: Vec<i64> = sqlx::query_scalar("SELECT user_id FROM coupons WHERE policy_id = $1")
                .bind(policy)
                .fetch_all(&pool)
                .await
                .expect("holders");
            reserved.sort_unstable();
            holders.sort_unstable();
            reserved == holders
        }
    })
    .await;
    assert!(agree, "a reservation was left without its coupon (or the reverse) after clients gave up");
}

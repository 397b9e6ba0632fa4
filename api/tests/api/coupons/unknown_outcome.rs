//! V2 when the database was lost while a request committed: the client was told 503, and nobody knows
//! whether the coupon exists. The request's place stays in flight in Redis, so a retry is decided by the
//! database: with the same Idempotency-Key it gets the committed coupon; without a committed coupon it
//! finishes the open reservation. (restarts.rs drives the same path with a real restart, where hitting
//! the commit itself is a matter of timing; here each state is made exactly.)

use super::support::{coupon_counts, create_policy, create_users, policy_body};
use crate::helpers::{assert_problem, spawn_app, TestApp};
use domain::{PolicyId, Role, UserId};
use infra::{coupons::CouponStock, redis_client::Redis};
use redis::AsyncCommands;
use serde_json::json;

async fn issue_v2(app: &TestApp, user: i64, policy: i64, key: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v2/coupons"))
        .bearer_auth(app.token(user, Role::User))
        .json(&json!({ "couponPolicyId": policy }));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.expect("request")
}

/// Puts `user` back in flight, as a request whose commit outcome was unknown leaves them.
async fn leave_in_flight(app: &TestApp, policy: i64, user: i64) {
    let redis = Redis::connect(&app.env.redis).await.expect("redis");
    let key = redis.key(&format!("coupon:policy:{policy}:inflight"));
    let _: () = redis.connection().zadd(key, user, chrono::Utc::now().timestamp_millis()).await.expect("ZADD");
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_coupon_that_committed_while_the_client_was_told_503() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let policy = create_policy(&app, policy_body(10)).await;
    let first = issue_v2(&app, user, policy, Some("retry-me")).await;
    assert_eq!(first.status(), 201);
    let coupon: serde_json::Value = first.json().await.expect("json");
    // The answer never reached the client and the settlement never reached Redis.
    leave_in_flight(&app, policy, user).await;

    let retry = issue_v2(&app, user, policy, Some("retry-me")).await;
    assert_eq!(retry.status(), 201, "the retry is answered as the first request was");
    assert_eq!(retry.json::<serde_json::Value>().await.expect("json")["id"], coupon["id"], "the same coupon");
    // Another request (no key) is a second ask, not a retry: the user holds the coupon.
    assert_problem(issue_v2(&app, user, policy, None).await, 409, "ALREADY_ISSUED").await;
    assert_eq!(coupon_counts(&app, policy).await, (1, 1, 1));
}

#[tokio::test]
async fn a_retry_after_a_commit_that_did_not_happen_finishes_the_open_reservation() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let policy = create_policy(&app, policy_body(10)).await;
    // Reserved, then the database was lost before the insert committed: the place is held, no coupon.
    let stock = CouponStock::new(Redis::connect(&app.env.redis).await.expect("redis"));
    let ids = (PolicyId::parse(policy).expect("id"), UserId::parse(user).expect("id"));
    stock.reserve(&app.env.pool, ids.0, ids.1, None).await.expect("reserve");

    let retry = issue_v2(&app, user, policy, Some("first-try")).await;
    assert_eq!(retry.status(), 201, "the retry is not refused as a second ask");
    assert_problem(issue_v2(&app, user, policy, Some("second-ask")).await, 409, "ALREADY_ISSUED").await;
    assert_eq!(coupon_counts(&app, policy).await, (1, 1, 1), "one coupon, counted once");
}

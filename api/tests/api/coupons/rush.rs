//! The headline invariant under a first-come rush: 1,000 users asking twice each (2,000 concurrent
//! requests) for 300 coupons get exactly 300, never two to one user, and every refusal is a 409.

use super::support::{coupon_counts, create_policy, create_users, policy_body, rush, wait_for_verdicts, Worker};
use crate::helpers::spawn_app;
use redis::AsyncCommands;

const USERS: usize = 1_000;
const QUANTITY: i32 = 300;
const IN_FLIGHT: usize = 200;

async fn synchronous_rush_issues_exactly_the_quantity(version: &str) {
    let app = spawn_app().await;
    let users = create_users(&app, USERS).await;
    let policy = create_policy(&app, policy_body(QUANTITY)).await;

    let tally = rush(&app, version, policy, &users, 2, IN_FLIGHT).await;

    assert_eq!(tally.statuses.get(&201), Some(&(QUANTITY as usize)), "{version}: {tally:?}");
    assert_eq!(tally.statuses.get(&409), Some(&(2 * USERS - QUANTITY as usize)), "{version}: {tally:?}");
    assert_eq!(tally.statuses.len(), 2, "{version}: only 201 and 409 expected: {tally:?}");
    assert_eq!(coupon_counts(&app, policy).await, (300, 300, QUANTITY), "{version}: coupons, holders, issued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v1_issues_exactly_the_quantity_under_2000_concurrent_requests() {
    synchronous_rush_issues_exactly_the_quantity("v1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v2_issues_exactly_the_quantity_under_2000_concurrent_requests() {
    synchronous_rush_issues_exactly_the_quantity("v2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v3_accepts_and_persists_exactly_the_quantity_under_2000_concurrent_requests() {
    let app = spawn_app().await;
    let users = create_users(&app, USERS).await;
    let policy = create_policy(&app, policy_body(QUANTITY)).await;
    let worker = Worker::start(&app);

    let tally = rush(&app, "v3", policy, &users, 2, IN_FLIGHT).await;

    assert_eq!(tally.statuses.get(&202), Some(&(QUANTITY as usize)), "{tally:?}");
    assert_eq!(tally.statuses.get(&409), Some(&(2 * USERS - QUANTITY as usize)), "{tally:?}");
    wait_for_verdicts(&app, i64::from(QUANTITY)).await;
    assert_eq!(coupon_counts(&app, policy).await, (300, 300, QUANTITY));
    let issued: i64 = sqlx::query_scalar("SELECT count(*) FROM coupon_issue_requests WHERE status = 'ISSUED'")
        .fetch_one(&app.env.pool)
        .await
        .expect("count");
    assert_eq!(issued, i64::from(QUANTITY), "every accepted request became a coupon");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v3_never_over_issues_when_redis_loses_its_state_in_the_middle_of_the_rush() {
    let app = spawn_app().await;
    let users = create_users(&app, USERS).await;
    let policy = create_policy(&app, policy_body(QUANTITY)).await;
    let worker = Worker::start(&app);

    let first = rush(&app, "v3", policy, &users[..USERS / 2], 1, IN_FLIGHT).await;
    // Lose every key this test owns (a flush, as far as this test's state is concerned).
    let redis = infra::redis_client::Redis::connect(&app.env.redis).await.expect("redis");
    let keys: Vec<String> = redis.connection().keys(format!("{}*", app.env.redis.key_prefix)).await.expect("KEYS");
    assert!(!keys.is_empty(), "the rush left no Redis state to lose");
    let _: () = redis.connection().del(keys).await.expect("DEL");
    let second = rush(&app, "v3", policy, &users, 2, IN_FLIGHT).await;

    let accepted = first.request_ids.len() + second.request_ids.len();
    assert!(accepted >= QUANTITY as usize, "accepted only {accepted}");
    wait_for_verdicts(&app, accepted as i64).await;
    let (coupons, holders, issued) = coupon_counts(&app, policy).await;
    assert_eq!((coupons, holders, issued), (300, 300, QUANTITY), "never more than the quantity, never two each");
    worker.stop().await;
}

//! Every terminal outcome of a V3 request settles its Redis reservation: a request the worker can never
//! decide (dead-lettered) gives its place back, so the policy still issues its whole quantity.

use super::support::{coupon_counts, create_policy, create_users, policy_body, rush, wait_for_verdicts, Worker};
use crate::helpers::spawn_app;
use domain::Role;
use redis::AsyncCommands;
use serde_json::Value;

const VALID_USERS: usize = 270;
const GHOSTS: i64 = 30;
const QUANTITY: i32 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v3_issues_exactly_the_quantity_to_valid_users_when_a_tenth_of_the_requests_are_dead_lettered() {
    let app = spawn_app().await;
    let valid = create_users(&app, VALID_USERS).await;
    // Signed tokens for users the database does not know: the API reserves for them, the worker can only
    // dead-letter their requests (unknown user).
    let first_ghost = valid.iter().max().expect("users") + 1_000;
    let ghosts: Vec<i64> = (0..GHOSTS).map(|n| first_ghost + n).collect();
    let mut crowd = valid.clone();
    for (slot, ghost) in ghosts.iter().enumerate() {
        crowd.insert(slot * 10, *ghost); // one in ten, spread through the queue
    }
    let policy = create_policy(&app, policy_body(QUANTITY)).await;
    let worker = Worker::start(&app);

    let mut accepted = 0;
    let mut ghost_requests = Vec::new();
    let mut waves = 0;
    // Users without a coupon keep asking, as in a real rush, until a wave has nothing left to accept.
    loop {
        waves += 1;
        assert!(waves <= 10, "still accepting after 10 waves");
        let asking = if waves == 1 { crowd.clone() } else { without_coupon(&app, policy, &valid).await };
        let tally = rush(&app, "v3", policy, &asking, 1, 100).await;
        if waves == 1 {
            ghost_requests = tally.request_ids.clone();
        }
        accepted += tally.request_ids.len();
        wait_for_verdicts(&app, accepted as i64).await;
        if tally.request_ids.is_empty() {
            break;
        }
    }

    assert_eq!(coupon_counts(&app, policy).await, (100, 100, QUANTITY), "coupons, holders, issued");
    let dead: Vec<(uuid::Uuid, i64, String)> =
        sqlx::query_as("SELECT request_id, user_id, reason FROM coupon_issue_dead_letters ORDER BY user_id")
            .fetch_all(&app.env.pool)
            .await
            .expect("dead letters");
    assert!(!dead.is_empty(), "the first wave let no ghost in: the test proves nothing");
    assert!(dead.iter().all(|(_, user, reason)| ghosts.contains(user) && reason == "USER_NOT_FOUND"), "{dead:?}");

    // A dead-lettered request reads REJECTED with its reason, not PENDING for a day.
    let (request, ghost, _) = &dead[0];
    assert!(ghost_requests.contains(&request.to_string()));
    let status: Value =
        app.get_json(&format!("/api/v3/coupons/requests/{request}"), &app.token(*ghost, Role::User)).await;
    assert_eq!((status["status"].as_str(), status["reason"].as_str()), (Some("REJECTED"), Some("USER_NOT_FOUND")));

    // Redis agrees with the database: the quantity's places are taken and nothing is left in flight.
    let redis = infra::redis_client::Redis::connect(&app.env.redis).await.expect("redis");
    let places: i64 =
        redis.connection().scard(redis.key(&format!("coupon:policy:{policy}:users"))).await.expect("SCARD");
    let in_flight: i64 =
        redis.connection().zcard(redis.key(&format!("coupon:policy:{policy}:inflight"))).await.expect("ZCARD");
    assert_eq!((places, in_flight), (i64::from(QUANTITY), 0));
    worker.stop().await;
}

async fn without_coupon(app: &crate::helpers::TestApp, policy: i64, users: &[i64]) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT u FROM unnest($2::bigint[]) u WHERE NOT EXISTS (SELECT FROM coupons WHERE policy_id = $1 AND user_id = u)",
    )
    .bind(policy)
    .bind(users)
    .fetch_all(&app.env.pool)
    .await
    .expect("users without a coupon")
}

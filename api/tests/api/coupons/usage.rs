use super::support::{create_policy, create_users, policy_body};
use crate::helpers::{assert_problem, spawn_app, TestApp};
use crate::shop::support::bare_order;
use domain::Role;
use serde_json::{json, Value};

async fn issued_coupon(app: &TestApp, user: i64) -> i64 {
    let policy = create_policy(app, policy_body(5)).await;
    let response = app
        .client
        .post(app.url("/api/v2/coupons"))
        .bearer_auth(app.token(user, Role::User))
        .json(&json!({ "couponPolicyId": policy }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.expect("json")["id"].as_i64().expect("coupon id")
}

async fn post(app: &TestApp, user: i64, path: String, body: Option<Value>) -> reqwest::Response {
    let request = app.client.post(app.url(&path)).bearer_auth(app.token(user, Role::User));
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.expect("request")
}

async fn outbox_events(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT event_type FROM outbox_events WHERE aggregate_type = 'coupon' ORDER BY id")
        .fetch_all(&app.env.pool)
        .await
        .expect("outbox")
}

#[tokio::test]
async fn use_and_cancel_are_idempotent_write_one_outbox_event_each_and_refuse_wrong_states() {
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let (owner, stranger) = (users[0], users[1]);
    let coupon = issued_coupon(&app, owner).await;
    let (first_order, second_order, stranger_order) =
        (bare_order(&app, owner).await, bare_order(&app, owner).await, bare_order(&app, stranger).await);
    let (use_path, cancel_path) = (format!("/api/v3/coupons/{coupon}/use"), format!("/api/v3/coupons/{coupon}/cancel"));

    assert_problem(post(&app, owner, cancel_path.clone(), None).await, 409, "COUPON_NOT_USED").await;
    for _ in 0..2 {
        let used = post(&app, owner, use_path.clone(), Some(json!({ "orderId": first_order }))).await;
        assert_eq!(used.status(), 200);
        assert_eq!(used.json::<Value>().await.expect("json")["status"], "USED");
    }
    assert_problem(
        post(&app, owner, use_path.clone(), Some(json!({ "orderId": second_order }))).await,
        409,
        "COUPON_ALREADY_USED",
    )
    .await;
    // Someone else's coupon answers exactly like one that does not exist.
    let unknown = format!("/api/v3/coupons/{}/use", coupon + 1_000_000);
    let unknown_body = post(&app, stranger, unknown, Some(json!({ "orderId": stranger_order })))
        .await
        .json::<Value>()
        .await
        .expect("json");
    let theirs = assert_problem(
        post(&app, stranger, use_path.clone(), Some(json!({ "orderId": stranger_order }))).await,
        404,
        "COUPON_NOT_FOUND",
    )
    .await;
    assert_eq!(theirs["detail"], unknown_body["detail"], "the same answer as for an unknown coupon");
    assert_problem(post(&app, stranger, cancel_path.clone(), None).await, 404, "COUPON_NOT_FOUND").await;

    for _ in 0..2 {
        let cancelled = post(&app, owner, cancel_path.clone(), None).await;
        assert_eq!(cancelled.status(), 200);
        assert_eq!(cancelled.json::<Value>().await.expect("json")["status"], "AVAILABLE");
    }
    assert_eq!(outbox_events(&app).await, vec!["CouponUsed", "CouponUseCancelled"], "one event per real change");
}

#[tokio::test]
async fn expired_and_unknown_coupons_and_bad_orders_are_refused() {
    let app = spawn_app().await;
    let owner = create_users(&app, 1).await[0];
    let coupon = issued_coupon(&app, owner).await;
    let order = bare_order(&app, owner).await;
    sqlx::query("UPDATE coupons SET valid_until = now() - interval '1 second' WHERE id = $1")
        .bind(coupon)
        .execute(&app.env.pool)
        .await
        .expect("expire");
    let path = format!("/api/v3/coupons/{coupon}/use");
    assert_problem(post(&app, owner, path.clone(), Some(json!({ "orderId": order }))).await, 409, "COUPON_EXPIRED")
        .await;
    assert_problem(post(&app, owner, path.clone(), Some(json!({ "orderId": -5 }))).await, 422, "INVALID_BODY").await;
    assert_problem(post(&app, owner, path, Some(json!({ "orderId": "x" }))).await, 422, "INVALID_BODY").await;
    let unknown = post(&app, owner, "/api/v3/coupons/999999/use".to_owned(), Some(json!({ "orderId": order }))).await;
    assert_problem(unknown, 404, "COUPON_NOT_FOUND").await;
    assert!(outbox_events(&app).await.is_empty());
}

use super::support::{admin_token, create_policy, policy_body};
use crate::helpers::{assert_problem, spawn_app};
use domain::Role;
use serde_json::json;

#[tokio::test]
async fn an_admin_creates_reads_and_lists_policies() {
    let app = spawn_app().await;
    let first = create_policy(&app, policy_body(10)).await;
    let second = create_policy(&app, policy_body(20)).await;

    let admin = admin_token(&app);
    let shown = app.get_json(&format!("/api/v3/coupon-policies/{first}"), &admin).await;
    assert_eq!((shown["totalQuantity"].as_i64(), shown["remainingQuantity"].as_i64()), (Some(10), Some(10)));

    let page = app.get_json("/api/v3/coupon-policies?limit=1", &admin).await;
    assert_eq!(page["items"][0]["id"], first);
    let next = app.get_json(&format!("/api/v3/coupon-policies?limit=1&after={}", page["nextAfter"]), &admin).await;
    assert_eq!(next["items"][0]["id"], second);
}

#[tokio::test]
async fn policies_need_the_admin_role() {
    let app = spawn_app().await;
    let response = app.post_json("/api/v3/coupon-policies", &app.token(5, Role::User), &policy_body(10)).await;
    assert_problem(response, 403, "FORBIDDEN").await;
    let listing = app.client.get(app.url("/api/v3/coupon-policies")).send().await.expect("request");
    assert_problem(listing, 401, "MISSING_TOKEN").await;
}

#[tokio::test]
async fn an_invalid_policy_is_a_422_naming_every_bad_field() {
    let app = spawn_app().await;
    let mut body = policy_body(0);
    body["discountType"] = json!("PERCENTAGE");
    body["discountValue"] = json!(150);
    body["endTime"] = body["startTime"].clone();
    let response = app.post_json("/api/v3/coupon-policies", &admin_token(&app), &body).await;
    let problem = assert_problem(response, 422, "VALIDATION_FAILED").await;
    let fields: Vec<&str> =
        problem["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, vec!["discountValue", "totalQuantity", "endTime"]);
}

#[tokio::test]
async fn unknown_policies_and_closed_windows_are_clear_errors() {
    let app = spawn_app().await;
    let user = sqlx::query_scalar::<_, i64>(
        "INSERT INTO users (email, password_hash, name) VALUES ('w@x.io', 'x', 'W') RETURNING id",
    )
    .fetch_one(&app.env.pool)
    .await
    .expect("user");
    let mut closed = policy_body(5);
    closed["startTime"] = json!(chrono::Utc::now() + chrono::Duration::hours(1));
    closed["endTime"] = json!(chrono::Utc::now() + chrono::Duration::hours(2));
    let closed = create_policy(&app, closed).await;
    for version in ["v1", "v2", "v3"] {
        let ask = |policy: i64| {
            app.client
                .post(app.url(&format!("/api/{version}/coupons")))
                .bearer_auth(app.token(user, Role::User))
                .json(&json!({ "couponPolicyId": policy }))
                .send()
        };
        assert_problem(ask(closed).await.expect("request"), 422, "OUTSIDE_ISSUE_WINDOW").await;
        assert_problem(ask(999_999).await.expect("request"), 404, "POLICY_NOT_FOUND").await;
    }
}

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};
use settle_api::config::HttpLimits;
use std::time::Duration;

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/users/validate-token"))
        .header("content-type", "application/json")
        .body("{\"token\": ")
        .send()
        .await
        .expect("request");
    assert_problem(response, 400, "MALFORMED_JSON").await;
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_a_422_problem() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/users/validate-token"))
        .json(&serde_json::json!({ "token": 42 }))
        .send()
        .await
        .expect("request");
    assert_problem(response, 422, "INVALID_BODY").await;
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_a_415_problem() {
    let app = spawn_app().await;
    let response = app.client.post(app.url("/api/v1/users/validate-token")).body("{}").send().await.expect("request");
    assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE").await;
}

#[tokio::test]
async fn an_oversize_body_is_a_413_problem() {
    let limits = HttpLimits { body_limit_bytes: 1024, request_timeout: Duration::from_secs(10) };
    let app = spawn_app_with(limits, |_| {}).await;
    let huge = format!("{{\"token\": \"{}\"}}", "a".repeat(4096));
    let response = app
        .client
        .post(app.url("/api/v1/users/validate-token"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("request");
    assert_problem(response, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let app = spawn_app().await;
    let missing = app.client.get(app.url("/api/v1/nope")).send().await.expect("request");
    assert_problem(missing, 404, "ROUTE_NOT_FOUND").await;
    let wrong_method = app.client.delete(app.url("/api/v1/users/me")).send().await.expect("request");
    assert_problem(wrong_method, 405, "METHOD_NOT_ALLOWED").await;
}

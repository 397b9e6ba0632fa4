use crate::helpers::{assert_problem, spawn_app};
use domain::Role;

#[tokio::test]
async fn a_request_without_a_token_is_a_401_problem() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/api/v1/users/me")).send().await.expect("request");
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_problem(response, 401, "MISSING_TOKEN").await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_a_401_problem() {
    let app = spawn_app().await;
    let forged = infra::jwt::JwtKeys::from_secret("a-different-secret-also-32-bytes-long")
        .expect("secret")
        .issue(domain::UserId::parse(1).expect("id"), Role::Admin, std::time::Duration::from_secs(60))
        .expect("token");
    let response = app.client.get(app.url("/api/v1/users/me")).bearer_auth(forged).send().await.expect("request");
    assert_problem(response, 401, "INVALID_TOKEN").await;
}

#[tokio::test]
async fn garbage_and_non_bearer_authorization_headers_are_401_problems() {
    let app = spawn_app().await;
    let garbage = app.client.get(app.url("/api/v1/users/me")).bearer_auth("not.a.jwt").send().await.expect("request");
    assert_problem(garbage, 401, "INVALID_TOKEN").await;
    let basic = app
        .client
        .get(app.url("/api/v1/users/me"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .expect("request");
    assert_problem(basic, 401, "INVALID_TOKEN").await;
}

#[tokio::test]
async fn a_valid_token_reads_only_its_own_profile() {
    let app = spawn_app().await;
    let alice = app.create_user("alice@example.com", Role::User).await;
    let bob = app.create_user("bob@example.com", Role::User).await;
    for (id, email) in [(alice, "alice@example.com"), (bob, "bob@example.com")] {
        let response = app
            .client
            .get(app.url("/api/v1/users/me"))
            .bearer_auth(app.token(id, Role::User))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["id"], id);
        assert_eq!(body["email"], email);
    }
}

async fn validate(app: &crate::helpers::TestApp, token: &str) -> serde_json::Value {
    let response = app
        .client
        .post(app.url("/api/v1/users/validate-token"))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

#[tokio::test]
async fn validate_token_reports_the_claims_of_a_good_token_and_rejects_a_bad_one() {
    let app = spawn_app().await;
    let token = app.token(7, Role::Admin);
    let good = validate(&app, &token).await;
    assert_eq!((&good["valid"], &good["userId"], &good["role"]), (&true.into(), &7.into(), &"ADMIN".into()));
    let bad = validate(&app, &format!("{token}x")).await;
    assert_eq!((&bad["valid"], &bad["reason"]), (&false.into(), &"INVALID".into()));
}

use crate::helpers::TestApp;
use serde_json::{json, Value};

pub const PASSWORD: &str = "plum orbit canyon ledger";

pub async fn signup(app: &TestApp, email: &str, password: &str, name: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/users/signup"))
        .json(&json!({ "email": email, "password": password, "name": name }))
        .send()
        .await
        .expect("request")
}

pub async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/users/login"))
        .header("user-agent", "settle-tests/1.0")
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("request")
}

/// Signs up `email` with [`PASSWORD`] and logs in: the token pair.
pub async fn account(app: &TestApp, email: &str) -> Value {
    assert_eq!(signup(app, email, PASSWORD, "Test Person").await.status(), 201);
    let pair = login(app, email, PASSWORD).await;
    assert_eq!(pair.status(), 200);
    pair.json().await.expect("a token pair")
}

pub async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json("/api/v1/users/refresh-token", "", &json!({ "refreshToken": token })).await
}

pub async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(&app.env.pool).await.expect("count")
}

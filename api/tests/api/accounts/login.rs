use super::support::{account, login, PASSWORD};
use crate::helpers::{assert_problem, spawn_app, waiting_on_locks};
use serde_json::{json, Value};

#[tokio::test]
async fn an_unknown_address_and_a_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    account(&app, "hana@shop.test").await;
    let wrong =
        assert_problem(login(&app, "hana@shop.test", "not the password at all").await, 401, "INVALID_CREDENTIALS")
            .await;
    let unknown =
        assert_problem(login(&app, "nobody@shop.test", "not the password at all").await, 401, "INVALID_CREDENTIALS")
            .await;
    assert_eq!(wrong, unknown, "the bodies tell nothing apart");
}

#[tokio::test]
async fn the_login_history_records_every_attempt_with_its_reason_in_pages_without_gaps() {
    let app = spawn_app().await;
    let pair = account(&app, "dae@shop.test").await;
    for _ in 0..3 {
        assert_eq!(login(&app, "dae@shop.test", "wrong wrong wrong").await.status(), 401);
    }
    assert_eq!(login(&app, "dae@shop.test", PASSWORD).await.status(), 200);
    let access = pair["accessToken"].as_str().expect("token");
    let (mut reasons, mut cursor) = (Vec::new(), None::<i64>);
    loop {
        let path = match cursor {
            Some(cursor) => format!("/api/v1/users/me/login-history?limit=2&cursor={cursor}"),
            None => "/api/v1/users/me/login-history?limit=2".to_owned(),
        };
        let page: Value = app.get_json(&path, access).await;
        for item in page["items"].as_array().expect("items") {
            assert_eq!(item["userAgent"], "settle-tests/1.0");
            assert_eq!(item["ipAddress"], "127.0.0.1");
            reasons.push(item["reason"].as_str().expect("reason").to_owned());
        }
        match page["nextCursor"].as_i64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(reasons, ["OK", "WRONG_PASSWORD", "WRONG_PASSWORD", "WRONG_PASSWORD", "OK"], "newest first, each once");
    let other = account(&app, "eun@shop.test").await;
    let theirs: Value =
        app.get_json("/api/v1/users/me/login-history", other["accessToken"].as_str().expect("token")).await;
    assert_eq!(theirs["items"].as_array().map(Vec::len), Some(1), "another user reads only their own history");
}

#[tokio::test]
async fn a_password_change_revokes_every_login_and_the_old_password_stops_working() {
    let app = spawn_app().await;
    let first = account(&app, "min@shop.test").await;
    let second: Value = login(&app, "min@shop.test", PASSWORD).await.json().await.expect("json");
    let access = first["accessToken"].as_str().expect("token");
    let app = &app;
    let change = |current: &str, new: &str| {
        let body = json!({ "currentPassword": current, "newPassword": new });
        async move { app.post_json("/api/v1/users/me/password", access, &body).await }
    };
    assert_problem(change("not my password", "river stone violet comet").await, 401, "INVALID_CREDENTIALS").await;
    assert_problem(change(PASSWORD, PASSWORD).await, 422, "VALIDATION_FAILED").await;
    assert_problem(change(PASSWORD, "password1").await, 422, "VALIDATION_FAILED").await;
    assert_eq!(change(PASSWORD, "river stone violet comet").await.status(), 204);
    for pair in [&first, &second] {
        let refused = super::support::refresh(app, pair["refreshToken"].as_str().expect("token")).await;
        assert_problem(refused, 401, "REFRESH_TOKEN_INVALID").await;
    }
    assert_problem(login(app, "min@shop.test", PASSWORD).await, 401, "INVALID_CREDENTIALS").await;
    assert_eq!(login(app, "min@shop.test", "river stone violet comet").await.status(), 200);
}

#[tokio::test]
async fn tokens_of_another_issuer_audience_or_algorithm_are_refused_by_every_route() {
    let app = spawn_app().await;
    let foreign = infra::jwt::JwtKeys::new(crate::helpers::SECRET, "someone-else", "settle-api").expect("keys");
    let token = foreign
        .issue(domain::UserId::parse(1).expect("id"), domain::Role::Admin, std::time::Duration::from_secs(60))
        .expect("token");
    let response = app.client.get(app.url("/api/v1/users/me")).bearer_auth(&token).send().await.expect("request");
    assert_problem(response, 401, "INVALID_TOKEN").await;
    let validated: Value =
        app.post_json("/api/v1/users/validate-token", "", &json!({ "token": token })).await.json().await.expect("json");
    assert_eq!(validated["valid"], false);
    let (_, rest) = token.split_once('.').expect("a JWT");
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{rest}");
    let response = app.client.get(app.url("/api/v1/users/me")).bearer_auth(none).send().await.expect("request");
    assert_problem(response, 401, "INVALID_TOKEN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_checked_before_a_password_change_gets_no_refresh_token_that_outlives_it() {
    let app = spawn_app().await;
    let pair = account(&app, "seo@shop.test").await;
    let access = pair["accessToken"].as_str().expect("token");
    // The login's history row waits on this lock: the login is held after its password check and before
    // its refresh family is made.
    let mut holder = app.env.pool.begin().await.expect("a transaction");
    sqlx::query("LOCK TABLE login_history IN SHARE MODE").execute(&mut *holder).await.expect("lock");
    let held_login = app
        .client
        .post(app.url("/api/v1/users/login"))
        .json(&json!({ "email": "seo@shop.test", "password": PASSWORD }))
        .send();
    let held_login = tokio::spawn(held_login);
    assert!(waiting_on_locks(&app, 1).await, "the login waits between its check and its family");
    let body = json!({ "currentPassword": PASSWORD, "newPassword": "harbor mosaic tundra quill" });
    assert_eq!(app.post_json("/api/v1/users/me/password", access, &body).await.status(), 204);
    holder.rollback().await.expect("let the login go on");

    let answer = held_login.await.expect("task").expect("request");
    if answer.status() == 200 {
        let tokens: Value = answer.json().await.expect("json");
        let refreshed = super::support::refresh(&app, tokens["refreshToken"].as_str().expect("token")).await;
        assert_problem(refreshed, 401, "REFRESH_TOKEN_INVALID").await;
    } else {
        assert_problem(answer, 401, "INVALID_CREDENTIALS").await;
    }
    let live_families: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_token_families WHERE revoked_at IS NULL")
        .fetch_one(&app.env.pool)
        .await
        .expect("families");
    assert_eq!(live_families, 0, "the password change left no login alive");
}

use super::support::{account, refresh};
use crate::helpers::{assert_problem, spawn_app};
use serde_json::{json, Value};

#[tokio::test]
async fn a_refresh_token_works_once_and_presenting_it_again_revokes_the_whole_login() {
    let app = spawn_app().await;
    let first = account(&app, "joon@shop.test").await;
    let old = first["refreshToken"].as_str().expect("token").to_owned();
    let second: Value = refresh(&app, &old).await.json().await.expect("a new pair");
    let newest = second["refreshToken"].as_str().expect("token").to_owned();
    assert_ne!(newest, old);
    assert_eq!(
        app.get_json("/api/v1/users/me", second["accessToken"].as_str().expect("token")).await["email"],
        "joon@shop.test"
    );

    assert_problem(refresh(&app, &old).await, 401, "REFRESH_TOKEN_REUSED").await;
    assert_problem(refresh(&app, &newest).await, 401, "REFRESH_TOKEN_INVALID").await;
    let revoked: String = sqlx::query_scalar("SELECT revoke_reason FROM refresh_token_families")
        .fetch_one(&app.env.pool)
        .await
        .expect("family");
    assert_eq!(revoked, "REUSED");
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE token_hash = $1 OR token_hash = $2")
            .bind(&old)
            .bind(&newest)
            .fetch_one(&app.env.pool)
            .await
            .expect("count");
    assert_eq!(stored, 0, "tokens are stored only as digests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_refreshes_with_one_token_give_exactly_one_new_pair() {
    let app = spawn_app().await;
    let pair = account(&app, "sol@shop.test").await;
    let token = pair["refreshToken"].as_str().expect("token").to_owned();
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let (client, url, token) = (app.client.clone(), app.url("/api/v1/users/refresh-token"), token.clone());
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({ "refreshToken": token }))
                    .send()
                    .await
                    .expect("request")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.expect("task"));
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 19, "{statuses:?}");
}

#[tokio::test]
async fn logout_revokes_the_login_and_answers_the_same_however_often() {
    let app = spawn_app().await;
    let pair = account(&app, "woo@shop.test").await;
    let token = pair["refreshToken"].as_str().expect("token");
    for _ in 0..2 {
        let out = app.post_json("/api/v1/users/logout", "", &json!({ "refreshToken": token })).await;
        assert_eq!(out.status(), 204);
    }
    let unknown = app.post_json("/api/v1/users/logout", "", &json!({ "refreshToken": "nope" })).await;
    assert_eq!(unknown.status(), 204);
    assert_problem(refresh(&app, token).await, 401, "REFRESH_TOKEN_INVALID").await;
}

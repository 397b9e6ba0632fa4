use super::support::{account, count, signup, PASSWORD};
use crate::helpers::{assert_problem, spawn_app};
use serde_json::{json, Value};

#[tokio::test]
async fn a_new_account_logs_in_and_its_access_token_works_on_issuance_points_and_me() {
    let app = spawn_app().await;
    let created = signup(&app, "  Mina.Park@Shop.TEST ", PASSWORD, "Mina Park").await;
    assert_eq!(created.status(), 201);
    let profile: Value = created.json().await.expect("json");
    assert_eq!((profile["email"].as_str(), profile["role"].as_str()), (Some("mina.park@shop.test"), Some("USER")));
    assert!(profile.get("passwordHash").is_none() && !profile.to_string().contains("argon2"), "{profile}");
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'mina.park@shop.test'")
        .fetch_one(&app.env.pool)
        .await
        .expect("hash");
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");

    let pair = super::support::login(&app, "mina.park@shop.test", PASSWORD).await;
    let pair: Value = pair.json().await.expect("json");
    assert_eq!((pair["tokenType"].as_str(), pair["expiresIn"].as_u64()), (Some("Bearer"), Some(900)));
    let access = pair["accessToken"].as_str().expect("access token");
    let me = app.get_json("/api/v1/users/me", access).await;
    assert_eq!(me["id"], profile["id"]);

    let admin = app.token(1, domain::Role::Admin);
    let policy = crate::coupons::support::create_policy(&app, crate::coupons::support::policy_body(5)).await;
    let issued = app.post_json("/api/v3/coupons", access, &json!({ "couponPolicyId": policy })).await;
    assert_eq!(issued.status(), 202, "V3 issuance with the login's token");
    let user = profile["id"].as_i64().expect("id");
    let earned = app.post_json("/api/v2/points/earn", &admin, &json!({ "userId": user, "amount": 100 })).await;
    assert_eq!(earned.status(), 200);
    let balance = app.get_json(&format!("/api/v2/points/users/{user}/balance"), access).await;
    assert_eq!(balance["balance"], 100);
}

#[tokio::test]
async fn duplicate_addresses_and_bad_passwords_are_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    account(&app, "jae@shop.test").await;
    let before = count(&app, "users").await;
    assert_problem(signup(&app, "JAE@Shop.test", PASSWORD, "Jae").await, 409, "EMAIL_TAKEN").await;
    let long = "plum orbit canyon ".repeat(8);
    for (password, rule) in [
        ("short", "PASSWORD_TOO_SHORT"),
        (long.as_str(), "PASSWORD_TOO_LONG"),
        ("password123", "PASSWORD_TOO_WEAK"),
        ("seo.yun@shop.test rocks", "PASSWORD_CONTAINS_EMAIL"),
        ("seo yun is the best", "PASSWORD_CONTAINS_NAME"),
    ] {
        let refused =
            assert_problem(signup(&app, "seo.yun@shop.test", password, "Seo Yun").await, 422, "VALIDATION_FAILED")
                .await;
        let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(refused["errors"][0]["field"] == "password" && message.starts_with(rule), "{password:?}: {refused}");
    }
    let bad_email = assert_problem(signup(&app, "not-an-address", PASSWORD, "").await, 422, "VALIDATION_FAILED").await;
    let fields: Vec<&str> =
        bad_email["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["email", "name"], "every bad field is named");
    let unknown_field = app
        .client
        .post(app.url("/api/v1/users/signup"))
        .json(&json!({ "email": "x@shop.test", "password": PASSWORD, "name": "X", "role": "ADMIN" }))
        .send()
        .await
        .expect("request");
    assert_problem(unknown_field, 422, "INVALID_BODY").await;
    let malformed = app
        .client
        .post(app.url("/api/v1/users/signup"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("request");
    assert_problem(malformed, 400, "MALFORMED_JSON").await;
    assert_eq!(count(&app, "users").await, before, "no refusal wrote a user");
}

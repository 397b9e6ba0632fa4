//! `API_ROUTE_GROUPS`: a process serves only the groups it is given (an issuance replica apart from
//! accounts and the shop); the rest answer 404 ROUTE_NOT_FOUND, and its API document lists what it serves.

use crate::helpers::{assert_problem, spawn_app_with};
use domain::Role;
use settle_api::config::{HttpLimits, RouteGroup};

#[tokio::test]
async fn an_issuance_only_process_serves_issuance_and_health_and_nothing_else() {
    let app = spawn_app_with(HttpLimits::default(), |config| config.route_groups = vec![RouteGroup::Issuance]).await;
    let shopper = app.create_user("shopper@groups.test", Role::User).await;
    let token = app.token(shopper, Role::User);

    let issue = app.post_json("/api/v3/coupons", &token, &serde_json::json!({ "couponPolicyId": 999_999 })).await;
    let body: serde_json::Value = issue.json().await.expect("a problem body");
    assert_ne!(body["code"], "ROUTE_NOT_FOUND", "issuance is served: {body}");
    for (path, login) in [("/api/v1/users/login", true), ("/api/v2/points/users/1/balance", false)] {
        let response = if login {
            let credentials = serde_json::json!({ "email": "shopper@groups.test", "password": "irrelevant-here" });
            app.client.post(app.url(path)).json(&credentials).send().await.expect("request")
        } else {
            app.get(path, &token).await
        };
        assert_problem(response, 404, "ROUTE_NOT_FOUND").await;
    }
    let console = app.client.get(app.url("/console/login")).send().await.expect("request");
    assert_problem(console, 404, "ROUTE_NOT_FOUND").await;
    assert!(app.client.get(app.url("/health/live")).send().await.expect("request").status().is_success());

    let document: serde_json::Value =
        app.client.get(app.url("/api-docs/openapi.json")).send().await.expect("request").json().await.expect("json");
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/api/v3/coupons") && !paths.contains_key("/api/v1/users/login"), "{:?}", paths.keys());
}

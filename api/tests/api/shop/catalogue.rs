use super::support::product;
use crate::coupons::support::admin_token;
use crate::helpers::{assert_problem, spawn_app};
use domain::Role;
use serde_json::{json, Value};

#[tokio::test]
async fn admins_build_the_catalogue_and_anyone_browses_active_products_with_prices_and_stock() {
    let app = spawn_app().await;
    let admin = admin_token(&app);
    let (shirt, options) = product(&app, 19_000, &[("S", 0, 5), ("XL", 2_000, 1)]).await;
    let (stopped, _) = product(&app, 5_000, &[("one", 0, 1)]).await;
    let response = app
        .client
        .patch(app.url(&format!("/api/v1/products/{stopped}")))
        .bearer_auth(&admin)
        .json(&json!({ "status": "STOPPED", "price": 4_500 }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);

    let anonymous: Value =
        app.client.get(app.url("/api/v1/products")).send().await.expect("list").json().await.expect("json");
    let listed: Vec<i64> =
        anonymous["items"].as_array().expect("items").iter().map(|p| p["id"].as_i64().expect("id")).collect();
    assert_eq!(listed, vec![shirt], "stopped products are not listed to shoppers");
    let as_admin = app.get_json("/api/v1/products?limit=1", &admin).await;
    assert_eq!(as_admin["items"][0]["id"], shirt);
    let next = as_admin["nextAfter"].as_i64().expect("a second page");
    let second = app.get_json(&format!("/api/v1/products?limit=1&after={next}"), &admin).await;
    assert_eq!(second["items"][0]["id"], stopped, "admins page through stopped products too");

    let read: Value = app
        .client
        .get(app.url(&format!("/api/v1/products/{shirt}")))
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("json");
    assert_eq!(read["options"][1]["unitPrice"], 21_000, "price plus the option's extra");
    assert_eq!(read["options"][1]["stock"], 1);

    let stock_path = format!("/api/v1/products/{shirt}/options/{}/stock", options[0]);
    let added: Value = app.post_json(&stock_path, &admin, &json!({ "add": 7 })).await.json().await.expect("json");
    assert_eq!(added["stock"], 12);
    let set = app
        .client
        .put(app.url(&stock_path))
        .bearer_auth(&admin)
        .json(&json!({ "stock": 3 }))
        .send()
        .await
        .expect("set");
    assert_eq!(set.json::<Value>().await.expect("json")["stock"], 3);
}

#[tokio::test]
async fn bad_catalogue_input_is_refused_with_its_code_and_users_may_not_change_the_catalogue() {
    let app = spawn_app().await;
    let admin = admin_token(&app);
    let invalid = app.post_json("/api/v1/products", &admin, &json!({ "name": "", "price": -1 })).await;
    let body = assert_problem(invalid, 422, "VALIDATION_FAILED").await;
    assert_eq!(body["errors"].as_array().expect("errors").len(), 2, "{body}");
    let float = app.post_json("/api/v1/products", &admin, &json!({ "name": "x", "price": 10.5 })).await;
    assert_problem(float, 422, "INVALID_BODY").await;
    let as_user =
        app.post_json("/api/v1/products", &app.token(5, Role::User), &json!({ "name": "x", "price": 1 })).await;
    assert_problem(as_user, 403, "FORBIDDEN").await;

    let (shirt, options) = product(&app, 1_000, &[("S", 0, 1)]).await;
    let taken = app.post_json(&format!("/api/v1/products/{shirt}/options"), &admin, &json!({ "name": "S" })).await;
    assert_problem(taken, 409, "OPTION_NAME_TAKEN").await;
    let too_much = app
        .post_json(
            &format!("/api/v1/products/{shirt}/options/{}/stock", options[0]),
            &admin,
            &json!({ "add": 100_000_000 }),
        )
        .await;
    assert_problem(too_much, 422, "INVALID_BODY").await;
    let other_product = app
        .post_json(
            &format!("/api/v1/products/{}/options/{}/stock", shirt + 1_000, options[0]),
            &admin,
            &json!({ "add": 1 }),
        )
        .await;
    assert_problem(other_product, 404, "OPTION_NOT_FOUND").await;
    let missing = app.client.get(app.url("/api/v1/products/999999")).send().await.expect("read");
    assert_problem(missing, 404, "PRODUCT_NOT_FOUND").await;
    let forged = app.client.get(app.url("/api/v1/products")).bearer_auth("not-a-token").send().await.expect("list");
    assert_problem(forged, 401, "INVALID_TOKEN").await;
}

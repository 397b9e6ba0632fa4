//! Input read as the OpenAPI contract reads it (found by contract fuzzing): integers spelled `5.0`
//! are integers, in a body, a path or a query; a NUL or a body that is not an object is refused
//! with a 4xx and leaves nothing behind.

use super::support::product;
use crate::coupons::support::admin_token;
use crate::helpers::{assert_problem, spawn_app, TestApp};
use serde_json::{json, Value};

async fn product_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM products").fetch_one(&app.env.pool).await.expect("count")
}

#[tokio::test]
async fn integral_decimals_are_integers_in_bodies_paths_and_queries() {
    let app = spawn_app().await;
    let admin = admin_token(&app);
    let created = app.post_json("/api/v1/products", &admin, &json!({ "name": "Mug", "price": 5000.0 })).await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.expect("json")["id"].as_i64().expect("id");
    let read = app.get_json(&format!("/api/v1/products/{id}.0"), &admin).await;
    assert_eq!((read["id"].as_i64(), read["price"].as_i64()), (Some(id), Some(5000)));
    let page = app.get_json("/api/v1/products?limit=1.0", &admin).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));

    let fractional = app.post_json("/api/v1/products", &admin, &json!({ "name": "Mug", "price": 5000.5 })).await;
    assert_problem(fractional, 422, "INVALID_BODY").await;
    let path = app.client.get(app.url(&format!("/api/v1/products/{id}.5"))).send().await.expect("request");
    assert_problem(path, 400, "INVALID_PATH").await;
    assert_eq!(product_count(&app).await, 1);
}

#[tokio::test]
async fn a_nul_character_or_a_body_that_is_not_an_object_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let admin = admin_token(&app);
    let (id, options) = product(&app, 1000, &[("S", 0, 5)]).await;
    let before = product_count(&app).await;

    let nul_name = app.post_json("/api/v1/products", &admin, &json!({ "name": "Mug\u{0}", "price": 1 })).await;
    assert_problem(nul_name, 422, "INVALID_BODY").await;
    let nul_key = app.post_json("/api/v1/products", &admin, &json!({ "name\u{0}": "Mug", "price": 1 })).await;
    assert_problem(nul_key, 422, "INVALID_BODY").await;
    let as_array = app
        .client
        .patch(app.url(&format!("/api/v1/products/{id}/options/{}", options[0])))
        .bearer_auth(&admin)
        .json(&json!([null, null]))
        .send()
        .await
        .expect("request");
    assert_problem(as_array, 422, "INVALID_BODY").await;

    assert_eq!(product_count(&app).await, before);
    let read = app.get_json(&format!("/api/v1/products/{id}"), &admin).await;
    assert_eq!(read["options"][0]["name"], "S");
}

#[tokio::test]
async fn text_with_control_characters_is_refused_by_name() {
    let app = spawn_app().await;
    let body = json!({ "name": "Mug\u{7}", "price": 1 });
    let refused = app.post_json("/api/v1/products", &admin_token(&app), &body).await;
    let problem = assert_problem(refused, 422, "VALIDATION_FAILED").await;
    assert_eq!(problem["errors"][0]["field"], "name");
    assert_eq!(product_count(&app).await, 0);
}

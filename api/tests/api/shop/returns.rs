//! A delivered order sent back within the return window: the provider gives the money back first, then
//! the goods, the coupon and the points come back once; past the window, or before delivery, it is refused.

use super::payments::{app_with_sandbox, checkout, pay, unpaid_order};
use super::support::{assert_invariants, paid_with_points, stock};
use crate::coupons::support::{admin_token, create_users};
use crate::helpers::{assert_problem, TestApp};
use domain::Role;
use serde_json::{json, Value};

async fn refund(app: &TestApp, token: &str, order: i64, reason: &str) -> reqwest::Response {
    app.post_json(&format!("/api/v3/orders/{order}/refund"), token, &json!({ "reason": reason })).await
}

/// Ships and delivers `order` as the admin.
async fn ship_and_deliver(app: &TestApp, order: i64) {
    let admin = admin_token(app);
    let shipment = json!({ "carrier": "CJ Logistics", "trackingNumber": "6789-1234-5678" });
    assert_eq!(app.post_json(&format!("/api/v3/orders/{order}/ship"), &admin, &shipment).await.status(), 200);
    assert_eq!(app.post_json(&format!("/api/v3/orders/{order}/deliver"), &admin, &json!(null)).await.status(), 200);
}

#[tokio::test]
async fn a_delivered_order_is_refunded_at_the_provider_then_gives_its_goods_back_once() {
    let (app, sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, option) = unpaid_order(&app, buyer, 21_000).await;
    let id = order["id"].as_i64().expect("id");
    let key = checkout(&sandbox, &order).await;
    assert_eq!(pay(&app, &token, &order, &key, 21_000).await.status(), 200);
    assert_problem(refund(&app, &token, id, "changed my mind").await, 409, "ORDER_STATUS_CONFLICT").await;
    ship_and_deliver(&app, id).await;

    let refunded = refund(&app, &token, id, "the size does not fit").await;
    assert_eq!(refunded.status(), 200);
    assert_eq!(refunded.json::<Value>().await.expect("json")["status"], "REFUNDED");
    assert_problem(refund(&app, &token, id, "again").await, 409, "ORDER_CLOSED").await;
    assert_eq!(sandbox.calls_of("cancel").await.expect("calls"), 1, "one refund at the provider");
    let history: Value = app.get_json(&format!("/api/v3/orders/{id}/history"), &token).await;
    let last = history.as_array().and_then(|moves| moves.last()).expect("a move").clone();
    assert_eq!((last["to"].as_str(), last["reason"].as_str()), (Some("REFUNDED"), Some("the size does not fit")));
    assert_eq!(stock(&app, option).await, 5);
    assert_invariants(&app, &[(option, 5)]).await;
}

#[tokio::test]
async fn a_confirmed_purchase_is_refunded_after_sales_by_an_admin_only_at_the_provider_first_and_once() {
    let (app, sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let (token, admin) = (app.token(buyer, Role::User), admin_token(&app));
    let (order, option) = unpaid_order(&app, buyer, 21_000).await;
    let id = order["id"].as_i64().expect("id");
    let key = checkout(&sandbox, &order).await;
    assert_eq!(pay(&app, &token, &order, &key, 21_000).await.status(), 200);
    let after_sales = format!("/api/v3/orders/{id}/after-sales-refund");
    let reason = json!({ "reason": "defect found after confirmation" });
    let early = assert_problem(app.post_json(&after_sales, &admin, &reason).await, 409, "ORDER_STATUS_CONFLICT").await;
    assert_eq!(early["orderStatus"], "PAID", "only a confirmed purchase is refunded after sales");
    ship_and_deliver(&app, id).await;
    let confirmed = app.post_json(&format!("/api/v3/orders/{id}/confirm"), &token, &json!(null)).await;
    assert_eq!(confirmed.status(), 200);

    // The buyer gave up returns by confirming; after sales is the shop's decision.
    assert_problem(refund(&app, &token, id, "changed my mind").await, 409, "ORDER_CLOSED").await;
    assert_problem(app.post_json(&after_sales, &token, &reason).await, 403, "FORBIDDEN").await;
    let refunded = app.post_json(&after_sales, &admin, &reason).await;
    assert_eq!(refunded.status(), 200);
    assert_eq!(refunded.json::<Value>().await.expect("json")["status"], "REFUNDED");
    assert_problem(app.post_json(&after_sales, &admin, &reason).await, 409, "ORDER_CLOSED").await;
    assert_eq!(sandbox.calls_of("cancel").await.expect("calls"), 1, "one refund at the provider");
    let history: Value = app.get_json(&format!("/api/v3/orders/{id}/history"), &token).await;
    let last = history.as_array().and_then(|moves| moves.last()).expect("a move").clone();
    assert_eq!((last["from"].as_str(), last["to"].as_str()), (Some("CONFIRMED"), Some("REFUNDED")));
    assert_eq!(stock(&app, option).await, 5);
    assert_invariants(&app, &[(option, 5)]).await;
}

#[tokio::test]
async fn a_refund_is_refused_past_the_return_window_and_without_a_reason_and_gives_nothing_back() {
    let (app, _sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    // Points cover it all: the order is PAID at once, without the provider.
    let (placed, option) = paid_with_points(&app, buyer, 5_000).await;
    let id = placed["id"].as_i64().expect("id");
    assert_eq!(placed["status"], "PAID");
    ship_and_deliver(&app, id).await;

    assert_problem(refund(&app, &token, id, "   ").await, 422, "VALIDATION_FAILED").await;
    sqlx::query("UPDATE orders SET delivered_at = now() - interval '8 days' WHERE id = $1")
        .bind(id)
        .execute(&app.env.pool)
        .await
        .expect("delivered long ago");
    assert_problem(refund(&app, &token, id, "too late").await, 409, "RETURN_WINDOW_CLOSED").await;
    let balance: Value = app.get_json(&format!("/api/v2/points/users/{buyer}/balance"), &token).await;
    assert_eq!(balance["balance"], 0, "the points stay spent");
    assert_eq!(stock(&app, option).await, 2);
}

#[tokio::test]
async fn a_refund_of_an_order_paid_in_points_gives_them_back_and_the_shown_balance_follows() {
    let (app, _sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (placed, option) = paid_with_points(&app, buyer, 8_000).await;
    let id = placed["id"].as_i64().expect("id");
    let balance: Value = app.get_json(&format!("/api/v2/points/users/{buyer}/balance"), &token).await;
    assert_eq!(balance["balance"], 0);
    ship_and_deliver(&app, id).await;

    assert_eq!(refund(&app, &token, id, "broken on arrival").await.status(), 200);
    let balance: Value = app.get_json(&format!("/api/v2/points/users/{buyer}/balance"), &token).await;
    assert_eq!(balance["balance"], 8_000, "the balance shown follows the refund");
    assert_invariants(&app, &[(option, 3)]).await;
}

//! An order's moves through the API: who may ask for each, what the table refuses and with which code,
//! the history every move leaves, and what comes back when an order ends early.

use super::support::{
    assert_invariants, balance_and_ledger, cancel, order_body, paid_with_points, place, product, stock,
};
use crate::coupons::support::{admin_token, create_users};
use crate::helpers::{assert_problem, spawn_app, TestApp};
use domain::Role;
use serde_json::{json, Value};

async fn post(app: &TestApp, path: String, token: &str, body: Value) -> reqwest::Response {
    app.post_json(&path, token, &body).await
}

async fn history(app: &TestApp, order: i64, token: &str) -> Vec<(Value, Value, String)> {
    let moves: Value = app.get_json(&format!("/api/v3/orders/{order}/history"), token).await;
    let moves = moves.as_array().expect("a list of moves").clone();
    moves
        .into_iter()
        .map(|m| (m["from"].clone(), m["to"].clone(), m["actor"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[tokio::test]
async fn an_order_with_nothing_to_pay_is_paid_at_once_and_walks_to_confirmation_with_its_history() {
    let app = spawn_app().await;
    let users = create_users(&app, 3).await;
    let (buyer, stranger, admin_id) = (users[0], users[1], users[2]);
    let (token, admin) = (app.token(buyer, Role::User), app.token(admin_id, Role::Admin));
    let (order, _) = paid_with_points(&app, buyer, 8_000).await;
    let id = order["id"].as_i64().expect("id");
    assert_eq!((order["status"].as_str(), order["amountToPay"].as_i64()), (Some("PAID"), Some(0)));
    assert!(order["paidAt"].is_string(), "paid when placed: {order}");

    let ship = format!("/api/v3/orders/{id}/ship");
    let parcel = json!({ "carrier": "CJ Logistics", "trackingNumber": "6789-1234" });
    assert_problem(post(&app, ship.clone(), &token, parcel.clone()).await, 403, "FORBIDDEN").await;
    let blank = json!({ "carrier": " ", "trackingNumber": "" });
    let invalid = assert_problem(post(&app, ship.clone(), &admin, blank).await, 422, "VALIDATION_FAILED").await;
    assert!(invalid.to_string().contains("trackingNumber"), "{invalid}");
    let shipped = post(&app, ship.clone(), &admin, parcel.clone()).await;
    assert_eq!(shipped.status(), 200);
    let shipped: Value = shipped.json().await.expect("json");
    assert_eq!(shipped["status"], "SHIPPED");
    assert_eq!(shipped["shipment"], json!({ "carrier": "CJ Logistics", "trackingNumber": "6789-1234" }));
    assert_problem(cancel(&app, &token, id).await, 409, "CANCEL_AFTER_SHIPPING").await;
    let again = assert_problem(post(&app, ship, &admin, parcel).await, 409, "ORDER_STATUS_CONFLICT").await;
    assert_eq!(again["orderStatus"], "SHIPPED");

    let confirm = format!("/api/v3/orders/{id}/confirm");
    let early =
        assert_problem(post(&app, confirm.clone(), &token, json!(null)).await, 409, "ORDER_STATUS_CONFLICT").await;
    assert_eq!(early["orderStatus"], "SHIPPED");
    let delivered = post(&app, format!("/api/v3/orders/{id}/deliver"), &admin, json!(null)).await;
    assert_eq!(delivered.json::<Value>().await.expect("json")["status"], "DELIVERED");
    let foreign = post(&app, confirm.clone(), &app.token(stranger, Role::User), json!(null)).await;
    assert_problem(foreign, 404, "ORDER_NOT_FOUND").await;
    // An admin confirms no one's purchase: the order is not theirs, so it is unknown to them here.
    assert_problem(post(&app, confirm.clone(), &admin, json!(null)).await, 404, "ORDER_NOT_FOUND").await;
    let confirmed = post(&app, confirm.clone(), &token, json!(null)).await;
    assert_eq!(confirmed.json::<Value>().await.expect("json")["status"], "CONFIRMED");
    assert_problem(post(&app, confirm, &token, json!(null)).await, 409, "ORDER_CLOSED").await;
    assert_problem(cancel(&app, &token, id).await, 409, "ORDER_CLOSED").await;

    let admin_id = format!("admin:{admin_id}");
    let moves = history(&app, id, &token).await;
    let expected = [
        (json!(null), json!("PENDING_PAYMENT"), format!("user:{buyer}")),
        (json!("PENDING_PAYMENT"), json!("PAID"), format!("user:{buyer}")),
        (json!("PAID"), json!("SHIPPED"), admin_id.clone()),
        (json!("SHIPPED"), json!("DELIVERED"), admin_id),
        (json!("DELIVERED"), json!("CONFIRMED"), format!("user:{buyer}")),
    ];
    assert_eq!(moves.len(), expected.len(), "{moves:?}");
    for (seen, wanted) in moves.iter().zip(&expected) {
        assert_eq!((&seen.0, &seen.1), (&wanted.0, &wanted.1));
        assert_eq!(seen.2, wanted.2);
    }
    let stranger_history = app.get(&format!("/api/v3/orders/{id}/history"), &app.token(stranger, Role::User)).await;
    assert_problem(stranger_history, 404, "ORDER_NOT_FOUND").await;
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM outbox_events WHERE aggregate_type = 'order' AND aggregate_id = $1 ORDER BY id",
    )
    .bind(id.to_string())
    .fetch_all(&app.env.pool)
    .await
    .expect("events");
    assert_eq!(events, ["OrderPlaced", "OrderPaid", "OrderShipped", "OrderDelivered", "OrderConfirmed"]);
}

#[tokio::test]
async fn cancelling_a_paid_order_that_cost_nothing_gives_back_its_points_and_stock_once() {
    let app = spawn_app().await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, option) = paid_with_points(&app, buyer, 5_000).await;
    let id = order["id"].as_i64().expect("id");
    assert_eq!((stock(&app, option).await, balance_and_ledger(&app, buyer).await), (2, (0, 0)));

    let cancelled = cancel(&app, &token, id).await;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(cancelled.json::<Value>().await.expect("json")["status"], "CANCELLED");
    assert_problem(cancel(&app, &token, id).await, 409, "ALREADY_CANCELLED").await;
    assert_eq!((stock(&app, option).await, balance_and_ledger(&app, buyer).await), (3, (5_000, 5_000)));
    let balance: Value = app.get_json(&format!("/api/v2/points/users/{buyer}/balance"), &token).await;
    assert_eq!(balance["balance"], 5_000, "the refund is what the buyer is shown: {balance}");
    assert_invariants(&app, &[(option, 3)]).await;
}

#[tokio::test]
async fn an_unpaid_order_waits_for_payment_and_cannot_be_shipped_or_confirmed() {
    let app = spawn_app().await;
    let buyer = create_users(&app, 1).await[0];
    let (token, admin) = (app.token(buyer, Role::User), admin_token(&app));
    let (product, options) = product(&app, 12_000, &[("one size", 0, 3)]).await;
    let before = chrono::Utc::now();
    let response = place(&app, buyer, &order_body(&[(product, options[0], 1)], json!({}))).await;
    let after = chrono::Utc::now();
    let order: Value = response.json().await.expect("json");
    let id = order["id"].as_i64().expect("id");
    assert_eq!(order["status"], "PENDING_PAYMENT");
    assert!(order["paidAt"].is_null());
    let due: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(order["paymentDueAt"].clone()).expect("a payment due time");
    let window = chrono::Duration::minutes(15);
    assert!(before + window <= due && due <= after + window, "due {due}: 15 minutes after placing");

    let parcel = json!({ "carrier": "CJ Logistics", "trackingNumber": "1" });
    let ship = assert_problem(
        post(&app, format!("/api/v3/orders/{id}/ship"), &admin, parcel).await,
        409,
        "ORDER_STATUS_CONFLICT",
    )
    .await;
    assert_eq!(ship["orderStatus"], "PENDING_PAYMENT");
    assert_problem(
        post(&app, format!("/api/v3/orders/{id}/deliver"), &admin, json!(null)).await,
        409,
        "ORDER_STATUS_CONFLICT",
    )
    .await;
    assert_problem(
        post(&app, format!("/api/v3/orders/{id}/confirm"), &token, json!(null)).await,
        409,
        "ORDER_STATUS_CONFLICT",
    )
    .await;
    let unknown = post(&app, "/api/v3/orders/999999/deliver".to_owned(), &admin, json!(null)).await;
    assert_problem(unknown, 404, "ORDER_NOT_FOUND").await;
}

use crate::coupons::support::{admin_token, create_policy};
use crate::helpers::TestApp;
use domain::Role;
use serde_json::{json, Value};
use std::{collections::BTreeMap, sync::Arc};
use tokio::sync::Semaphore;

/// A product at `price` with options (name, extra price, stock); returns (product id, option ids).
pub async fn product(app: &TestApp, price: i64, options: &[(&str, i64, i32)]) -> (i64, Vec<i64>) {
    let options: Vec<Value> = options
        .iter()
        .map(|(name, extra, stock)| json!({ "name": name, "extraPrice": extra, "stock": stock }))
        .collect();
    let body = json!({ "name": "Test product", "price": price, "options": options });
    let response = app.post_json("/api/v1/products", &admin_token(app), &body).await;
    assert_eq!(response.status(), 201, "creating a product");
    let created: Value = response.json().await.expect("json");
    let ids = created["options"].as_array().expect("options").iter().map(|o| o["id"].as_i64().expect("id")).collect();
    (created["id"].as_i64().expect("product id"), ids)
}

pub fn shipping() -> Value {
    json!({ "receiverName": "Kim Minji", "phone": "010-1234-5678", "address": "1 Teheran-ro, Seoul" })
}

/// An order body for `items` (product, option, quantity) with `extra` fields merged in.
pub fn order_body(items: &[(i64, i64, i32)], extra: Value) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(product, option, quantity)| json!({ "productId": product, "optionId": option, "quantity": quantity }))
        .collect();
    let mut body = json!({ "items": items, "shipping": shipping(), "paymentMethod": "CARD" });
    merge(&mut body, extra);
    body
}

pub fn merge(body: &mut Value, extra: Value) {
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
}

pub async fn place(app: &TestApp, user: i64, body: &Value) -> reqwest::Response {
    app.post_json("/api/v3/orders", &app.token(user, Role::User), body).await
}

pub async fn cancel(app: &TestApp, token: &str, order: i64) -> reqwest::Response {
    app.post_json("/api/v3/orders/cancel", token, &json!({ "orderId": order })).await
}

/// A coupon of a new policy (`policy` is the policy body) issued to `user` through V2.
pub async fn coupon(app: &TestApp, user: i64, policy: Value) -> i64 {
    let policy = create_policy(app, policy).await;
    let response =
        app.post_json("/api/v2/coupons", &app.token(user, Role::User), &json!({ "couponPolicyId": policy })).await;
    assert_eq!(response.status(), 201, "issuing a coupon");
    response.json::<Value>().await.expect("json")["id"].as_i64().expect("coupon id")
}

/// A policy body with the given discount, minimum and cap.
pub fn discount(kind: &str, value: i64, minimum: i64, cap: Option<i64>) -> Value {
    let now = chrono::Utc::now();
    json!({
        "name": "Shop coupon",
        "discountType": kind,
        "discountValue": value,
        "minimumOrderAmount": minimum,
        "maximumDiscountAmount": cap,
        "totalQuantity": 100,
        "startTime": now - chrono::Duration::minutes(1),
        "endTime": now + chrono::Duration::hours(1),
        "couponValidDays": 7,
    })
}

pub async fn earn(app: &TestApp, user: i64, amount: i64) {
    let body = json!({ "userId": user, "amount": amount });
    let response = app.post_json("/api/v2/points/earn", &admin_token(app), &body).await;
    assert_eq!(response.status(), 200, "earning points");
}

pub async fn stock(app: &TestApp, option: i64) -> i32 {
    sqlx::query_scalar("SELECT stock FROM product_options WHERE id = $1")
        .bind(option)
        .fetch_one(&app.env.pool)
        .await
        .expect("stock")
}

/// (balance row, ledger sum) of `user`.
pub async fn balance_and_ledger(app: &TestApp, user: i64) -> (i64, i64) {
    sqlx::query_as(
        "SELECT COALESCE((SELECT balance FROM point_balances WHERE user_id = $1), 0)::bigint, \
                COALESCE((SELECT sum(amount) FROM points WHERE user_id = $1), 0)::bigint",
    )
    .bind(user)
    .fetch_one(&app.env.pool)
    .await
    .expect("balance and ledger")
}

pub async fn coupon_state(app: &TestApp, coupon: i64) -> (String, Option<i64>) {
    sqlx::query_as("SELECT status, order_id FROM coupons WHERE id = $1")
        .bind(coupon)
        .fetch_one(&app.env.pool)
        .await
        .expect("coupon")
}

/// Runs `requests` concurrently (at most `in_flight` at once) and returns each (status, body), in order.
pub async fn concurrently(
    app: &TestApp,
    in_flight: usize,
    requests: Vec<(String, String, Value)>,
) -> Vec<(u16, Value)> {
    let requests =
        requests.into_iter().map(|(path, token, body)| app.client.post(app.url(&path)).bearer_auth(token).json(&body));
    send_concurrently(in_flight, requests).await
}

/// Sends `requests` (at most `in_flight` at once) and returns each (status, body), in order.
pub async fn send_concurrently(
    in_flight: usize,
    requests: impl IntoIterator<Item = reqwest::RequestBuilder>,
) -> Vec<(u16, Value)> {
    let gate = Arc::new(Semaphore::new(in_flight));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let gate = gate.clone();
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("semaphore");
                let response = request.send().await.expect("request");
                (response.status().as_u16(), response.json::<Value>().await.expect("a JSON body"))
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await.expect("request task"));
    }
    answers
}

/// Answers counted by status and problem code ("201", "409 OUT_OF_STOCK", ...).
pub fn tally(answers: &[(u16, Value)]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (status, body) in answers {
        let key = match body["code"].as_str() {
            Some(code) => format!("{status} {code}"),
            None => status.to_string(),
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// The shop's invariants over the whole database, given each option's stock before the test:
/// stock + units in orders still holding their goods (not cancelled, expired or refunded) = initial,
/// never negative; every used coupon serves exactly one such order and every such order's coupon is used
/// by it; every balance equals its ledger and is
/// not negative; every order's amounts add up and its items add up to its subtotal.
pub async fn assert_invariants(app: &TestApp, initial_stock: &[(i64, i32)]) {
    let pool = &app.env.pool;
    for (option, initial) in initial_stock {
        let (stock, sold): (i32, i64) = sqlx::query_as(
            "SELECT o.stock, COALESCE((SELECT sum(i.quantity) FROM order_items i JOIN orders r ON r.id = i.order_id \
                                       WHERE i.option_id = o.id AND r.status NOT IN ('CANCELLED', 'EXPIRED', 'REFUNDED')), 0)::bigint \
             FROM product_options o WHERE o.id = $1",
        )
        .bind(option)
        .fetch_one(pool)
        .await
        .expect("stock and sold");
        assert!(stock >= 0, "option {option}: stock {stock} below zero");
        assert_eq!(i64::from(stock) + sold, i64::from(*initial), "option {option}: stock + sold = initial");
    }
    let coupon_breaches: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM orders o JOIN coupons c ON c.id = o.coupon_id \
                 WHERE o.status NOT IN ('CANCELLED', 'EXPIRED', 'REFUNDED') \
                   AND (c.status <> 'USED' OR c.order_id <> o.id)) \
              + (SELECT count(*) FROM coupons c JOIN orders o ON o.id = c.order_id AND o.coupon_id = c.id \
                 WHERE o.status IN ('CANCELLED', 'EXPIRED', 'REFUNDED'))",
    )
    .fetch_one(pool)
    .await
    .expect("coupon check");
    assert_eq!(coupon_breaches, 0, "every order's coupon is used by that order alone");
    let balance_breaches: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM point_balances b \
         WHERE b.balance < 0 OR b.balance <> COALESCE((SELECT sum(amount) FROM points p WHERE p.user_id = b.user_id), 0)",
    )
    .fetch_one(pool)
    .await
    .expect("balance check");
    assert_eq!(balance_breaches, 0, "every balance equals its ledger and is not negative");
    let order_breaches: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders o \
         WHERE o.amount_to_pay <> o.subtotal - o.coupon_discount - o.points_used OR o.amount_to_pay < 0 \
            OR o.subtotal <> (SELECT sum(line_total) FROM order_items i WHERE i.order_id = o.id) \
            OR (o.points_used > 0 AND NOT EXISTS (SELECT 1 FROM points p WHERE p.id = o.point_use_id \
                                                  AND p.order_id = o.id AND p.amount = -o.points_used)) \
            OR (o.status IN ('CANCELLED', 'EXPIRED', 'REFUNDED') AND o.points_used > 0 AND NOT EXISTS \
                  (SELECT 1 FROM points p WHERE p.cancels_point_id = o.point_use_id AND p.amount = o.points_used))",
    )
    .fetch_one(pool)
    .await
    .expect("order check");
    assert_eq!(order_breaches, 0, "every order adds up and its points are in the ledger (and refunded if released)");
}

/// An order row of `user` with nothing in it, for routes that only need an order of theirs to name.
pub async fn bare_order(app: &TestApp, user: i64) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO orders (user_id, status, subtotal, coupon_discount, points_used, amount_to_pay, \
                             receiver_name, phone, address, payment_method, payment_due_at) \
         VALUES ($1, 'PENDING_PAYMENT', 0, 0, 0, 0, 'Test', '010', 'Test address', 'CARD', now() + interval '15 minutes') \
         RETURNING id",
    )
    .bind(user)
    .fetch_one(&app.env.pool)
    .await
    .expect("an order row")
}

/// An order of one unit of a new product at `price`, paid entirely with points (nothing left to pay).
pub async fn paid_with_points(app: &TestApp, user: i64, price: i64) -> (Value, i64) {
    let (product, options) = product(app, price, &[("one size", 0, 3)]).await;
    earn(app, user, price).await;
    let response = place(app, user, &order_body(&[(product, options[0], 1)], json!({ "points": price }))).await;
    assert_eq!(response.status(), 201);
    (response.json().await.expect("json"), options[0])
}

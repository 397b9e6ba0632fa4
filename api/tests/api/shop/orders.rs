use super::support::{
    assert_invariants, cancel, concurrently, coupon, coupon_state, discount, earn, order_body, place, product, stock,
};
use crate::coupons::support::{admin_token, create_users};
use crate::helpers::{assert_problem, lock_option, sessions_waiting_on_locks, spawn_app, waiting_on_locks, TestApp};
use domain::Role;
use serde_json::{json, Value};

#[tokio::test]
async fn an_order_takes_prices_from_the_catalogue_and_writes_coupon_points_stock_and_items_in_one_go() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let (shirt, sizes) = product(&app, 10_000, &[("S", 0, 5), ("L", 2_500, 5)]).await;
    let coupon = coupon(&app, user, discount("PERCENTAGE", 10, 20_000, Some(3_000))).await;
    earn(&app, user, 1_000).await;

    // 2 x 10,000 + 1 x 12,500 = 32,500; 10% is 3,250, capped at 3,000; then 1,000 points.
    let body = order_body(
        &[(shirt, sizes[0], 2), (shirt, sizes[1], 1)],
        json!({ "couponId": coupon, "points": 1_000, "unitPrice": 1 }),
    );
    assert_problem(place(&app, user, &body).await, 422, "INVALID_BODY").await;
    let body =
        order_body(&[(shirt, sizes[0], 2), (shirt, sizes[1], 1)], json!({ "couponId": coupon, "points": 1_000 }));
    let placed = place(&app, user, &body).await;
    assert_eq!(placed.status(), 201);
    let order: Value = placed.json().await.expect("json");
    assert_eq!(
        (
            order["subtotal"].clone(),
            order["couponDiscount"].clone(),
            order["pointsUsed"].clone(),
            order["amountToPay"].clone()
        ),
        (json!(32_500), json!(3_000), json!(1_000), json!(28_500))
    );
    assert_eq!(order["status"], "PENDING_PAYMENT");
    assert_eq!(order["items"][1]["unitPrice"], 12_500, "the unit price snapshot includes the option's extra");
    let id = order["id"].as_i64().expect("order id");
    assert_eq!(coupon_state(&app, coupon).await, ("USED".to_owned(), Some(id)));
    assert_eq!((stock(&app, sizes[0]).await, stock(&app, sizes[1]).await), (3, 4));
    let events: Vec<String> = sqlx::query_scalar("SELECT event_type FROM outbox_events ORDER BY id")
        .fetch_all(&app.env.pool)
        .await
        .expect("outbox");
    assert!(events.ends_with(&["PointsUsed".into(), "CouponUsed".into(), "OrderPlaced".into()]), "{events:?}");
    assert_invariants(&app, &[(sizes[0], 5), (sizes[1], 5)]).await;

    // A price change later does not change what was paid.
    sqlx::query("UPDATE products SET price = 1 WHERE id = $1")
        .bind(shirt)
        .execute(&app.env.pool)
        .await
        .expect("reprice");
    let read = app.get_json(&format!("/api/v3/orders/{id}"), &app.token(user, Role::User)).await;
    assert_eq!(read["items"][0]["unitPrice"], 10_000);
}

#[tokio::test]
async fn coupons_and_points_that_cannot_serve_the_order_are_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let (user, other) = (users[0], users[1]);
    let (shirt, sizes) = product(&app, 10_000, &[("S", 0, 50)]).await;
    let line = |quantity| vec![(shirt, sizes[0], quantity)];
    earn(&app, user, 50_000).await;

    let fixed = coupon(&app, user, discount("FIXED_AMOUNT", 15_000, 0, None)).await;
    let order: Value =
        place(&app, user, &order_body(&line(1), json!({ "couponId": fixed }))).await.json().await.expect("json");
    assert_eq!(
        (order["couponDiscount"].clone(), order["amountToPay"].clone()),
        (json!(10_000), json!(0)),
        "never above the subtotal"
    );

    let minimum = coupon(&app, user, discount("FIXED_AMOUNT", 1_000, 30_000, None)).await;
    let below = assert_problem(
        place(&app, user, &order_body(&line(2), json!({ "couponId": minimum }))).await,
        409,
        "COUPON_NOT_APPLICABLE",
    )
    .await;
    assert_eq!(below["reason"], "BELOW_MINIMUM");
    let expiring = coupon(&app, user, discount("FIXED_AMOUNT", 1_000, 0, None)).await;
    sqlx::query("UPDATE coupons SET valid_until = now() - interval '1 second' WHERE id = $1")
        .bind(expiring)
        .execute(&app.env.pool)
        .await
        .expect("expire");
    let expired = assert_problem(
        place(&app, user, &order_body(&line(1), json!({ "couponId": expiring }))).await,
        409,
        "COUPON_NOT_APPLICABLE",
    )
    .await;
    assert_eq!(expired["reason"], "EXPIRED");
    let used = assert_problem(
        place(&app, user, &order_body(&line(1), json!({ "couponId": fixed }))).await,
        409,
        "COUPON_NOT_APPLICABLE",
    )
    .await;
    assert_eq!(used["reason"], "ALREADY_USED");
    let theirs = coupon(&app, other, discount("FIXED_AMOUNT", 1_000, 0, None)).await;
    assert_problem(
        place(&app, user, &order_body(&line(1), json!({ "couponId": theirs }))).await,
        404,
        "COUPON_NOT_FOUND",
    )
    .await;

    let capped = coupon(&app, user, discount("FIXED_AMOUNT", 4_000, 0, None)).await;
    let above = assert_problem(
        place(&app, user, &order_body(&line(1), json!({ "couponId": capped, "points": 6_001 }))).await,
        409,
        "POINTS_EXCEED_AMOUNT",
    )
    .await;
    assert_eq!(above["payable"], 6_000);
    let poor = assert_problem(
        place(&app, user, &order_body(&line(10), json!({ "points": 60_000 }))).await,
        409,
        "INSUFFICIENT_BALANCE",
    )
    .await;
    assert_eq!(poor["balance"], 50_000);
    let short = assert_problem(place(&app, user, &order_body(&line(50), json!({}))).await, 409, "OUT_OF_STOCK").await;
    assert_eq!((short["optionId"].clone(), short["left"].clone()), (json!(sizes[0]), json!(49)));

    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders").fetch_one(&app.env.pool).await.expect("orders");
    assert_eq!(orders, 1, "only the first order was written");
    assert_eq!(coupon_state(&app, capped).await, ("AVAILABLE".to_owned(), None), "a refused order leaves its coupon");
    assert_eq!(super::support::balance_and_ledger(&app, user).await, (50_000, 50_000), "and its points");
    assert_invariants(&app, &[(sizes[0], 50)]).await;
}

#[tokio::test]
async fn bad_order_input_is_422_naming_each_field() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let (shirt, sizes) = product(&app, 1_000, &[("S", 0, 5)]).await;
    let mut body = order_body(&[(shirt, sizes[0], 0)], json!({}));
    body["shipping"] = json!({ "receiverName": "", "phone": "x", "address": "a" });
    let refused = assert_problem(place(&app, user, &body).await, 422, "VALIDATION_FAILED").await;
    let fields: Vec<&str> =
        refused["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().expect("field")).collect();
    assert_eq!(fields, vec!["items.quantity", "shipping.receiverName", "shipping.phone"]);
    assert_problem(place(&app, user, &order_body(&[], json!({}))).await, 422, "VALIDATION_FAILED").await;
    let wrong_method = order_body(&[(shirt, sizes[0], 1)], json!({ "paymentMethod": "CASH_IN_A_BAG" }));
    assert_problem(place(&app, user, &wrong_method).await, 422, "INVALID_BODY").await;
    let negative_points = order_body(&[(shirt, sizes[0], 1)], json!({ "points": -5 }));
    assert_problem(place(&app, user, &negative_points).await, 422, "INVALID_BODY").await;
    let mismatched = order_body(&[(shirt + 1_000, sizes[0], 1)], json!({}));
    assert_problem(place(&app, user, &mismatched).await, 404, "PRODUCT_NOT_FOUND").await;
    assert_eq!(stock(&app, sizes[0]).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_racing_requests_with_one_idempotency_key_place_one_order() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let (shirt, sizes) = product(&app, 1_000, &[("S", 0, 100)]).await;
    let body = order_body(&[(shirt, sizes[0], 1)], json!({}));
    let send = || keyed_order(&app, user, "buy-once", &body).send();
    let answers = futures::future::join_all((0..20).map(|_| send())).await;
    let mut ids = std::collections::BTreeSet::new();
    for answer in answers {
        let answer = answer.expect("request");
        assert_eq!(answer.status(), 201);
        ids.insert(answer.json::<Value>().await.expect("json")["id"].as_i64().expect("id"));
    }
    assert_eq!(ids.len(), 1, "every retry answers with the same order");
    assert_eq!(stock(&app, sizes[0]).await, 99);
    let other_body = order_body(&[(shirt, sizes[0], 2)], json!({}));
    let reused = keyed_order(&app, user, "buy-once", &other_body).send().await.expect("request");
    assert_problem(reused, 422, "IDEMPOTENCY_KEY_REUSED").await;
    // Once sold out, a retry still answers with its order (the gate's refusal checks the key first).
    sqlx::query("UPDATE product_options SET stock = 0 WHERE id = $1")
        .bind(sizes[0])
        .execute(&app.env.pool)
        .await
        .expect("sell out");
    let sold_out_retry = send().await.expect("request");
    assert_eq!(sold_out_retry.status(), 201);
}

#[tokio::test]
async fn orders_are_read_and_cancelled_by_their_owner_or_an_admin_only() {
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let (owner, stranger) = (users[0], users[1]);
    let (owner_token, stranger_token, admin) =
        (app.token(owner, Role::User), app.token(stranger, Role::User), admin_token(&app));
    let (shirt, sizes) = product(&app, 1_000, &[("S", 0, 10)]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let order: Value =
            place(&app, owner, &order_body(&[(shirt, sizes[0], 1)], json!({}))).await.json().await.expect("json");
        ids.push(order["id"].as_i64().expect("id"));
    }
    let path = format!("/api/v3/orders/{}", ids[0]);
    let as_stranger = app.client.get(app.url(&path)).bearer_auth(&stranger_token).send().await.expect("get");
    assert_problem(as_stranger, 404, "ORDER_NOT_FOUND").await;
    assert_eq!(app.get_json(&path, &admin).await["userId"], owner);
    assert_problem(cancel(&app, &stranger_token, ids[0]).await, 404, "ORDER_NOT_FOUND").await;
    assert_eq!(cancel(&app, &admin, ids[0]).await.status(), 200, "an admin may cancel anyone's order");
    assert_problem(cancel(&app, &owner_token, ids[0]).await, 409, "ALREADY_CANCELLED").await;

    let page = app.get_json("/api/v3/orders?limit=2", &owner_token).await;
    let newest: Vec<i64> =
        page["items"].as_array().expect("items").iter().map(|o| o["id"].as_i64().expect("id")).collect();
    assert_eq!(newest, vec![ids[2], ids[1]]);
    let before = page["nextBefore"].as_i64().expect("more");
    let rest = app.get_json(&format!("/api/v3/orders?limit=2&before={before}"), &owner_token).await;
    assert_eq!(rest["items"][0]["id"], ids[0]);
    let cancelled = app.get_json("/api/v3/orders?status=CANCELLED", &owner_token).await;
    assert_eq!(cancelled["items"].as_array().expect("items").len(), 1);
    assert!(app.get_json("/api/v3/orders", &stranger_token).await["items"].as_array().expect("items").is_empty());
    let snooping = app
        .client
        .get(app.url(&format!("/api/v3/orders?userId={owner}")))
        .bearer_auth(&stranger_token)
        .send()
        .await
        .expect("get");
    assert_problem(snooping, 404, "USER_NOT_FOUND").await;
    assert_eq!(
        app.get_json(&format!("/api/v3/orders?userId={owner}"), &admin).await["items"].as_array().expect("items").len(),
        3
    );
    assert_invariants(&app, &[(sizes[0], 10)]).await;
}

#[tokio::test]
async fn a_cart_order_takes_the_named_lines_out_of_the_cart_in_the_same_transaction() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let token = app.token(user, Role::User);
    let (shirt, sizes) = product(&app, 1_000, &[("S", 0, 10), ("L", 0, 10)]).await;
    for option in &sizes {
        let added = app
            .post_json("/api/v1/carts", &token, &json!({ "productId": shirt, "optionId": option, "quantity": 2 }))
            .await;
        assert_eq!(added.status(), 200);
    }
    let body = |lines: Value| {
        let mut body = json!({ "shipping": super::support::shipping(), "paymentMethod": "BANK_TRANSFER" });
        if !lines.is_null() {
            body["lines"] = lines;
        }
        body
    };
    let first = app
        .post_json("/api/v3/orders/cart", &token, &body(json!([{ "productId": shirt, "optionId": sizes[0] }])))
        .await;
    assert_eq!(first.status(), 201);
    let cart = app.get_json(&format!("/api/v1/carts/{user}"), &token).await;
    assert_eq!(cart["lines"].as_array().expect("lines").len(), 1, "the ordered line left the cart");
    let not_in_cart = app
        .post_json("/api/v3/orders/cart", &token, &body(json!([{ "productId": shirt, "optionId": sizes[0] }])))
        .await;
    assert_problem(not_in_cart, 404, "CART_LINE_NOT_FOUND").await;
    // Two concurrent whole-cart orders: the cart is ordered once.
    let answers =
        concurrently(&app, 2, vec![("/api/v3/orders/cart".into(), token.clone(), body(Value::Null)); 2]).await;
    let statuses: std::collections::BTreeSet<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [201, 409].into(), "{answers:?}");
    assert_eq!((stock(&app, sizes[0]).await, stock(&app, sizes[1]).await), (8, 8));
    assert_problem(app.post_json("/api/v3/orders/cart", &token, &body(Value::Null)).await, 409, "CART_EMPTY").await;
    assert_invariants(&app, &[(sizes[0], 10), (sizes[1], 10)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_of_an_order_still_in_its_transaction_is_answered_with_that_order_not_out_of_stock() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let (shirt, sizes) = product(&app, 1_000, &[("last one", 0, 1)]).await;
    let body = order_body(&[(shirt, sizes[0], 1)], json!({}));
    let send = || tokio::spawn(keyed_order(&app, user, "the-last-unit", &body).send());
    // The first request takes the last unit at the gate, then waits inside its transaction for the row.
    let holder = lock_option(&app, sizes[0]).await;
    let first = send();
    assert!(waiting_on_locks(&app, 1).await, "the first request is inside its transaction");
    // Its retry finds the gate sold out, and (as when another buyer was refused within the second) not its
    // turn to compare the gate with the database: it must wait for the key's first request, not refuse.
    let check_token = format!("{}shop:stock:{}:check", app.env.redis.key_prefix, sizes[0]);
    let client = redis::Client::open(app.env.redis.url.as_str()).expect("url");
    let mut redis = client.get_multiplexed_async_connection().await.expect("redis");
    let _: () =
        redis::cmd("SET").arg(&check_token).arg(1).arg("PX").arg(60_000).query_async(&mut redis).await.expect("SET");
    let retry = send();
    let retry_waits_or_answered = testkit::process::eventually(std::time::Duration::from_secs(10), || async {
        retry.is_finished() || sessions_waiting_on_locks(&app).await >= 2
    });
    assert!(retry_waits_or_answered.await, "the retry neither answered nor waited");
    holder.rollback().await.expect("release the row");
    let first = first.await.expect("task").expect("request");
    assert_eq!(first.status(), 201, "the first request placed the order");
    let placed: Value = first.json().await.expect("json");
    let retry = retry.await.expect("task").expect("request");
    assert_eq!(retry.status(), 201, "the retry answers as the first did, not 409 OUT_OF_STOCK");
    assert_eq!(retry.json::<Value>().await.expect("json")["id"], placed["id"]);
    assert_eq!(stock(&app, sizes[0]).await, 0);
}

/// The balance as the API shows it (through its cache), and as the database holds it.
async fn shown_and_stored_balance(app: &TestApp, user: i64) -> (i64, i64) {
    let shown = app.get_json(&format!("/api/v2/points/users/{user}/balance"), &app.token(user, Role::User)).await;
    let stored = super::support::balance_and_ledger(app, user).await.0;
    (shown["balance"].as_i64().expect("balance"), stored)
}

#[tokio::test]
async fn the_balance_shown_after_an_order_and_after_its_cancel_is_the_one_they_left() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let (shirt, sizes) = product(&app, 20_000, &[("S", 0, 5)]).await;
    earn(&app, user, 10_000).await;
    assert_eq!(shown_and_stored_balance(&app, user).await, (10_000, 10_000), "read once: now cached");
    let order = place(&app, user, &order_body(&[(shirt, sizes[0], 1)], json!({ "points": 10_000 }))).await;
    assert_eq!(order.status(), 201);
    let order: Value = order.json().await.expect("json");
    assert_eq!(shown_and_stored_balance(&app, user).await, (0, 0), "the order's spend is shown at once");
    let token = app.token(user, Role::User);
    assert_eq!(cancel(&app, &token, order["id"].as_i64().expect("id")).await.status(), 200);
    assert_eq!(shown_and_stored_balance(&app, user).await, (10_000, 10_000), "the cancel's refund is shown at once");
}

/// An order of `user` with an Idempotency-Key, ready to send.
fn keyed_order(app: &TestApp, user: i64, key: &str, body: &Value) -> reqwest::RequestBuilder {
    let request = app.client.post(app.url("/api/v3/orders")).bearer_auth(app.token(user, Role::User));
    request.header("Idempotency-Key", key).json(body)
}

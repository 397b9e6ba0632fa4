//! The shop's invariants under concurrency: every test races real requests and then checks the database.

use super::support::{
    assert_invariants, balance_and_ledger, cancel, concurrently, coupon, coupon_state, discount, earn, order_body,
    product, stock, tally,
};
use crate::coupons::support::create_users;
use crate::helpers::{spawn_app, TestApp};
use domain::Role;
use serde_json::{json, Value};

fn order_requests(app: &TestApp, users: &[i64], body: &Value) -> Vec<(String, String, Value)> {
    users.iter().map(|user| ("/api/v3/orders".to_owned(), app.token(*user, Role::User), body.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_buyers_for_a_hundred_units_place_exactly_a_hundred_orders() {
    let app = spawn_app().await;
    let users = create_users(&app, 2_000).await;
    let (sale, options) = product(&app, 9_900, &[("limited", 0, 100)]).await;
    let body = order_body(&[(sale, options[0], 1)], json!({}));
    let answers = concurrently(&app, 64, order_requests(&app, &users, &body)).await;
    let counts = tally(&answers);
    assert_eq!(counts.get("201"), Some(&100), "{counts:?}");
    assert_eq!(counts.get("409 OUT_OF_STOCK"), Some(&1_900), "every other answer is OUT_OF_STOCK: {counts:?}");
    assert_eq!(stock(&app, options[0]).await, 0);
    let buyers: i64 = sqlx::query_scalar("SELECT count(DISTINCT user_id) FROM orders WHERE status = 'PENDING_PAYMENT'")
        .fetch_one(&app.env.pool)
        .await
        .expect("buyers");
    assert_eq!(buyers, 100);
    assert_invariants(&app, &[(options[0], 100)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_coupon_in_twenty_concurrent_orders_serves_exactly_one_and_the_rest_write_nothing() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let (shirt, sizes) = product(&app, 20_000, &[("S", 0, 100)]).await;
    let coupon = coupon(&app, user, discount("FIXED_AMOUNT", 5_000, 10_000, None)).await;
    let body = order_body(&[(shirt, sizes[0], 1)], json!({ "couponId": coupon }));
    let answers = concurrently(&app, 20, order_requests(&app, &[user; 20], &body)).await;
    let counts = tally(&answers);
    assert_eq!(counts.get("201"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("409 COUPON_NOT_APPLICABLE"), Some(&19), "{counts:?}");
    let placed = answers.iter().find(|(status, _)| *status == 201).expect("one placed").1["id"].as_i64();
    assert_eq!(coupon_state(&app, coupon).await, ("USED".to_owned(), placed));
    assert_eq!(stock(&app, sizes[0]).await, 99, "refused orders took no stock");
    assert_invariants(&app, &[(sizes[0], 100)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_spending_points_beside_direct_uses_never_overspend_and_balance_equals_ledger() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let token = app.token(user, Role::User);
    let (shirt, sizes) = product(&app, 10_000, &[("S", 0, 1_000)]).await;
    earn(&app, user, 10_000).await;
    let order = order_body(&[(shirt, sizes[0], 1)], json!({ "points": 700 }));
    let mut requests = Vec::new();
    for n in 0..40 {
        if n % 2 == 0 {
            requests.push(("/api/v3/orders".to_owned(), token.clone(), order.clone()));
        } else {
            requests.push(("/api/v2/points/use".to_owned(), token.clone(), json!({ "amount": 300 })));
        }
    }
    let answers = concurrently(&app, 16, requests).await;
    let spent: i64 = answers
        .iter()
        .filter(|(status, _)| *status == 200 || *status == 201)
        .map(|(status, _)| if *status == 201 { 700 } else { 300 })
        .sum();
    let refused =
        answers.iter().filter(|(status, body)| *status == 409 && body["code"] == "INSUFFICIENT_BALANCE").count();
    assert_eq!(
        answers.len() - refused,
        answers.iter().filter(|(s, _)| *s == 200 || *s == 201).count(),
        "{:?}",
        tally(&answers)
    );
    let (balance, ledger) = balance_and_ledger(&app, user).await;
    assert_eq!((balance, ledger), (10_000 - spent, 10_000 - spent));
    assert!((0..700).contains(&balance), "spending went on until nothing more fit: {balance} left");
    assert_invariants(&app, &[(sizes[0], 1_000)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_restores_stock_coupon_and_points_exactly_once_however_often_it_races() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let token = app.token(user, Role::User);
    let (shirt, sizes) = product(&app, 10_000, &[("S", 0, 7), ("L", 0, 9)]).await;
    let coupon = coupon(&app, user, discount("PERCENTAGE", 20, 0, None)).await;
    earn(&app, user, 5_000).await;
    for concurrent_cancels in [2, 10] {
        let body =
            order_body(&[(shirt, sizes[1], 2), (shirt, sizes[0], 3)], json!({ "couponId": coupon, "points": 4_000 }));
        let placed: Value = app.post_json("/api/v3/orders", &token, &body).await.json().await.expect("json");
        let order = placed["id"].as_i64().expect("order id");
        assert_eq!((stock(&app, sizes[0]).await, stock(&app, sizes[1]).await), (4, 7));
        let requests =
            vec![("/api/v3/orders/cancel".to_owned(), token.clone(), json!({ "orderId": order })); concurrent_cancels];
        let counts = tally(&concurrently(&app, concurrent_cancels, requests).await);
        assert_eq!(counts.get("200"), Some(&1), "{counts:?}");
        assert_eq!(counts.get("409 ALREADY_CANCELLED"), Some(&(concurrent_cancels - 1)), "{counts:?}");
        assert_eq!((stock(&app, sizes[0]).await, stock(&app, sizes[1]).await), (7, 9), "stock exactly as before");
        assert_eq!(coupon_state(&app, coupon).await, ("AVAILABLE".to_owned(), None), "the coupon is available again");
        assert_eq!(balance_and_ledger(&app, user).await, (5_000, 5_000), "the points are back");
        let refunds: i64 = sqlx::query_scalar("SELECT count(*) FROM points WHERE user_id = $1 AND kind = 'CANCEL' AND cancels_point_id = (SELECT point_use_id FROM orders WHERE id = $2)")
            .bind(user).bind(order).fetch_one(&app.env.pool).await.expect("refunds");
        assert_eq!(refunds, 1, "one CANCEL entry, linked to the use");
        assert_problem_cancel_again(&app, &token, order).await;
    }
    assert_invariants(&app, &[(sizes[0], 7), (sizes[1], 9)]).await;
}

async fn assert_problem_cancel_again(app: &TestApp, token: &str, order: i64) {
    crate::helpers::assert_problem(cancel(app, token, order).await, 409, "ALREADY_CANCELLED").await;
}

/// A small deterministic generator, so a failing mix can be replayed from its seed.
struct Mix(u64);

impl Mix {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_random_mix_of_orders_cart_orders_and_cancels_conserves_stock_coupons_and_points() {
    let app = spawn_app().await;
    let users = create_users(&app, 12).await;
    let (shirt, sizes) = product(&app, 3_000, &[("A", 0, 40), ("B", 500, 25), ("C", 1_000, 60)]).await;
    let mut coupons = Vec::new();
    for user in &users {
        earn(&app, *user, 20_000).await;
        coupons.push(coupon(&app, *user, discount("PERCENTAGE", 15, 5_000, Some(2_000))).await);
    }
    let seed = 0x5eed_2026_u64;
    let mut mix = Mix(seed);
    let mut placed: Vec<(i64, String)> = Vec::new();
    for round in 0..12 {
        let mut requests = Vec::new();
        for (index, user) in users.iter().enumerate() {
            let token = app.token(*user, Role::User);
            let option = sizes[mix.next(3) as usize];
            let quantity = 1 + mix.next(3) as i32;
            let mut extra = json!({});
            if mix.next(3) == 0 {
                extra["couponId"] = json!(coupons[index]);
            }
            if mix.next(3) == 0 {
                extra["points"] = json!(1 + mix.next(3_000));
            }
            match mix.next(4) {
                0 => {
                    let line = json!({ "productId": shirt, "optionId": option, "quantity": quantity });
                    let added = app.post_json("/api/v1/carts", &token, &line).await;
                    assert!(added.status() == 200 || added.status() == 422, "cart add: {}", added.status());
                    let mut body = json!({ "shipping": super::support::shipping(), "paymentMethod": "MOBILE" });
                    super::support::merge(&mut body, extra);
                    requests.push(("/api/v3/orders/cart".to_owned(), token, body));
                }
                1 if !placed.is_empty() => {
                    let (order, owner_token) = placed[mix.next(placed.len() as u64) as usize].clone();
                    requests.push(("/api/v3/orders/cancel".to_owned(), owner_token, json!({ "orderId": order })));
                }
                _ => {
                    requests.push(("/api/v3/orders".to_owned(), token, order_body(&[(shirt, option, quantity)], extra)))
                }
            }
        }
        for (status, body) in concurrently(&app, 12, requests.clone()).await {
            assert!(status < 500, "round {round} (seed {seed:#x}): {status} {body}");
            if status == 201 {
                let owner = body["userId"].as_i64().expect("owner");
                placed.push((body["id"].as_i64().expect("id"), app.token(owner, Role::User)));
            }
        }
    }
    assert!(placed.len() > 30, "the mix placed orders: {}", placed.len());
    let cancelled: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = 'CANCELLED'")
        .fetch_one(&app.env.pool)
        .await
        .expect("cancelled");
    assert!(cancelled > 5, "and cancelled some: {cancelled}");
    assert_invariants(&app, &[(sizes[0], 40), (sizes[1], 25), (sizes[2], 60)]).await;
}

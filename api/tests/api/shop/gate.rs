//! The Redis stock gate only speeds refusals up: lost, wrong or unreachable, it never changes which
//! orders are placed, and it repairs itself from the database.

use super::support::{assert_invariants, order_body, place, product, stock};
use crate::coupons::support::{admin_token, create_users};
use crate::helpers::{assert_problem, private_redis, spawn_app, spawn_app_with, TestApp};
use redis::AsyncCommands;
use serde_json::json;

async fn redis(app: &TestApp) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(app.env.redis.url.as_str()).expect("redis url");
    client.get_multiplexed_async_connection().await.expect("redis")
}

fn gate_key(app: &TestApp, option: i64) -> String {
    format!("{}shop:stock:{option}", app.env.redis.key_prefix)
}

#[tokio::test]
async fn the_gate_loads_from_the_database_refuses_once_sold_out_and_follows_restocks_and_cancels() {
    let app = spawn_app().await;
    let users = create_users(&app, 4).await;
    let (sale, options) = product(&app, 1_000, &[("one", 0, 2)]).await;
    let body = order_body(&[(sale, options[0], 1)], json!({}));
    let mut connection = redis(&app).await;
    let mut placed = Vec::new();
    for user in &users[..2] {
        let order: serde_json::Value = place(&app, *user, &body).await.json().await.expect("json");
        placed.push(order["id"].as_i64().expect("id"));
    }
    let gate: i32 = connection.get(gate_key(&app, options[0])).await.expect("gate");
    assert_eq!(gate, 0, "loaded from the database on first use and taken from by each order");
    let refused = assert_problem(place(&app, users[2], &body).await, 409, "OUT_OF_STOCK").await;
    assert_eq!(refused["left"], 0);

    let cancelled = super::support::cancel(&app, &app.token(users[0], domain::Role::User), placed[0]).await;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(
        connection.get::<_, i32>(gate_key(&app, options[0])).await.expect("gate"),
        1,
        "a cancel gives its unit back"
    );
    assert_eq!(place(&app, users[2], &body).await.status(), 201);
    let path = format!("/api/v1/products/{sale}/options/{}/stock", options[0]);
    assert_eq!(app.post_json(&path, &admin_token(&app), &json!({ "add": 1 })).await.status(), 200);
    assert_eq!(place(&app, users[3], &body).await.status(), 201, "a restock opens the gate");
    assert_eq!(stock(&app, options[0]).await, 0);
    assert_invariants(&app, &[(options[0], 3)]).await;
}

#[tokio::test]
async fn a_lost_or_too_low_gate_is_rebuilt_from_the_database_and_a_too_high_one_cannot_oversell() {
    let app = spawn_app().await;
    let users = create_users(&app, 6).await;
    let (sale, options) = product(&app, 1_000, &[("one", 0, 3)]).await;
    let body = order_body(&[(sale, options[0], 1)], json!({}));
    let key = gate_key(&app, options[0]);
    let mut connection = redis(&app).await;
    assert_eq!(place(&app, users[0], &body).await.status(), 201);

    let _: () = connection.del(&key).await.expect("lose the gate");
    assert_eq!(place(&app, users[1], &body).await.status(), 201, "a lost gate loads again");
    assert_eq!(connection.get::<_, i32>(&key).await.expect("gate"), 1);

    // A unit leaked by a process that died between taking and giving back: the gate reads 0, the database 1.
    let _: () = connection.set(&key, 0).await.expect("leak");
    assert_eq!(place(&app, users[2], &body).await.status(), 201, "the sold-out answer checks the database first");

    let _: () = connection.set(&key, 50).await.expect("too high");
    for user in &users[3..] {
        assert_problem(place(&app, *user, &body).await, 409, "OUT_OF_STOCK").await;
    }
    assert_eq!(connection.get::<_, i32>(&key).await.expect("gate"), 0, "the database's refusal resets the gate");
    assert_invariants(&app, &[(options[0], 3)]).await;
}

#[tokio::test]
async fn with_redis_gone_orders_go_straight_to_the_database_and_stay_correct() {
    let (mut redis, url) = private_redis().await;
    let app = spawn_app_with(Default::default(), |config| config.redis.url = url).await;
    let users = create_users(&app, 3).await;
    let (sale, options) = product(&app, 1_000, &[("one", 0, 2)]).await;
    let body = order_body(&[(sale, options[0], 1)], json!({}));
    assert_eq!(place(&app, users[0], &body).await.status(), 201);

    redis.kill();
    assert_eq!(place(&app, users[1], &body).await.status(), 201, "an order does not need Redis");
    assert_problem(place(&app, users[2], &body).await, 409, "OUT_OF_STOCK").await;
    assert_invariants(&app, &[(options[0], 2)]).await;
}

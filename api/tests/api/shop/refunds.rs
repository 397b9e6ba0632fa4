//! An order's coupon and points come back only through the order's cancel, and its events leave once,
//! in order, per order.

use super::support::{cancel, coupon, coupon_state, discount, earn, order_body, place, product};
use crate::coupons::support::create_users;
use crate::helpers::{assert_problem, spawn_app};
use domain::Role;
use infra::{
    kafka::{Kafka, Topic},
    outbox::Envelope,
};
use rdkafka::message::Message;
use serde_json::{json, Value};
use settle_workers::outbox_relay::{self, Publisher, RelayLimits};
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn the_direct_cancel_routes_refuse_a_use_that_an_order_made() {
    let app = spawn_app().await;
    let users = create_users(&app, 2).await;
    let (user, stranger) = (users[0], users[1]);
    let token = app.token(user, Role::User);
    let (shirt, sizes) = product(&app, 10_000, &[("S", 0, 5)]).await;
    let coupon = coupon(&app, user, discount("FIXED_AMOUNT", 1_000, 0, None)).await;
    earn(&app, user, 2_000).await;
    let order: Value =
        place(&app, user, &order_body(&[(shirt, sizes[0], 1)], json!({ "couponId": coupon, "points": 500 })))
            .await
            .json()
            .await
            .expect("json");
    let order_id = order["id"].as_i64().expect("id");
    let point_use: i64 = sqlx::query_scalar("SELECT point_use_id FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_one(&app.env.pool)
        .await
        .expect("point use");

    let coupon_cancel = app.post_json(&format!("/api/v3/coupons/{coupon}/cancel"), &token, &json!(null)).await;
    let refused = assert_problem(coupon_cancel, 409, "USE_BELONGS_TO_ORDER").await;
    assert_eq!(refused["orderId"], order_id);
    let point_cancel = app.post_json(&format!("/api/v2/points/{point_use}/cancel"), &token, &json!(null)).await;
    assert_problem(point_cancel, 409, "USE_BELONGS_TO_ORDER").await;
    assert_eq!(coupon_state(&app, coupon).await, ("USED".to_owned(), Some(order_id)));

    assert_eq!(cancel(&app, &token, order_id).await.status(), 200);
    assert_eq!(coupon_state(&app, coupon).await, ("AVAILABLE".to_owned(), None));
    // The direct coupon use names an order of the caller's, never someone else's or none.
    let stranger_order: Value =
        place(&app, stranger, &order_body(&[(shirt, sizes[0], 1)], json!({}))).await.json().await.expect("json");
    let use_path = format!("/api/v3/coupons/{coupon}/use");
    let foreign = app.post_json(&use_path, &token, &json!({ "orderId": stranger_order["id"] })).await;
    assert_problem(foreign, 404, "ORDER_NOT_FOUND").await;
    assert_problem(app.post_json(&use_path, &token, &json!({ "orderId": 999_999 })).await, 404, "ORDER_NOT_FOUND")
        .await;
    assert_eq!(coupon_state(&app, coupon).await, ("AVAILABLE".to_owned(), None));
}

#[tokio::test]
async fn every_placed_and_cancelled_order_appends_its_events_once_in_order_per_order() {
    let app = spawn_app().await;
    let user = create_users(&app, 1).await[0];
    let token = app.token(user, Role::User);
    let (shirt, sizes) = product(&app, 1_000, &[("S", 0, 50)]).await;
    let mut orders = Vec::new();
    for n in 0..6 {
        let order: Value =
            place(&app, user, &order_body(&[(shirt, sizes[0], 1)], json!({}))).await.json().await.expect("json");
        let id = order["id"].as_i64().expect("id");
        if n % 2 == 0 {
            assert_eq!(cancel(&app, &token, id).await.status(), 200);
            assert_eq!(cancel(&app, &token, id).await.status(), 409);
        }
        orders.push((id, n % 2 == 0));
    }
    for &(order, cancelled) in &orders {
        let events: Vec<(String, Value)> = sqlx::query_as(
            "SELECT event_type, payload FROM outbox_events WHERE aggregate_type = 'order' AND aggregate_id = $1 ORDER BY id",
        )
        .bind(order.to_string())
        .fetch_all(&app.env.pool)
        .await
        .expect("events");
        let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
        let expected = if cancelled { vec!["OrderPlaced", "OrderCancelled"] } else { vec!["OrderPlaced"] };
        assert_eq!(types, expected, "order {order}");
        assert!(events.iter().all(|(_, payload)| payload["orderId"] == order));
    }
    let delivered = relay_and_read_order_events(&app, 9).await;
    let mut per_order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for envelope in delivered {
        per_order.entry(envelope.aggregate_id).or_default().push(envelope.event_type);
    }
    for (order, cancelled) in orders {
        let expected: Vec<String> =
            if cancelled { vec!["OrderPlaced".into(), "OrderCancelled".into()] } else { vec!["OrderPlaced".into()] };
        assert_eq!(
            per_order.get(&order.to_string()),
            Some(&expected),
            "orders.events for order {order}, once and in order"
        );
    }
}

/// Runs the outbox relay over everything unsent, then reads `orders.events` until `expected` arrived.
async fn relay_and_read_order_events(app: &crate::helpers::TestApp, expected: usize) -> Vec<Envelope> {
    let kafka = Kafka::new(app.env.kafka.clone());
    kafka.ensure_topics(&Topic::ALL).await.expect("topics");
    let publisher = Publisher::new(&kafka).expect("publisher");
    let limits = RelayLimits { batch_size: 100, max_attempts: 10 };
    let unsent = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox_events WHERE sent_at IS NULL")
            .fetch_one(&app.env.pool)
            .await
            .expect("unsent")
    };
    while unsent().await > 0 {
        outbox_relay::relay_batch(&app.env.pool, &publisher, limits, &CancellationToken::new()).await.expect("relay");
    }
    let reader = testkit::reader_from_start(&kafka, &kafka.topic_name(Topic::OrdersEvents)).expect("reader");
    let mut envelopes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while envelopes.len() < expected && Instant::now() < deadline {
        let Some(message) = reader.next().await else { continue };
        envelopes.push(serde_json::from_slice(message.payload().expect("payload")).expect("an envelope"));
    }
    // Anything more than expected would be a duplicate: give it a moment to show up.
    if let Some(message) = reader.next().await {
        envelopes.push(serde_json::from_slice(message.payload().expect("payload")).expect("an envelope"));
    }
    envelopes
}

//! Paying an order through the provider's protocol, against a sandbox process of the test's own: the
//! amount checked before any call, one confirm however many requests race, declines, answers that never
//! come, and a cancel of a paid order that gives the money back at the provider first.

use super::support::{assert_invariants, cancel, order_body, place, product, stock};
use crate::coupons::support::create_users;
use crate::helpers::{assert_problem, spawn_app_with, TestApp};
use domain::Role;
use serde_json::{json, Value};
use settle_api::config::HttpLimits;
use std::time::Duration;
use testkit::sandbox::OwnSandbox;

/// An app whose payment provider is a sandbox of the test's own; calls time out after `timeout_ms`.
pub(super) async fn app_with_sandbox(timeout_ms: u64) -> (TestApp, OwnSandbox) {
    let sandbox = OwnSandbox::start(testkit::sandbox::binary(), Duration::from_secs(3)).await.expect("a sandbox");
    let args = sandbox.payment_args(timeout_ms);
    let app = spawn_app_with(HttpLimits::default(), move |config| config.payments = args).await;
    (app, sandbox)
}

/// A placed, unpaid order of one unit at `price`, and the option it took.
pub(super) async fn unpaid_order(app: &TestApp, buyer: i64, price: i64) -> (Value, i64) {
    let (product, options) = product(app, price, &[("one size", 0, 5)]).await;
    let response = place(app, buyer, &order_body(&[(product, options[0], 1)], json!({}))).await;
    assert_eq!(response.status(), 201);
    (response.json().await.expect("json"), options[0])
}

/// The buyer pays in the provider's window for the order's amount: the payment key.
pub(super) async fn checkout(sandbox: &OwnSandbox, order: &Value) -> String {
    let order_ref = order["paymentOrderId"].as_str().expect("the provider's order id");
    let amount = order["amountToPay"].as_i64().expect("amount");
    sandbox.checkout(order_ref, amount, "CARD").await.expect("checkout")
}

pub(super) async fn pay(app: &TestApp, token: &str, order: &Value, key: &str, amount: i64) -> reqwest::Response {
    let path = format!("/api/v3/orders/{}/payment", order["id"]);
    app.post_json(&path, token, &json!({ "paymentKey": key, "amount": amount })).await
}

#[tokio::test]
async fn a_payment_for_the_amount_to_pay_makes_the_order_paid_once_and_a_retry_answers_the_same() {
    let (app, sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, _) = unpaid_order(&app, buyer, 12_000).await;
    let key = checkout(&sandbox, &order).await;

    let paid = pay(&app, &token, &order, &key, 12_000).await;
    assert_eq!(paid.status(), 200);
    let paid: Value = paid.json().await.expect("json");
    assert_eq!(paid["status"], "PAID");
    assert_eq!(
        (paid["payment"]["status"].as_str(), paid["payment"]["method"].as_str()),
        (Some("APPROVED"), Some("CARD"))
    );
    let masked = paid["payment"]["paymentKey"].as_str().expect("masked key");
    assert!(masked.contains('…') && !masked.contains(&key[4..key.len() - 4]), "masked: {masked}");
    let retry: Value = pay(&app, &token, &order, &key, 12_000).await.json().await.expect("json");
    assert_eq!(retry["status"], "PAID");
    assert_eq!(sandbox.calls_of("confirm").await.expect("calls"), 1, "the retry did not call the provider");
    let history: Value = app.get_json(&format!("/api/v3/orders/{}/history", order["id"]), &token).await;
    assert_eq!(history[1]["to"], "PAID");
    assert_eq!(history[1]["actor"], "system:payment");
    // The provider opens no second window for the paid order's id; a key sent anyway is refused here.
    let again = sandbox.checkout(order["paymentOrderId"].as_str().expect("ref"), 12_000, "CARD").await;
    assert!(again.is_err_and(|error| error.to_string().contains("DUPLICATED_ORDER_ID")));
    assert_problem(pay(&app, &token, &order, "sbx_another_key", 12_000).await, 409, "ORDER_NOT_PAYABLE").await;
}

#[tokio::test]
async fn a_tampered_amount_is_refused_before_any_call_and_a_stranger_cannot_pay() {
    let (app, sandbox) = app_with_sandbox(2_000).await;
    let users = create_users(&app, 2).await;
    let (order, _) = unpaid_order(&app, users[0], 30_000).await;
    let key = checkout(&sandbox, &order).await;
    let token = app.token(users[0], Role::User);

    let tampered = assert_problem(pay(&app, &token, &order, &key, 300).await, 422, "PAYMENT_AMOUNT_MISMATCH").await;
    assert_eq!(tampered["amountToPay"], 30_000);
    let stranger = pay(&app, &app.token(users[1], Role::User), &order, &key, 30_000).await;
    assert_problem(stranger, 404, "ORDER_NOT_FOUND").await;
    assert_eq!(sandbox.calls_of("confirm").await.expect("calls"), 0, "no call reached the provider");
    let read: Value = app.get_json(&format!("/api/v3/orders/{}", order["id"]), &token).await;
    assert_eq!(read["status"], "PENDING_PAYMENT");
}

#[tokio::test]
async fn twenty_racing_payment_requests_make_one_provider_confirm_and_one_paid_order() {
    let (app, sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, _) = unpaid_order(&app, buyer, 9_900).await;
    let key = checkout(&sandbox, &order).await;

    let requests = (0..20).map(|_| pay(&app, &token, &order, &key, 9_900));
    let answers = futures::future::join_all(requests).await;
    let mut statuses: Vec<u16> = answers.iter().map(|answer| answer.status().as_u16()).collect();
    statuses.sort_unstable();
    assert!(statuses.iter().all(|status| matches!(status, 200 | 202)), "{statuses:?}");
    assert_eq!(sandbox.calls_of("confirm").await.expect("calls"), 1, "one confirm: {statuses:?}");
    let read: Value = app.get_json(&format!("/api/v3/orders/{}", order["id"]), &token).await;
    assert_eq!(read["status"], "PAID");
    let approved: i64 = sqlx::query_scalar("SELECT count(*) FROM payment_attempts WHERE status = 'APPROVED'")
        .fetch_one(&app.env.pool)
        .await
        .expect("attempts");
    assert_eq!(approved, 1);
}

#[tokio::test]
async fn a_declined_payment_leaves_the_order_payable_with_another_one() {
    let (app, sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, _) = unpaid_order(&app, buyer, 7_000).await;
    let declined_key = checkout(&sandbox, &order).await;
    sandbox.fault(Some(&declined_key), Some("DECLINE"), None).await.expect("fault");

    let declined = assert_problem(pay(&app, &token, &order, &declined_key, 7_000).await, 402, "PAYMENT_DECLINED").await;
    assert_eq!(declined["providerCode"], "REJECT_CARD_PAYMENT");
    let read: Value = app.get_json(&format!("/api/v3/orders/{}", order["id"]), &token).await;
    assert_eq!(
        (read["status"].as_str(), read["payment"]["status"].as_str()),
        (Some("PENDING_PAYMENT"), Some("DECLINED"))
    );
    // The same key answers its recorded outcome without asking the provider again.
    assert_problem(pay(&app, &token, &order, &declined_key, 7_000).await, 402, "PAYMENT_DECLINED").await;
    assert_eq!(sandbox.calls_of("confirm").await.expect("calls"), 1);

    let other = checkout(&sandbox, &order).await;
    let paid: Value = pay(&app, &token, &order, &other, 7_000).await.json().await.expect("json");
    assert_eq!(paid["status"], "PAID");
}

#[tokio::test]
async fn an_answer_that_never_comes_leaves_the_payment_unknown_and_the_order_unable_to_end() {
    let (app, sandbox) = app_with_sandbox(500).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, _) = unpaid_order(&app, buyer, 5_000).await;
    let key = checkout(&sandbox, &order).await;
    sandbox.fault(Some(&key), Some("DROP_ANSWER"), Some(1)).await.expect("fault");

    let pending = pay(&app, &token, &order, &key, 5_000).await;
    assert_eq!(pending.status(), 202);
    assert_eq!(pending.json::<Value>().await.expect("json")["status"], "UNKNOWN");
    let read: Value = app.get_json(&format!("/api/v3/orders/{}", order["id"]), &token).await;
    assert_eq!(
        (read["status"].as_str(), read["payment"]["status"].as_str()),
        (Some("PENDING_PAYMENT"), Some("UNKNOWN"))
    );
    // The provider holds the money: the order may not be cancelled (or paid again) before that is settled.
    assert_problem(cancel(&app, &token, order["id"].as_i64().expect("id")).await, 409, "PAYMENT_IN_PROGRESS").await;
    // The provider opens no second window for an order id it approved under; a key sent anyway is refused here.
    let refused = sandbox.checkout(order["paymentOrderId"].as_str().expect("ref"), 5_000, "CARD").await;
    assert!(refused.is_err_and(|error| error.to_string().contains("DUPLICATED_ORDER_ID")));
    assert_problem(pay(&app, &token, &order, "sbx_another_key", 5_000).await, 409, "PAYMENT_IN_PROGRESS").await;
}

#[tokio::test]
async fn cancelling_a_paid_order_gives_the_money_back_at_the_provider_then_the_goods_once() {
    let (app, sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, option) = unpaid_order(&app, buyer, 18_000).await;
    let key = checkout(&sandbox, &order).await;
    assert_eq!(pay(&app, &token, &order, &key, 18_000).await.status(), 200);
    let id = order["id"].as_i64().expect("id");

    let cancelled = cancel(&app, &token, id).await;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(cancelled.json::<Value>().await.expect("json")["status"], "CANCELLED");
    assert_problem(cancel(&app, &token, id).await, 409, "ALREADY_CANCELLED").await;
    assert_eq!(sandbox.calls_of("cancel").await.expect("calls"), 1, "one refund at the provider");
    let order_ref = order["paymentOrderId"].as_str().expect("ref");
    let at_provider = sandbox.payment_of_order(order_ref).await.expect("look-up").expect("a payment");
    assert_eq!((at_provider["status"].as_str(), at_provider["balanceAmount"].as_i64()), (Some("CANCELED"), Some(0)));
    assert_eq!(stock(&app, option).await, 5);
    assert_invariants(&app, &[(option, 5)]).await;
}

/// One resolution pass over the test's database, as the payment-resolution worker runs it, taking every
/// open attempt however fresh.
pub(super) async fn resolve(app: &TestApp, sandbox: &OwnSandbox) -> infra::shop::orders::Resolved {
    resolve_after(app, sandbox, Duration::ZERO).await
}

/// A resolution pass that takes only attempts open longer than `stale_after` (the worker's is twice
/// the provider's timeout: an answer may be on its way until then).
pub(super) async fn resolve_after(
    app: &TestApp,
    sandbox: &OwnSandbox,
    stale_after: Duration,
) -> infra::shop::orders::Resolved {
    let gateway = infra::payments::TossPayments::new(
        &sandbox.payment_args(2_000),
        infra::breaker::Breaker::new("payments", &Default::default()),
    )
    .expect("a client");
    let rules = infra::config::OrderArgs::default().lifecycle();
    let (resolved, effects) =
        infra::shop::orders::resolve(&app.env.pool, &gateway, rules, stale_after, 100).await.expect("a pass");
    // What the worker does with them: the caches learn what came back.
    let redis = infra::redis_client::Redis::connect(&app.env.redis).await.expect("redis");
    let balances = infra::points::cache::BalanceCache::new(redis.clone());
    let stock_gate = infra::shop::StockGate::new(redis, app.env.pool.clone());
    for effect in effects {
        effect.announce(&balances, &stock_gate).await;
    }
    resolved
}

#[tokio::test]
async fn an_approval_whose_answer_was_dropped_is_found_by_the_look_up_and_pays_the_order_once() {
    let (app, sandbox) = app_with_sandbox(500).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, option) = unpaid_order(&app, buyer, 6_000).await;
    let key = checkout(&sandbox, &order).await;
    sandbox.fault(Some(&key), Some("DROP_ANSWER"), Some(1)).await.expect("fault");
    assert_eq!(pay(&app, &token, &order, &key, 6_000).await.status(), 202);

    let resolved = resolve(&app, &sandbox).await;
    assert_eq!((resolved.approved, resolved.failed), (1, 0), "{resolved:?}");
    let read: Value = app.get_json(&format!("/api/v3/orders/{}", order["id"]), &token).await;
    assert_eq!((read["status"].as_str(), read["payment"]["status"].as_str()), (Some("PAID"), Some("APPROVED")));
    assert_eq!(resolve(&app, &sandbox).await, Default::default(), "a second pass finds nothing to do");
    assert_eq!(sandbox.calls_of("confirm").await.expect("calls"), 1, "charged once: the look-up never confirms");
    let retry: Value = pay(&app, &token, &order, &key, 6_000).await.json().await.expect("json");
    assert_eq!(retry["status"], "PAID", "the key's recorded outcome");
    assert_invariants(&app, &[(option, 5)]).await;
}

#[tokio::test]
async fn a_payment_that_hung_unapproved_is_settled_as_failed_and_the_order_stays_payable() {
    let (app, sandbox) = app_with_sandbox(500).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, _) = unpaid_order(&app, buyer, 4_000).await;
    let key = checkout(&sandbox, &order).await;
    sandbox.fault(Some(&key), Some("HANG"), Some(1)).await.expect("fault");
    assert_eq!(pay(&app, &token, &order, &key, 4_000).await.status(), 202);

    let resolved = resolve(&app, &sandbox).await;
    assert_eq!((resolved.approved, resolved.failed), (0, 1), "{resolved:?}");
    let read: Value = app.get_json(&format!("/api/v3/orders/{}", order["id"]), &token).await;
    assert_eq!(
        (read["status"].as_str(), read["payment"]["status"].as_str()),
        (Some("PENDING_PAYMENT"), Some("FAILED"))
    );
    let other = checkout(&sandbox, &order).await;
    let paid: Value = pay(&app, &token, &order, &other, 4_000).await.json().await.expect("json");
    assert_eq!(paid["status"], "PAID");
}

#[tokio::test]
async fn an_unpaid_order_past_its_window_expires_and_gives_everything_back_once() {
    let (app, sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, option) = unpaid_order(&app, buyer, 3_000).await;
    let (paid_order, _) = unpaid_order(&app, buyer, 3_500).await;
    let key = checkout(&sandbox, &paid_order).await;
    assert_eq!(pay(&app, &token, &paid_order, &key, 3_500).await.status(), 200);
    assert_eq!(stock(&app, option).await, 4);
    // The windows close (set back in time rather than waiting 15 minutes).
    sqlx::query("UPDATE orders SET payment_due_at = now() - interval '1 second'")
        .execute(&app.env.pool)
        .await
        .expect("windows closed");

    let resolved = resolve(&app, &sandbox).await;
    assert_eq!(resolved.expired, 1, "only the unpaid order: {resolved:?}");
    let read: Value = app.get_json(&format!("/api/v3/orders/{}", order["id"]), &token).await;
    assert_eq!(read["status"], "EXPIRED");
    let paid: Value = app.get_json(&format!("/api/v3/orders/{}", paid_order["id"]), &token).await;
    assert_eq!(paid["status"], "PAID");
    assert_eq!(stock(&app, option).await, 5, "the expired order's unit is back");
    assert_eq!(resolve(&app, &sandbox).await.expired, 0, "once");
    let late = checkout(&sandbox, &order).await;
    assert_problem(pay(&app, &token, &order, &late, 3_000).await, 409, "ORDER_CLOSED").await;
    assert_invariants(&app, &[(option, 5)]).await;
}

#[tokio::test]
async fn unpaid_orders_expire_in_bulk_with_their_coupons_and_points_back_and_a_tried_one_after_the_look_up() {
    let (app, sandbox) = app_with_sandbox(2_000).await;
    let buyers = create_users(&app, 3).await;
    let (product, options) = super::support::product(&app, 10_000, &[("one size", 0, 20)]).await;
    let mut placed = Vec::new();
    for &buyer in &buyers {
        super::support::earn(&app, buyer, 3_000).await;
        let coupon =
            super::support::coupon(&app, buyer, super::support::discount("FIXED_AMOUNT", 1_000, 0, None)).await;
        for extra in [json!({ "couponId": coupon, "points": 2_000 }), json!({ "points": 1_000 }), json!({})] {
            let body = super::support::order_body(&[(product, options[0], 2)], extra);
            let order: Value = super::support::place(&app, buyer, &body).await.json().await.expect("json");
            placed.push(order);
        }
    }
    assert_eq!(stock(&app, options[0]).await, 2);
    // One order had a payment that was declined: it expires only after the provider's look-up.
    let tried = &placed[2];
    let key = checkout(&sandbox, tried).await;
    sandbox.fault(Some(&key), Some("DECLINE"), None).await.expect("fault");
    let token = app.token(buyers[0], Role::User);
    assert_eq!(pay(&app, &token, tried, &key, tried["amountToPay"].as_i64().expect("amount")).await.status(), 402);
    sqlx::query("UPDATE orders SET payment_due_at = now() - interval '1 second'")
        .execute(&app.env.pool)
        .await
        .expect("windows closed");
    let look_ups = sandbox.calls_of("lookup").await.expect("calls");

    let resolved = resolve(&app, &sandbox).await;
    assert_eq!(resolved.expired, 9, "{resolved:?}");
    assert_eq!(sandbox.calls_of("lookup").await.expect("calls") - look_ups, 1, "only the tried order was looked up");
    assert_eq!(stock(&app, options[0]).await, 20, "every unit is back");
    for &buyer in &buyers {
        let balance: Value =
            app.get_json(&format!("/api/v2/points/users/{buyer}/balance"), &app.token(buyer, Role::User)).await;
        assert_eq!(balance["balance"], 3_000, "the points are back and the shown balance follows");
    }
    let available: i64 = sqlx::query_scalar("SELECT count(*) FROM coupons WHERE status = 'AVAILABLE'")
        .fetch_one(&app.env.pool)
        .await
        .expect("coupons");
    assert_eq!(available, 3, "the coupons are back");
    assert_eq!(resolve(&app, &sandbox).await.expired, 0, "once");
    assert_invariants(&app, &[(options[0], 20)]).await;
}

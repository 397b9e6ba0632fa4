//! Virtual accounts through the provider's protocol: the confirm hands out an account and the order
//! waits for the deposit; the provider's deposit callback, verified by the payment's secret, pays it once;
//! an account left unpaid by its due time is closed at the provider and the order expires; a buyer who
//! cancels before paying in has the account closed first, and a deposit that came first is given back.

use super::payments::{app_with_sandbox, pay, resolve};
use super::support::{assert_invariants, order_body, place, product, stock};
use crate::coupons::support::create_users;
use crate::helpers::{assert_problem, TestApp};
use domain::Role;
use serde_json::{json, Value};
use testkit::sandbox::OwnSandbox;

/// A placed order of one unit paid by virtual account, the account handed out: (order, option, answer).
async fn waiting_order(app: &TestApp, sandbox: &OwnSandbox, buyer: i64) -> (Value, i64, Value) {
    let (product, options) = product(app, 25_000, &[("one size", 0, 5)]).await;
    let mut body = order_body(&[(product, options[0], 1)], json!({}));
    body["paymentMethod"] = json!("VIRTUAL_ACCOUNT");
    let order: Value = place(app, buyer, &body).await.json().await.expect("json");
    let order_ref = order["paymentOrderId"].as_str().expect("ref");
    let key = sandbox.checkout(order_ref, 25_000, "VIRTUAL_ACCOUNT").await.expect("checkout");
    let answer = pay(app, &app.token(buyer, Role::User), &order, &key, 25_000).await;
    assert_eq!(answer.status(), 202);
    (order, options[0], answer.json().await.expect("json"))
}

async fn callback(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client.post(app.url("/api/v3/payments/callbacks/deposit")).json(body).send().await.expect("callback")
}

#[tokio::test]
async fn a_deposit_announced_with_the_accounts_secret_pays_the_order_once() {
    let (app, sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, _, waiting) = waiting_order(&app, &sandbox, buyer).await;
    let id = order["id"].as_i64().expect("id");
    assert_eq!(waiting["status"], "WAITING_FOR_DEPOSIT");
    assert!(
        waiting["virtualAccount"]["accountNumber"].is_string() && waiting["virtualAccount"]["dueDate"].is_string(),
        "{waiting}"
    );
    let read: Value = app.get_json(&format!("/api/v3/orders/{id}"), &token).await;
    assert_eq!(read["status"], "PENDING_PAYMENT");

    // The buyer pays into the account; the provider announces it.
    let order_ref = order["paymentOrderId"].as_str().expect("ref");
    let deposited: Value = deposit_at_sandbox(&sandbox, &order).await.json().await.expect("json");
    let announce = |secret: &str| {
        json!({ "createdAt": "2026-12-06T21:30:00.000000", "secret": secret, "status": "DONE",
                "transactionKey": deposited["lastTransactionKey"], "orderId": order_ref })
    };
    assert_problem(callback(&app, &announce("not-the-secret")).await, 403, "DEPOSIT_NOT_VERIFIED").await;
    assert_eq!(app.get_json(&format!("/api/v3/orders/{id}"), &token).await["status"], "PENDING_PAYMENT");
    let secret = deposited["secret"].as_str().expect("the account's secret");
    for _ in 0..2 {
        let answered = callback(&app, &announce(secret)).await;
        assert_eq!(answered.status(), 200);
        assert_eq!(answered.json::<Value>().await.expect("json")["result"], "PAID");
    }
    let read: Value = app.get_json(&format!("/api/v3/orders/{id}"), &token).await;
    assert_eq!((read["status"].as_str(), read["payment"]["method"].as_str()), (Some("PAID"), Some("VIRTUAL_ACCOUNT")));
    let paid_moves: i64 =
        sqlx::query_scalar("SELECT count(*) FROM order_status_history WHERE order_id = $1 AND to_status = 'PAID'")
            .bind(id)
            .fetch_one(&app.env.pool)
            .await
            .expect("history");
    assert_eq!(paid_moves, 1, "paid once");
    let unknown = announce(secret);
    let mut unknown = unknown.clone();
    unknown["orderId"] = json!("settle-order-999999");
    assert_problem(callback(&app, &unknown).await, 404, "ORDER_NOT_FOUND").await;
}

#[tokio::test]
async fn an_account_unpaid_by_its_due_time_is_closed_at_the_provider_and_the_order_expires() {
    let (app, sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let (order, option, _) = waiting_order(&app, &sandbox, buyer).await;
    let id = order["id"].as_i64().expect("id");
    assert_eq!(resolve(&app, &sandbox).await.accounts_closed, 0, "not due yet");
    // The account's due time and the order's window pass (set back rather than waited for).
    sqlx::query("UPDATE payment_attempts SET deposit_due_at = now() - interval '1 second' WHERE order_id = $1")
        .bind(id)
        .execute(&app.env.pool)
        .await
        .expect("due");
    sqlx::query("UPDATE orders SET payment_due_at = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&app.env.pool)
        .await
        .expect("window closed");

    let first = resolve(&app, &sandbox).await;
    let second = resolve(&app, &sandbox).await;
    assert_eq!((first.accounts_closed, first.expired + second.expired), (1, 1), "{first:?} {second:?}");
    let read: Value = app.get_json(&format!("/api/v3/orders/{id}"), &app.token(buyer, Role::User)).await;
    assert_eq!(read["status"], "EXPIRED");
    let at_provider = sandbox.payment_of_order(order["paymentOrderId"].as_str().expect("ref")).await.expect("look-up");
    assert_eq!(at_provider.expect("a payment")["status"], "CANCELED", "no deposit can arrive any more");
    assert_eq!(deposit_at_sandbox(&sandbox, &order).await.status(), 404, "the closed account takes no deposit");
    assert_eq!(stock(&app, option).await, 5);
    assert_invariants(&app, &[(option, 5)]).await;
}

#[tokio::test]
async fn an_order_whose_account_closed_unpaid_inside_its_window_is_paid_under_its_next_provider_order_id() {
    let (app, sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, option, _) = waiting_order(&app, &sandbox, buyer).await;
    let id = order["id"].as_i64().expect("id");
    sqlx::query("UPDATE payment_attempts SET deposit_due_at = now() - interval '1 second' WHERE order_id = $1")
        .bind(id)
        .execute(&app.env.pool)
        .await
        .expect("due");
    assert_eq!(resolve(&app, &sandbox).await.accounts_closed, 1);

    let read: Value = app.get_json(&format!("/api/v3/orders/{id}"), &token).await;
    let old_ref = order["paymentOrderId"].as_str().expect("ref");
    assert_eq!(read["status"], "PENDING_PAYMENT", "its window is still open");
    assert_eq!(read["paymentOrderId"], format!("{old_ref}-1"), "the provider issued an account under the old one");
    let refused = sandbox.checkout(old_ref, 25_000, "CARD").await.expect_err("the spent order id");
    assert!(refused.to_string().contains("DUPLICATED_ORDER_ID"), "{refused}");
    let key = sandbox.checkout(read["paymentOrderId"].as_str().expect("ref"), 25_000, "CARD").await.expect("key");
    let paid: Value = pay(&app, &token, &read, &key, 25_000).await.json().await.expect("json");
    assert_eq!(paid["status"], "PAID", "{paid}");
    assert_invariants(&app, &[(option, 5)]).await;
}

async fn deposit_at_sandbox(sandbox: &OwnSandbox, order: &Value) -> reqwest::Response {
    sandbox.deposit(order["paymentOrderId"].as_str().expect("ref")).await.expect("deposit")
}

#[tokio::test]
async fn a_buyer_who_cancels_before_paying_in_has_the_account_closed_and_everything_back() {
    let (app, mut sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, option, _) = waiting_order(&app, &sandbox, buyer).await;
    let id = order["id"].as_i64().expect("id");
    assert_eq!(stock(&app, option).await, 4);

    // The provider is down: the account cannot be closed, so the order is not cancelled either.
    sandbox.kill();
    assert_problem(super::support::cancel(&app, &token, id).await, 503, "PAYMENT_PROVIDER_UNAVAILABLE").await;
    assert_eq!(app.get_json(&format!("/api/v3/orders/{id}"), &token).await["status"], "PENDING_PAYMENT");
    sandbox.restart().await.expect("the sandbox back");

    let cancelled = super::support::cancel(&app, &token, id).await;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(cancelled.json::<Value>().await.expect("json")["status"], "CANCELLED");
    let at_provider = sandbox.payment_of_order(order["paymentOrderId"].as_str().expect("ref")).await.expect("look-up");
    assert_eq!(at_provider.expect("a payment")["status"], "CANCELED", "the account is closed");
    assert_eq!(deposit_at_sandbox(&sandbox, &order).await.status(), 404, "the closed account takes no deposit");
    assert_eq!(stock(&app, option).await, 5);
    assert_invariants(&app, &[(option, 5)]).await;
}

#[tokio::test]
async fn a_deposit_that_came_before_the_buyers_cancel_is_given_back_with_the_cancel() {
    let (app, sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, option, _) = waiting_order(&app, &sandbox, buyer).await;
    let id = order["id"].as_i64().expect("id");
    // The buyer paid in; the provider's callback has not reached settle yet.
    assert_eq!(deposit_at_sandbox(&sandbox, &order).await.status(), 200);

    let cancelled = super::support::cancel(&app, &token, id).await;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(cancelled.json::<Value>().await.expect("json")["status"], "CANCELLED");
    let at_provider = sandbox.payment_of_order(order["paymentOrderId"].as_str().expect("ref")).await.expect("look-up");
    let at_provider = at_provider.expect("a payment");
    assert_eq!((at_provider["status"].as_str(), at_provider["balanceAmount"].as_i64()), (Some("CANCELED"), Some(0)));
    let moves: Vec<String> =
        sqlx::query_scalar("SELECT to_status FROM order_status_history WHERE order_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&app.env.pool)
            .await
            .expect("history");
    assert_eq!(moves, ["PENDING_PAYMENT", "PAID", "CANCELLED"], "paid by the deposit, then cancelled with a refund");
    assert_invariants(&app, &[(option, 5)]).await;
}

#[tokio::test]
async fn the_providers_deposit_callback_is_sent_again_until_settle_answers_even_across_a_provider_restart() {
    let (app, mut sandbox) = app_with_sandbox(2_000).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, option, _) = waiting_order(&app, &sandbox, buyer).await;
    let id = order["id"].as_i64().expect("id");
    // Registered where nothing answers: the callback is owed, and kept through a restart of the provider.
    let nowhere = format!("http://127.0.0.1:{}/callbacks", testkit::broker::free_port());
    sandbox.register_deposit_callback(Some(&nowhere)).await.expect("registered");
    assert_eq!(deposit_at_sandbox(&sandbox, &order).await.status(), 200);
    sandbox.kill();
    sandbox.restart().await.expect("the sandbox back");
    assert_eq!(app.get_json(&format!("/api/v3/orders/{id}"), &token).await["status"], "PENDING_PAYMENT");

    sandbox.register_deposit_callback(Some(&app.url("/api/v3/payments/callbacks/deposit"))).await.expect("registered");
    let paid = testkit::process::eventually(std::time::Duration::from_secs(10), || async {
        app.get_json(&format!("/api/v3/orders/{id}"), &token).await["status"] == "PAID"
    })
    .await;
    assert!(paid, "the callback reached settle and paid the order");
    assert_invariants(&app, &[(option, 5)]).await;
}

//! settle-api (the real binary) killed by SIGKILL while it waits for the provider's answer to a
//! confirm the provider has already approved: nothing was committed but the attempt, and the
//! resolution pass completes the payment from the provider's look-up, once, without a second confirm.

use super::payments::{checkout, resolve, unpaid_order};
use super::support::{assert_invariants, stock};
use crate::coupons::support::create_users;
use crate::helpers::{spawn_app_with, SECRET};
use domain::Role;
use serde_json::{json, Value};
use settle_api::config::HttpLimits;
use std::{process::Stdio, time::Duration};
use testkit::{
    process::{command_for, eventually, http_status, wait_until, Running},
    sandbox::{binary, OwnSandbox},
};

const API: &str = env!("CARGO_BIN_EXE_settle-api");

#[tokio::test]
async fn settle_api_killed_between_the_approval_and_its_commit_leaves_what_the_resolution_completes_once() {
    // The approved payment's answer is held back a minute: long enough to kill the API while it waits.
    let sandbox = OwnSandbox::start(binary(), Duration::from_secs(60)).await.expect("a sandbox");
    let args = sandbox.payment_args(30_000);
    let app = spawn_app_with(HttpLimits::default(), move |config| config.payments = args).await;
    let buyer = create_users(&app, 1).await[0];
    let (order, option) = unpaid_order(&app, buyer, 15_000).await;
    let key = checkout(&sandbox, &order).await;
    sandbox.fault(Some(&key), Some("DROP_ANSWER"), Some(1)).await.expect("fault");
    let port = testkit::broker::free_port();
    let mut api = Running::spawn(
        command_for(API.as_ref(), &app.env)
            .env("API_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("JWT_SECRET", SECRET)
            .env("PAYMENT_GATEWAY_URL", sandbox.url())
            .env("PAYMENT_SECRET_KEY", &sandbox.secret_key)
            .env("PAYMENT_TIMEOUT_MS", "30000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()),
    )
    .expect("settle-api");
    assert!(wait_until(Duration::from_secs(30), || http_status(port, "/health/ready") == Some(200)).await);

    let url = format!("http://127.0.0.1:{port}/api/v3/orders/{}/payment", order["id"]);
    let paying = reqwest::Client::new()
        .post(url)
        .bearer_auth(app.token(buyer, Role::User))
        .json(&json!({ "paymentKey": key, "amount": 15_000 }))
        .send();
    let paying = tokio::spawn(paying);
    let order_ref = order["paymentOrderId"].as_str().expect("ref").to_owned();
    let approved = eventually(Duration::from_secs(20), || async {
        let payment = sandbox.payment_of_order(&order_ref).await.ok().flatten();
        payment.is_some_and(|payment| payment["status"] == "DONE")
    })
    .await;
    assert!(approved, "the provider approved the payment");
    api.kill();
    assert!(paying.await.expect("the request task").is_err(), "the killed API never answered");
    let (status, attempt): (String, String) = sqlx::query_as(
        "SELECT o.status, a.status FROM orders o JOIN payment_attempts a ON a.order_id = o.id WHERE o.id = $1",
    )
    .bind(order["id"].as_i64().expect("id"))
    .fetch_one(&app.env.pool)
    .await
    .expect("the order and its attempt");
    assert_eq!((status.as_str(), attempt.as_str()), ("PENDING_PAYMENT", "IN_FLIGHT"), "only the attempt was committed");

    let resolved = resolve(&app, &sandbox).await;
    assert_eq!((resolved.approved, resolved.failed), (1, 0), "{resolved:?}");
    let read: Value = app.get_json(&format!("/api/v3/orders/{}", order["id"]), &app.token(buyer, Role::User)).await;
    assert_eq!((read["status"].as_str(), read["payment"]["status"].as_str()), (Some("PAID"), Some("APPROVED")));
    assert_eq!(sandbox.calls_of("confirm").await.expect("calls"), 1, "charged once: the look-up never confirms");
    assert_eq!(resolve(&app, &sandbox).await, Default::default(), "nothing left to settle");
    assert_eq!(stock(&app, option).await, 4);
    assert_invariants(&app, &[(option, 5)]).await;
}

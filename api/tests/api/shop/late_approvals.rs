//! A confirm the provider approves after the look-up settled its attempt as not approved (its request
//! reached the provider late): the next look-up finds the money and gives it back, once, and the order
//! stays payable under a new provider order id, so no money is left without an order.

use super::payments::{app_with_sandbox, checkout, pay, resolve, unpaid_order};
use super::support::assert_invariants;
use crate::coupons::support::create_users;
use domain::Role;
use serde_json::{json, Value};

#[tokio::test]
async fn an_approval_that_comes_after_the_attempt_failed_is_given_back_and_the_order_stays_payable() {
    let (app, sandbox) = app_with_sandbox(500).await;
    let buyer = create_users(&app, 1).await[0];
    let token = app.token(buyer, Role::User);
    let (order, option) = unpaid_order(&app, buyer, 4_000).await;
    let order_ref = order["paymentOrderId"].as_str().expect("ref").to_owned();
    let key = checkout(&sandbox, &order).await;
    sandbox.fault(Some(&key), Some("HANG"), Some(1)).await.expect("fault");
    assert_eq!(pay(&app, &token, &order, &key, 4_000).await.status(), 202);
    assert_eq!(resolve(&app, &sandbox).await.failed, 1, "the look-up found no approval");

    // The confirm reaches the provider only now, as a delayed request would: approved there.
    let late: Value = reqwest::Client::new()
        .post(format!("{}/v1/payments/confirm", sandbox.url()))
        .basic_auth(&sandbox.secret_key, Some(""))
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&json!({ "paymentKey": key, "orderId": order_ref, "amount": 4_000 }))
        .send()
        .await
        .expect("a late confirm")
        .json()
        .await
        .expect("json");
    assert_eq!(late["status"], "DONE", "{late}");

    let resolved = resolve(&app, &sandbox).await;
    assert_eq!(resolved.late_given_back, 1, "{resolved:?}");
    let at_provider = sandbox.payment_of_order(&order_ref).await.expect("look-up").expect("a payment");
    assert_eq!((at_provider["status"].as_str(), at_provider["balanceAmount"].as_i64()), (Some("CANCELED"), Some(0)));
    assert_eq!(resolve(&app, &sandbox).await.late_given_back, 0, "once");
    let read: Value = app.get_json(&format!("/api/v3/orders/{}", order["id"]), &token).await;
    assert_eq!(read["status"], "PENDING_PAYMENT", "the buyer was told the payment failed: the order is still payable");

    // The provider takes no second payment under an order id it approved one under, even given back: the
    // order is paid under its next id, which the resolution's look-up then follows.
    let refused = sandbox.checkout(&order_ref, 4_000, "CARD").await.expect_err("the spent order id");
    assert!(refused.to_string().contains("DUPLICATED_ORDER_ID"), "{refused}");
    let next_ref = read["paymentOrderId"].as_str().expect("ref");
    assert_eq!(next_ref, format!("{order_ref}-1"));
    let again = checkout(&sandbox, &read).await;
    sandbox.fault(Some(&again), Some("DROP_ANSWER"), Some(1)).await.expect("fault");
    assert_eq!(pay(&app, &token, &read, &again, 4_000).await.status(), 202, "approved, its answer lost");
    assert_eq!(resolve(&app, &sandbox).await.approved, 1, "found under the order's next id");
    let paid: Value = app.get_json(&format!("/api/v3/orders/{}", order["id"]), &token).await;
    assert_eq!((paid["status"].as_str(), paid["paymentOrderId"].as_str()), (Some("PAID"), Some(next_ref)));
    assert_invariants(&app, &[(option, 5)]).await;
}

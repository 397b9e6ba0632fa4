//! settle's payment client (`infra::payments::TossPayments`) against the sandbox process over HTTP: the
//! protocol both sides speak, what each answer means for the outcome, and the sandbox's journal.

use infra::{
    breaker::{Breaker, BreakerArgs},
    config::PaymentArgs,
    payments::{GatewayError, PaymentGateway, ProviderMethod, ProviderStatus, TossPayments},
};
use std::time::Duration;
use testkit::sandbox::OwnSandbox;

const BINARY: &str = env!("CARGO_BIN_EXE_settle-sandbox");

async fn sandbox() -> OwnSandbox {
    OwnSandbox::start(BINARY, Duration::from_secs(3)).await.expect("a sandbox")
}

fn client(sandbox: &OwnSandbox, timeout_ms: u64) -> TossPayments {
    TossPayments::new(&sandbox.payment_args(timeout_ms), Breaker::new("payments", &BreakerArgs::default()))
        .expect("a client")
}

fn order_id() -> String {
    format!("order-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn a_payment_is_approved_for_its_amount_once_and_a_retry_with_the_key_gets_the_same_answer() {
    let sandbox = sandbox().await;
    let gateway = client(&sandbox, 2_000);
    let order = order_id();
    let key = sandbox.checkout(&order, 15_000, "CARD").await.expect("checkout");

    let other_amount = gateway.confirm(&key, &order, 14_999, "attempt-0").await;
    assert!(
        matches!(other_amount, Err(GatewayError::Refused { ref code, .. }) if code == "INVALID_REQUEST"),
        "{other_amount:?}"
    );
    let approved = gateway.confirm(&key, &order, 15_000, "attempt-1").await.expect("approved");
    assert_eq!(
        (approved.status, approved.method, approved.total_amount),
        (ProviderStatus::Done, ProviderMethod::Card, 15_000)
    );
    assert!(approved.approved_at.is_some());
    let replay = gateway.confirm(&key, &order, 15_000, "attempt-1").await.expect("the same answer");
    assert_eq!(replay, approved, "the same idempotency key answers as the first time");
    let again = gateway.confirm(&key, &order, 15_000, "attempt-2").await;
    assert!(matches!(again, Err(GatewayError::AlreadyProcessed { .. })), "{again:?}");
    assert_eq!(sandbox.calls_of("confirm").await.expect("calls"), 4);

    let looked_up = gateway.payment_of_order(&order).await.expect("look-up").expect("a payment");
    assert_eq!(looked_up.payment_key, key);
    assert_eq!(gateway.payment_of_order(&order_id()).await.expect("look-up"), None);
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused_and_an_unknown_key_is_not_found() {
    let sandbox = sandbox().await;
    let args = PaymentArgs { gateway_url: sandbox.url(), secret_key: "test_sk_wrong".into(), timeout_ms: 2_000 };
    let stranger = TossPayments::new(&args, Breaker::new("payments", &BreakerArgs::default())).expect("client");
    let refused = stranger.payment_of_order("any").await;
    assert!(
        matches!(refused, Err(GatewayError::Refused { ref code, .. }) if code == "UNAUTHORIZED_KEY"),
        "{refused:?}"
    );
    let unknown = client(&sandbox, 2_000).confirm("sbx_unknown", "any", 1_000, "k").await;
    assert!(matches!(unknown, Err(GatewayError::NotFound { .. })), "{unknown:?}");
}

#[tokio::test]
async fn each_fault_says_what_is_known_of_the_outcome_and_the_look_up_tells_the_truth() {
    let sandbox = sandbox().await;
    let gateway = client(&sandbox, 1_000);

    let declined = order_id();
    let key = sandbox.checkout(&declined, 5_000, "CARD").await.expect("checkout");
    sandbox.fault(Some(&key), Some("DECLINE"), Some(1)).await.expect("fault");
    let answer = gateway.confirm(&key, &declined, 5_000, "d-1").await;
    assert!(matches!(answer, Err(GatewayError::Declined { .. })), "{answer:?}");
    assert_eq!(
        gateway.payment_of_order(&declined).await.expect("look-up").expect("known").status,
        ProviderStatus::Ready
    );
    assert!(gateway.confirm(&key, &declined, 5_000, "d-2").await.is_ok(), "declined once, then approved");

    for (fault, approved) in [("SERVER_ERROR", false), ("HANG", false), ("DROP_ANSWER", true)] {
        let order = order_id();
        let key = sandbox.checkout(&order, 7_000, "CARD").await.expect("checkout");
        sandbox.fault(Some(&key), Some(fault), Some(1)).await.expect("fault");
        let answer = gateway.confirm(&key, &order, 7_000, &format!("{fault}-1")).await;
        assert!(answer.as_ref().is_err_and(GatewayError::outcome_unknown), "{fault}: {answer:?}");
        let truth = gateway.payment_of_order(&order).await.expect("look-up").expect("known");
        let expected = if approved { ProviderStatus::Done } else { ProviderStatus::Ready };
        assert_eq!(truth.status, expected, "{fault}: the look-up says whether it was approved");
    }
}

#[tokio::test]
async fn a_stopped_provider_is_unavailable_and_a_restart_keeps_every_payment() {
    let mut sandbox = sandbox().await;
    let gateway = client(&sandbox, 1_000);
    let order = order_id();
    let key = sandbox.checkout(&order, 9_000, "CARD").await.expect("checkout");
    gateway.confirm(&key, &order, 9_000, "r-1").await.expect("approved");

    sandbox.kill();
    // The first call may go out on the pooled connection the dead process had: sent, so unknown. Once
    // that connection is gone, a refused connection says nothing was sent.
    let first = gateway.payment_of_order(&order).await;
    assert!(matches!(first, Err(GatewayError::Unavailable(_) | GatewayError::Unknown(_))), "{first:?}");
    let down = gateway.payment_of_order(&order).await;
    assert!(matches!(down, Err(GatewayError::Unavailable(_))), "nothing was sent: {down:?}");
    sandbox.restart().await.expect("restart");
    let kept = gateway.payment_of_order(&order).await.expect("look-up").expect("kept");
    assert_eq!((kept.status, kept.total_amount), (ProviderStatus::Done, 9_000));
    let replay = gateway.confirm(&key, &order, 9_000, "r-1").await.expect("the recorded answer");
    assert_eq!(replay.payment_key, key);
}

#[tokio::test]
async fn a_cancel_gives_the_whole_payment_back_once_and_settlements_list_the_sale_and_its_cancel() {
    let sandbox = sandbox().await;
    let gateway = client(&sandbox, 2_000);
    let order = order_id();
    let key = sandbox.checkout(&order, 20_000, "CARD").await.expect("checkout");
    gateway.confirm(&key, &order, 20_000, "c-0").await.expect("approved");

    let cancelled = gateway.cancel(&key, "the buyer changed their mind", "cancel-1").await.expect("cancelled");
    assert_eq!((cancelled.status, cancelled.balance_amount), (ProviderStatus::Canceled, 0));
    assert_eq!(gateway.cancel(&key, "again", "cancel-1").await.expect("the same answer"), cancelled);
    let twice = gateway.cancel(&key, "again", "cancel-2").await;
    assert!(matches!(twice, Err(GatewayError::AlreadyProcessed { .. })), "{twice:?}");

    let today = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("KST")).date_naive();
    let lines = gateway.settlements(today, today, 1, 100).await.expect("settlements");
    let amounts: Vec<(i64, i64)> = lines.iter().filter(|l| l.order_id == order).map(|l| (l.amount, l.fee)).collect();
    assert_eq!(amounts.len(), 2, "{lines:?}");
    assert_eq!(amounts.iter().map(|(amount, _)| amount).sum::<i64>(), 0, "the cancel nets the sale out");
    assert!(amounts.iter().all(|(amount, fee)| fee.abs() < amount.abs() && fee.signum() == amount.signum()));
}

#[tokio::test]
async fn an_order_id_takes_one_approved_payment_even_once_cancelled_and_a_restart_remembers_it() {
    let mut sandbox = sandbox().await;
    let gateway = client(&sandbox, 2_000);
    let order = order_id();
    let first = sandbox.checkout(&order, 6_000, "CARD").await.expect("checkout");
    let second = sandbox.checkout(&order, 6_000, "CARD").await.expect("a second window before any approval");
    gateway.confirm(&first, &order, 6_000, "first").await.expect("approved");

    let refused = gateway.confirm(&second, &order, 6_000, "second").await;
    assert!(
        matches!(refused, Err(GatewayError::Refused { ref code, .. }) if code == "DUPLICATED_ORDER_ID"),
        "{refused:?}"
    );
    gateway.cancel(&first, "given back", "cancel-first").await.expect("cancelled");
    sandbox.restart().await.expect("restart");
    let window = sandbox.checkout(&order, 6_000, "CARD").await.expect_err("the spent order id");
    assert!(window.to_string().contains("DUPLICATED_ORDER_ID"), "{window}");
    let next = format!("{order}-1");
    let key = sandbox.checkout(&next, 6_000, "CARD").await.expect("a new order id");
    assert_eq!(gateway.confirm(&key, &next, 6_000, "next").await.expect("approved").status, ProviderStatus::Done);
}

use super::support::{account, login, PASSWORD};
use crate::helpers::{assert_problem, spawn_app_with};
use std::time::Duration;

/// The app with a 1 s first back-off (30 s by default) and a small per-IP threshold.
async fn app() -> crate::helpers::TestApp {
    spawn_app_with(Default::default(), |config| {
        config.accounts.backoff_base_ms = 1_000;
        config.accounts.max_failures_per_ip = 8;
    })
    .await
}

#[tokio::test]
async fn the_sixth_failure_waits_with_retry_after_and_the_owner_gets_in_after_the_back_off() {
    let app = app().await;
    account(&app, "bora@shop.test").await;
    for _ in 0..5 {
        assert_problem(login(&app, "bora@shop.test", "guess guess guess").await, 401, "INVALID_CREDENTIALS").await;
    }
    let throttled = login(&app, "bora@shop.test", PASSWORD).await;
    let retry_after: u64 = throttled.headers()["retry-after"].to_str().expect("text").parse().expect("seconds");
    assert!((1..=2).contains(&retry_after), "the first wait is the base: {retry_after}");
    assert_problem(throttled, 429, "TOO_MANY_ATTEMPTS").await;

    let app_ref = &app;
    let back_in = testkit::process::eventually(Duration::from_secs(10), || async move {
        login(app_ref, "bora@shop.test", PASSWORD).await.status() == 200
    })
    .await;
    assert!(back_in, "the right password works once the back-off has passed");
    assert_problem(login(&app, "bora@shop.test", "guess guess guess").await, 401, "INVALID_CREDENTIALS").await;
    let reasons: Vec<String> = sqlx::query_scalar("SELECT DISTINCT reason FROM login_history ORDER BY reason")
        .fetch_all(&app.env.pool)
        .await
        .expect("reasons");
    assert_eq!(
        reasons,
        ["OK", "THROTTLED", "WRONG_PASSWORD"],
        "a success reset the count; throttled attempts are kept"
    );
}

#[tokio::test]
async fn a_flood_from_one_address_across_many_accounts_is_limited_per_address() {
    let app = app().await;
    account(&app, "gyu@shop.test").await;
    for n in 0..8 {
        let email = format!("nobody{n}@shop.test");
        assert_problem(login(&app, &email, "guess guess guess").await, 401, "INVALID_CREDENTIALS").await;
    }
    assert_problem(login(&app, "gyu@shop.test", PASSWORD).await, 429, "TOO_MANY_ATTEMPTS").await;
}

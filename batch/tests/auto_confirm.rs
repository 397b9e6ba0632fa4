//! `settle-batch auto-confirm` against a real database: what it confirms (only DELIVERED past the
//! window), what each confirmation leaves (history, event), what it leaves to a buyer who holds the
//! order, and how it answers a rerun and a window shorter than the return window.

use std::process::Output;
use testkit::{orders, process, TestEnv};

fn auto_confirm(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = process::command_for(env!("CARGO_BIN_EXE_settle-batch").as_ref(), env);
    command.arg("auto-confirm").args(args);
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("running settle-batch auto-confirm")
}

async fn statuses(env: &TestEnv, ids: &[i64]) -> Vec<String> {
    sqlx::query_scalar("SELECT status FROM orders WHERE id = ANY($1) ORDER BY id")
        .bind(ids)
        .fetch_all(&env.pool)
        .await
        .expect("statuses")
}

#[tokio::test]
async fn orders_delivered_past_the_window_are_confirmed_once_with_their_history_and_event() {
    let env = TestEnv::new().await;
    let buyer = orders::buyer(&env.pool).await;
    let due = orders::delivered(&env.pool, buyer, 12, 10_000, 8).await;
    let recent = orders::delivered(&env.pool, buyer, 3, 10_000, 6).await;
    // The buyer is confirming one of them right now: the job passes it by rather than wait or overwrite.
    let mut held = env.pool.begin().await.expect("a transaction");
    sqlx::query("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE").bind(due[0]).execute(&mut *held).await.expect("lock");
    // Another is being refunded: its refund is at the provider, so the order is the refund's to move.
    sqlx::query(
        "INSERT INTO payment_attempts (order_id, payment_key, amount, status, idempotency_key, approved_at,
                                       refund_status, refund_idempotency_key)
         VALUES ($1, 'key-refunding', 10000, 'APPROVED', gen_random_uuid(), now(), 'IN_FLIGHT', gen_random_uuid())",
    )
    .bind(due[1])
    .execute(&env.pool)
    .await
    .expect("a refund in flight");
    let as_of = "2099-01-01T00:00:00Z";
    let as_of_now = chrono::Utc::now().to_rfc3339();

    let run = auto_confirm(&env, &["--as-of", &as_of_now, "--chunk", "5", "--workers", "2"], &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}{}", stdout, String::from_utf8_lossy(&run.stderr));
    assert!(
        stdout.lines().any(|line| line.contains("orders confirmed") && line.trim_end().ends_with(" 10")),
        "{stdout}"
    );
    assert_eq!(statuses(&env, &due[2..]).await, vec!["CONFIRMED"; 10]);
    assert_eq!(statuses(&env, &due[..1]).await, ["DELIVERED"], "the held order is left to its holder");
    assert_eq!(statuses(&env, &due[1..2]).await, ["DELIVERED"], "the refunding order is left to its refund");
    assert_eq!(statuses(&env, &recent).await, vec!["DELIVERED"; 3], "not yet 7 days");
    let (history, events): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM order_status_history
                 WHERE order_id = ANY($1) AND from_status = 'DELIVERED' AND to_status = 'CONFIRMED' AND actor = 'system:auto-confirm'),
                (SELECT count(*) FROM outbox_events
                 WHERE aggregate_type = 'order' AND aggregate_id = ANY($1::bigint[]::text[]) AND event_type = 'OrderConfirmed'
                   AND (payload->>'amountToPay')::bigint = 10000)",
    )
    .bind(&due)
    .fetch_one(&env.pool)
    .await
    .expect("history and events");
    assert_eq!((history, events), (10, 10), "one history row and one event per confirmation");

    assert_eq!(auto_confirm(&env, &["--as-of", &as_of_now], &[]).status.code(), Some(3), "this instant is done");
    held.rollback().await.expect("released");
    let forced = auto_confirm(&env, &["--as-of", &as_of_now, "--force"], &[]);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert_eq!(statuses(&env, &due[..1]).await, ["CONFIRMED"], "confirmed once it was free");
    // Far in the future every delivered order is due; each is confirmed once, and history says so.
    assert!(auto_confirm(&env, &["--as-of", as_of], &[]).status.success());
    let moves: Vec<i64> = sqlx::query_scalar(
        "SELECT count(*) FROM order_status_history WHERE order_id = ANY($1) AND to_status = 'CONFIRMED' GROUP BY order_id",
    )
    .bind([due.as_slice(), recent.as_slice()].concat())
    .fetch_all(&env.pool)
    .await
    .expect("moves");
    assert_eq!(moves, vec![1; 14], "each once; the refunding order never");
    assert_eq!(statuses(&env, &due[1..2]).await, ["DELIVERED"]);
}

#[tokio::test]
async fn a_confirmation_window_shorter_than_the_return_window_is_refused_before_anything_is_done() {
    let env = TestEnv::new().await;
    let buyer = orders::buyer(&env.pool).await;
    let due = orders::delivered(&env.pool, buyer, 2, 5_000, 8).await;
    let refused = auto_confirm(&env, &[], &[("AUTO_CONFIRM_DAYS", "3"), ("RETURN_WINDOW_DAYS", "7")]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("RETURN_WINDOW_DAYS"));
    assert_eq!(statuses(&env, &due).await, ["DELIVERED", "DELIVERED"]);
    let bad_instant = auto_confirm(&env, &["--as-of", "yesterday"], &[]);
    assert_eq!(bad_instant.status.code(), Some(2));
}

//! Points for confirmed purchases, earned through the outbox and the purchase-points consumer: once per
//! order however often its event arrives (redelivered copies, a consumer killed mid-batch and started
//! again), the rate of what was paid, and the ledger and balance agreeing.

use infra::shop::orders::{confirm_delivered, BulkActor, IdSlice, OrderActor};
use sqlx::PgPool;
use std::{process::Stdio, time::Duration};
use testkit::{orders, process, TestEnv};

const WORKERS: &str = env!("CARGO_BIN_EXE_settle-workers");

/// Confirms every order delivered more than a day ago, as the auto-confirm job does.
async fn confirm_all(pool: &PgPool) -> usize {
    let by = BulkActor { actor: OrderActor::System("test"), reason: "test", trace_id: None };
    let mut tx = pool.begin().await.expect("a transaction");
    let confirmed =
        confirm_delivered(&mut tx, chrono::Utc::now() - chrono::Duration::days(1), IdSlice::ALL, 100_000, &by)
            .await
            .expect("confirming");
    tx.commit().await.expect("commit");
    confirmed
}

async fn awarded(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM purchase_points").fetch_one(pool).await.expect("awarded")
}

#[tokio::test]
async fn each_confirmed_order_earns_its_points_once_through_redelivery_and_a_killed_consumer() {
    let env = TestEnv::new().await;
    const BUYERS: i64 = 20;
    const PER_BUYER: i64 = 60;
    for n in 0..BUYERS {
        let buyer = orders::buyer(&env.pool).await;
        // Amounts that round: 1% of 12,399 is 123 points.
        orders::delivered(&env.pool, buyer, PER_BUYER, 10_000 + 123 * n, 8).await;
    }
    assert_eq!(confirm_all(&env.pool).await as i64, BUYERS * PER_BUYER);
    // Every OrderConfirmed event a second time under another event id: a redelivery the event id
    // cannot tell apart, which only the order id can.
    sqlx::query(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload)
         SELECT gen_random_uuid(), aggregate_type, aggregate_id, event_type, payload FROM outbox_events
         WHERE event_type = 'OrderConfirmed' ORDER BY id",
    )
    .execute(&env.pool)
    .await
    .expect("copies");
    let worker = |name: &str| {
        let mut command = process::command_for(WORKERS.as_ref(), &env);
        command
            .args(["--only", name, "--batch-size", "40"])
            .env("WORKERS_OPS_ADDR", format!("127.0.0.1:{}", testkit::broker::free_port()))
            .env("PURCHASE_POINTS_RATE_BPS", "100")
            .stdout(Stdio::null());
        command
    };

    let mut consumer = process::Running::spawn(&mut worker("purchase-points")).expect("consumer");
    let _relay = process::Running::spawn(&mut worker("outbox-relay")).expect("relay");
    let some = process::eventually(Duration::from_secs(90), || async { awarded(&env.pool).await >= 100 }).await;
    assert!(some, "the consumer earned points for some orders");
    consumer.kill();
    assert!(awarded(&env.pool).await < BUYERS * PER_BUYER, "the consumer was killed before it was done");
    // After the killed member's session expired, as a supervisor's restart delay would (see outbox.rs).
    tokio::time::sleep(infra::kafka::CONSUMER_SESSION_TIMEOUT + Duration::from_secs(1)).await;
    let _consumer = process::Running::spawn(&mut worker("purchase-points")).expect("consumer again");
    let all =
        process::eventually(Duration::from_secs(120), || async { awarded(&env.pool).await >= BUYERS * PER_BUYER })
            .await;
    assert!(all, "every confirmed order was awarded: {} of {}", awarded(&env.pool).await, BUYERS * PER_BUYER);

    // Per buyer: the balance is the sum of 1% of each order, rounded down per order, and the ledger agrees.
    let wrong: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "WITH expected AS (SELECT user_id, sum(amount_to_pay / 100)::bigint AS points FROM orders GROUP BY user_id),
              ledger AS (SELECT user_id, sum(amount)::bigint AS points, count(*) AS entries FROM points
                         WHERE reason LIKE 'purchase confirmed: order %' GROUP BY user_id)
         SELECT e.user_id, e.points, coalesce(b.balance, 0), coalesce(l.points, 0)
         FROM expected e LEFT JOIN point_balances b USING (user_id) LEFT JOIN ledger l USING (user_id)
         WHERE e.points IS DISTINCT FROM b.balance OR e.points IS DISTINCT FROM l.points OR l.entries <> $1",
    )
    .bind(PER_BUYER)
    .fetch_all(&env.pool)
    .await
    .expect("comparison");
    assert!(wrong.is_empty(), "(buyer, expected, balance, ledger) that disagree: {wrong:?}");
    assert_eq!(awarded(&env.pool).await, BUYERS * PER_BUYER, "one award per order");
}

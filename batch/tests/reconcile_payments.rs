//! `settle-batch reconcile-payments` against a real database and a payment sandbox of the test's own,
//! which speaks the provider's settlements endpoint: a clean day agrees line for line; on a day where the
//! sandbox was told to distort lines (and where the provider holds money we do not know of, or gave back
//! money we still count as paid), every kind of mismatch is found and recorded with both sides.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use infra::config::BusinessTimeArgs;
use serde_json::{json, Value};
use std::process::Output;
use testkit::{orders, process, sandbox::OwnSandbox, TestEnv};

const SEOUL: BusinessTimeArgs = BusinessTimeArgs { timezone: chrono_tz::Asia::Seoul };

fn reconcile(env: &TestEnv, sandbox: &OwnSandbox, date: NaiveDate, extra: &[&str]) -> Output {
    let mut command = process::command_for(env!("CARGO_BIN_EXE_settle-batch").as_ref(), env);
    command
        .args(["reconcile-payments", "--date", &date.to_string(), "--timezone", "Asia/Seoul", "--page-size", "4"])
        .args(extra)
        .env("PAYMENT_GATEWAY_URL", sandbox.url())
        .env("PAYMENT_SECRET_KEY", &sandbox.secret_key);
    command.output().expect("running settle-batch reconcile-payments")
}

/// `count` card payments approved during `date` at the provider and recorded by us (an order each), as
/// the payment path leaves them; `canceled` of them (by index) also refunded that day on both sides.
/// Returns the payment keys.
async fn paid_day(env: &TestEnv, sandbox: &OwnSandbox, date: NaiveDate, count: i64, canceled: &[usize]) -> Vec<String> {
    let buyer = orders::buyer(&env.pool).await;
    let ids = orders::delivered(&env.pool, buyer, count, 10_000, 1).await;
    let at = |i: usize| -> DateTime<Utc> { SEOUL.start_of(date) + Duration::hours(9) + Duration::minutes(i as i64) };
    let amount = |i: usize| 10_000 + 1_000 * i as i64;
    let settled: Vec<Value> = (0..ids.len())
        .map(|i| {
            let canceled_at = canceled.contains(&i).then(|| (at(i) + Duration::hours(1)).to_rfc3339());
            json!({ "orderId": format!("settle-order-{}", ids[i]), "amount": amount(i), "method": "카드",
                    "approvedAt": at(i).to_rfc3339(), "canceledAt": canceled_at })
        })
        .collect();
    let keys = sandbox.backfill(&json!(settled)).await.expect("backfilling the provider's day");
    for (i, (order, key)) in ids.iter().zip(&keys).enumerate() {
        let refunded = canceled.contains(&i);
        sqlx::query(
            "INSERT INTO payment_attempts (order_id, payment_key, amount, status, idempotency_key, method, approved_at,
                                           refund_status, refund_idempotency_key, refunded_at)
             VALUES ($1, $2, $3, 'APPROVED', gen_random_uuid(), 'CARD', $4,
                     CASE WHEN $5 THEN 'DONE' END, CASE WHEN $5 THEN gen_random_uuid() END, CASE WHEN $5 THEN $6 END)",
        )
        .bind(order)
        .bind(key)
        .bind(amount(i))
        .bind(at(i))
        .bind(refunded)
        .bind(at(i) + Duration::hours(1))
        .execute(&env.pool)
        .await
        .expect("recording our payment");
    }
    keys
}

async fn mismatches(env: &TestEnv, date: NaiveDate) -> Vec<(String, String, Option<i64>, Option<i64>)> {
    sqlx::query_as(
        "SELECT kind, payment_key, our_amount, their_amount FROM payment_reconciliation_mismatches
         WHERE business_date = $1 ORDER BY kind, payment_key",
    )
    .bind(date)
    .fetch_all(&env.pool)
    .await
    .expect("mismatches")
}

#[tokio::test]
async fn a_clean_day_agrees_and_every_injected_kind_of_mismatch_is_found_with_both_sides() {
    let env = TestEnv::new().await;
    let sandbox =
        OwnSandbox::start(testkit::sandbox::binary(), std::time::Duration::from_secs(5)).await.expect("sandbox");
    let clean = SEOUL.day_of(Utc::now()) - chrono::Days::new(2);
    let dirty = clean - chrono::Days::new(1);
    paid_day(&env, &sandbox, clean, 9, &[2]).await;
    let keys = paid_day(&env, &sandbox, dirty, 8, &[5]).await;

    let run = reconcile(&env, &sandbox, clean, &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        stdout.lines().any(|l| l.contains("agreed") && l.trim_end().ends_with(" 10")),
        "9 sales, 1 cancel: {stdout}"
    );
    assert!(mismatches(&env, clean).await.is_empty());
    assert!(sandbox.calls_of("settlements").await.expect("calls") >= 3, "10 lines read 4 to a page");

    // Distortions of the dirty day, one kind each.
    for (key, fault) in [(&keys[0], "OMIT"), (&keys[1], "AMOUNT"), (&keys[2], "FEE"), (&keys[3], "PAYOUT_DATE")] {
        sandbox.settlement_fault(key, fault).await.expect("a settlement fault");
    }
    // The provider gave a payment of the day back that same day; we still count it as paid.
    let cancelled_there = json!([{ "orderId": "settle-order-cancelled-there", "amount": 4_000, "method": "카드",
        "approvedAt": (SEOUL.start_of(dirty) + Duration::hours(8)).to_rfc3339(),
        "canceledAt": (SEOUL.start_of(dirty) + Duration::hours(20)).to_rfc3339() }]);
    let status_key = sandbox.backfill(&cancelled_there).await.expect("a payment")[0].clone();
    let buyer = orders::buyer(&env.pool).await;
    let order = orders::delivered(&env.pool, buyer, 1, 4_000, 1).await[0];
    sqlx::query(
        "INSERT INTO payment_attempts (order_id, payment_key, amount, status, idempotency_key, method, approved_at)
         VALUES ($1, $2, 4000, 'APPROVED', gen_random_uuid(), 'CARD', $3)",
    )
    .bind(order)
    .bind(&status_key)
    .bind(SEOUL.start_of(dirty) + Duration::hours(8))
    .execute(&env.pool)
    .await
    .expect("ours, still paid");
    // Money the provider took that we have no order for.
    let stranger = json!([{ "orderId": "settle-order-lost", "amount": 7_000, "method": "카드",
        "approvedAt": (SEOUL.start_of(dirty) + Duration::hours(12)).to_rfc3339() }]);
    let stranger_key = sandbox.backfill(&stranger).await.expect("a payment")[0].clone();

    // A dry run sees the same and writes nothing: no mismatch rows, no execution.
    let dry = reconcile(&env, &sandbox, dirty, &["--dry-run"]);
    let dry_out = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(dry.status.code(), Some(1), "{dry_out}{}", String::from_utf8_lossy(&dry.stderr));
    assert!(dry_out.contains("DRY RUN") && dry_out.contains("needs attention"), "{dry_out}");
    assert!(mismatches(&env, dirty).await.is_empty(), "a dry run records nothing");
    let today = SEOUL.day_of(Utc::now());
    assert!(reconcile(&env, &sandbox, today, &[]).status.code() == Some(2), "today is not over");
    assert!(reconcile(&env, &sandbox, today, &["--dry-run"]).status.success(), "an intraday check of a quiet day");

    let run = reconcile(&env, &sandbox, dirty, &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("needs attention"), "{stdout}");
    let found = mismatches(&env, dirty).await;
    let has = |kind: &str, key: &str| found.iter().any(|(k, p, _, _)| k == kind && p == key);
    assert!(has("MISSING_THERE", &keys[0]), "{found:?}");
    assert!(has("AMOUNT_DIFFERS", &keys[1]), "{found:?}");
    assert!(has("FEE_DIFFERS", &keys[2]), "{found:?}");
    assert!(has("PAYOUT_DATE_DIFFERS", &keys[3]), "{found:?}");
    assert!(has("STATUS_DIFFERS", &status_key), "{found:?}");
    assert!(has("MISSING_HERE", &stranger_key), "{found:?}");
    let amount = found.iter().find(|(k, p, _, _)| k == "AMOUNT_DIFFERS" && p == &keys[1]).expect("amount");
    assert_eq!((amount.2, amount.3), (Some(11_000), Some(11_100)), "both sides recorded");
    let clean_keys = [&keys[4], &keys[5], &keys[6], &keys[7]];
    assert!(found.iter().all(|(_, p, _, _)| !clean_keys.contains(&p)), "untouched payments agree: {found:?}");
    assert_eq!(reconcile(&env, &sandbox, dirty, &[]).status.code(), Some(3), "the day is done; --force reruns it");
}

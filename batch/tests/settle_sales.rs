//! `settle-batch settle-sales` against a real database: a day's purchases settled into item lines that
//! add up to their orders, summaries and a CLOSED day; a rerun that changes nothing; the same lines
//! whatever the partition and worker counts; each gate failing the day on a breach planted for it; the
//! finance export.

use chrono::{NaiveDate, Utc};
use infra::config::BusinessTimeArgs;
use std::process::Output;
use testkit::{process, TestEnv};

const BATCH: &str = env!("CARGO_BIN_EXE_settle-batch");
const SEOUL: BusinessTimeArgs = BusinessTimeArgs { timezone: chrono_tz::Asia::Seoul };

fn batch(env: &TestEnv, args: &[&str]) -> Output {
    let mut command = process::command_for(BATCH.as_ref(), env);
    command.args(args);
    command.output().expect("running settle-batch")
}

fn succeeded(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// A business day that has ended (two days ago in Seoul).
fn settled_day() -> NaiveDate {
    SEOUL.day_of(Utc::now()) - chrono::Days::new(2)
}

fn seed(env: &TestEnv, date: NaiveDate, orders: i64) {
    let date = date.to_string();
    succeeded(&batch(
        env,
        &["seed-sales", "--date", &date, "--orders", &orders.to_string(), "--timezone", "Asia/Seoul"],
    ));
}

fn settle(env: &TestEnv, date: NaiveDate, extra: &[&str]) -> Output {
    let date = date.to_string();
    let mut args = vec!["settle-sales", "--date", &date, "--timezone", "Asia/Seoul"];
    args.extend_from_slice(extra);
    batch(env, &args)
}

/// A digest of the day's lines (everything but which execution wrote them, and when).
async fn lines_digest(env: &TestEnv, date: NaiveDate) -> (i64, String) {
    sqlx::query_as(
        "SELECT count(*), md5(coalesce(string_agg(concat_ws('|', business_date, event, order_id, option_id, product_id,
                    quantity, unit_price, gross, coupon_discount, points, paid, payment_method, payment_key, fee_rate_bps,
                    fee, net), ',' ORDER BY order_id, option_id, event), ''))
         FROM settlement_lines WHERE business_date = $1",
    )
    .bind(date)
    .fetch_one(&env.pool)
    .await
    .expect("digest")
}

async fn day_status(env: &TestEnv, date: NaiveDate) -> String {
    sqlx::query_scalar("SELECT status FROM settlement_days WHERE business_date = $1")
        .bind(date)
        .fetch_one(&env.pool)
        .await
        .expect("the day's row")
}

/// The latest verdict of each gate of the day.
async fn gates(env: &TestEnv, date: NaiveDate) -> Vec<(String, bool)> {
    sqlx::query_as(
        "SELECT DISTINCT ON (gate) gate, passed FROM settlement_gate_results WHERE business_date = $1
         ORDER BY gate, id DESC",
    )
    .bind(date)
    .fetch_all(&env.pool)
    .await
    .expect("gate results")
}

#[tokio::test]
async fn a_day_settles_into_item_lines_that_add_up_to_its_orders_and_closes_once() {
    let env = TestEnv::new().await;
    let day = settled_day();
    seed(&env, day, 90);
    // A purchase confirmed the next day is not this day's.
    seed(&env, day.succ_opt().expect("next day"), 5);

    let stdout = succeeded(&settle(&env, day, &["--partitions", "4"]));
    assert!(stdout.contains(&format!("settle-sales {day}: COMPLETED")), "{stdout}");
    assert_eq!(day_status(&env, day).await, "CLOSED");
    assert!(gates(&env, day).await.iter().all(|(_, passed)| *passed), "{:?}", gates(&env, day).await);

    // Per order, the lines add up to the order's own amounts; every item of the day's 90 orders has one.
    let (orders, mismatched, items, lines): (i64, i64, i64, i64) = sqlx::query_as(
        "WITH per_order AS (
             SELECT l.order_id, sum(l.gross) AS gross, sum(l.coupon_discount) AS coupon, sum(l.points) AS points,
                    sum(l.paid) AS paid
             FROM settlement_lines l WHERE l.business_date = $1 GROUP BY l.order_id)
         SELECT count(*),
                count(*) FILTER (WHERE (p.gross, p.coupon, p.points, p.paid)
                                       <> (o.subtotal, o.coupon_discount, o.points_used, o.amount_to_pay)),
                (SELECT count(*) FROM order_items i JOIN per_order USING (order_id)),
                (SELECT count(*) FROM settlement_lines WHERE business_date = $1)
         FROM per_order p JOIN orders o ON o.id = p.order_id",
    )
    .bind(day)
    .fetch_one(&env.pool)
    .await
    .expect("per-order sums");
    assert_eq!((orders, mismatched), (90, 0));
    assert_eq!(lines, items);
    // The fee is the card rate (2.50 %) of each card payment, rounded toward zero, snapshotted per line.
    let (card_fee, expected_fee, rate): (i64, i64, i32) = sqlx::query_as(
        "SELECT (SELECT sum(fee)::bigint FROM settlement_lines WHERE business_date = $1 AND payment_method = 'CARD'),
                (SELECT sum(amount_to_pay * 250 / 10000)::bigint FROM orders o
                 WHERE payment_method = 'CARD' AND EXISTS (SELECT 1 FROM settlement_lines l WHERE l.order_id = o.id)),
                (SELECT min(fee_rate_bps) FROM settlement_lines WHERE business_date = $1 AND payment_method = 'CARD')",
    )
    .bind(day)
    .fetch_one(&env.pool)
    .await
    .expect("fees");
    assert_eq!((card_fee, rate), (expected_fee, 250));
    // The summaries add up to the lines.
    let (by_option, by_method, paid): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT sum(paid)::bigint FROM settlement_summary_by_option WHERE business_date = $1),
                (SELECT sum(paid)::bigint FROM settlement_summary_by_method WHERE business_date = $1),
                (SELECT paid FROM settlement_days WHERE business_date = $1)",
    )
    .bind(day)
    .fetch_one(&env.pool)
    .await
    .expect("summaries");
    assert_eq!((by_option, by_method), (paid, paid));

    let before = lines_digest(&env, day).await;
    assert_eq!(settle(&env, day, &[]).status.code(), Some(3), "a closed day is not settled twice");
    let forced = settle(&env, day, &["--force"]);
    assert!(forced.status.success(), "a forced rerun checks the closed day again: {forced:?}");
    assert_eq!(lines_digest(&env, day).await, before, "a rerun changes nothing");
    assert_eq!(day_status(&env, day).await, "CLOSED");
}

#[tokio::test]
async fn the_lines_are_the_same_whatever_the_partition_and_worker_counts() {
    let (one, eight) = (TestEnv::new().await, TestEnv::new().await);
    let day = settled_day();
    seed(&one, day, 120);
    seed(&eight, day, 120);
    succeeded(&settle(&one, day, &["--partitions", "1", "--workers", "1"]));
    succeeded(&settle(&eight, day, &["--partitions", "8", "--workers", "2"]));
    let (digest_one, digest_eight) = (lines_digest(&one, day).await, lines_digest(&eight, day).await);
    assert!(digest_one.0 > 120, "every order has at least one line: {digest_one:?}");
    assert_eq!(digest_one, digest_eight);
}

/// Settles a seeded day after `breach` was planted; the day must be FAILED with `gate` failed.
async fn planted(breach: &str, gate: &str) -> Vec<(String, bool)> {
    let env = TestEnv::new().await;
    let day = settled_day();
    seed(&env, day, 30);
    sqlx::query(breach).bind(day).execute(&env.pool).await.expect("planting the breach");
    let run = settle(&env, day, &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains(&format!("gate {gate}")) && stdout.contains("FAILED"), "{stdout}");
    assert_eq!(day_status(&env, day).await, "FAILED");
    let verdicts = gates(&env, day).await;
    assert!(verdicts.contains(&(gate.to_owned(), false)), "{verdicts:?}");
    let restartable: String = sqlx::query_scalar(
        "SELECT status FROM batch_job_executions WHERE job_name = 'settle-sales' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&env.pool)
    .await
    .expect("execution");
    assert_eq!(restartable, "FAILED");
    verdicts
}

#[tokio::test]
async fn a_line_planted_with_other_amounts_fails_the_amounts_gate_alone() {
    // Order 4 (the fourth seeded) has one item: a line for it with 100 won more paid is taken as settled.
    let verdicts = planted(
        "INSERT INTO settlement_lines (business_date, event, order_id, option_id, product_id, quantity, unit_price,
             gross, coupon_discount, points, paid, payment_method, payment_key, fee_rate_bps, fee, net, execution_id)
         SELECT $1, 'SALE', o.id, i.option_id, i.product_id, i.quantity, i.unit_price, i.line_total + 100,
                o.coupon_discount, o.points_used, o.amount_to_pay + 100, o.payment_method, NULL, 0, 0,
                o.amount_to_pay + 100, 0
         FROM orders o JOIN order_items i ON i.order_id = o.id
         WHERE o.id = (SELECT min(id) + 3 FROM orders)",
        "lines_match_orders",
    )
    .await;
    let others_held = verdicts.iter().filter(|(gate, _)| gate != "lines_match_orders").all(|(_, passed)| *passed);
    assert!(others_held, "{verdicts:?}");
}

/// A digest of the day's summaries and totals.
async fn summaries_digest(env: &TestEnv, date: NaiveDate) -> String {
    sqlx::query_scalar(
        "SELECT md5(concat_ws('/',
             (SELECT string_agg(concat_ws('|', option_id, quantity, gross, coupon_discount, points, paid, fee, net), ','
                                ORDER BY option_id) FROM settlement_summary_by_option WHERE business_date = $1),
             (SELECT string_agg(concat_ws('|', payment_method, lines, gross, paid, fee, net), ',' ORDER BY payment_method)
              FROM settlement_summary_by_method WHERE business_date = $1),
             (SELECT concat_ws('|', status, sales, reversals, gross, coupon_discount, points, paid, fee, net)
              FROM settlement_days WHERE business_date = $1)))",
    )
    .bind(date)
    .fetch_one(&env.pool)
    .await
    .expect("summaries digest")
}

#[tokio::test]
async fn a_forced_rerun_of_a_closed_day_reports_a_line_planted_since_but_rewrites_none_of_its_totals() {
    let env = TestEnv::new().await;
    let day = settled_day();
    seed(&env, day, 12);
    succeeded(&settle(&env, day, &[]));
    let closed = summaries_digest(&env, day).await;
    // Lines are append-only, not insert-proof: a stray sale line for an order of another day.
    seed(&env, day.pred_opt().expect("the day before"), 1);
    sqlx::query(
        "INSERT INTO settlement_lines (business_date, event, order_id, option_id, product_id, quantity, unit_price,
             gross, coupon_discount, points, paid, payment_method, payment_key, fee_rate_bps, fee, net, execution_id)
         SELECT $1, 'SALE', o.id, i.option_id, i.product_id, i.quantity, i.unit_price, i.line_total, 0, 0,
                i.line_total, o.payment_method, NULL, 0, 0, i.line_total, 0
         FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.id = (SELECT max(id) FROM orders)",
    )
    .bind(day)
    .execute(&env.pool)
    .await
    .expect("planting a line");

    let forced = settle(&env, day, &["--force"]);
    let stdout = String::from_utf8_lossy(&forced.stdout);
    assert_eq!(forced.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("is CLOSED but gates failed"), "{stdout}");
    assert_eq!(day_status(&env, day).await, "CLOSED");
    assert_eq!(summaries_digest(&env, day).await, closed, "a closed day's summaries and totals are final");
}

#[tokio::test]
async fn a_line_moved_to_an_item_the_order_never_had_fails_the_settled_once_gate_though_count_and_sums_agree() {
    let env = TestEnv::new().await;
    let day = settled_day();
    seed(&env, day, 12);
    succeeded(&settle(&env, day, &[]));
    // The same number of lines with the same amounts, one of them under an option its order never had:
    // only the fingerprint of (order, option, event) tells (the owner can lift the append-only trigger).
    sqlx::raw_sql(
        "ALTER TABLE settlement_lines DISABLE TRIGGER settlement_lines_append_only;
         UPDATE settlement_lines SET option_id = option_id + 1000000
         WHERE (order_id, option_id) = (SELECT order_id, option_id FROM settlement_lines ORDER BY 1, 2 LIMIT 1);
         ALTER TABLE settlement_lines ENABLE TRIGGER settlement_lines_append_only;",
    )
    .execute(&env.pool)
    .await
    .expect("moving a line");

    let forced = settle(&env, day, &["--force"]);
    let stdout = String::from_utf8_lossy(&forced.stdout);
    assert_eq!(forced.status.code(), Some(1), "{stdout}");
    let verdicts = gates(&env, day).await;
    let failed: Vec<&str> = verdicts.iter().filter(|(_, held)| !held).map(|(gate, _)| gate.as_str()).collect();
    assert_eq!(failed, ["orders_settled_once"], "{stdout}");
    let detail: String = sqlx::query_scalar(
        "SELECT detail FROM settlement_gate_results WHERE gate = 'orders_settled_once' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&env.pool)
    .await
    .expect("the gate's detail");
    assert!(detail.contains("1 lines stray"), "{detail}");
}

/// The value printed after `label` in a run's summary.
fn summary_value(stdout: &str, label: &str) -> i64 {
    let line = stdout.lines().find(|line| line.trim_start().starts_with(label)).unwrap_or_else(|| panic!("{stdout}"));
    line.split_whitespace().last().and_then(|value| value.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

#[tokio::test]
async fn a_dry_run_shows_the_lines_a_run_would_write_and_its_gates_and_writes_nothing() {
    let env = TestEnv::new().await;
    let day = settled_day();
    seed(&env, day, 40);
    let dry = succeeded(&settle(&env, day, &["--dry-run"]));
    assert!(dry.contains("DRY RUN (nothing written)"), "{dry}");
    // The seeded buyers' points add up: balance = ledger = their lots' remaining, never negative.
    let points_breaches: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT user_id, sum(amount) AS ledger FROM points GROUP BY user_id) l
         LEFT JOIN point_balances b USING (user_id)
         LEFT JOIN (SELECT user_id, sum(remaining) AS lots FROM point_lots GROUP BY user_id) r USING (user_id)
         WHERE b.balance IS DISTINCT FROM l.ledger OR coalesce(r.lots, 0) <> l.ledger OR l.ledger < 0",
    )
    .fetch_one(&env.pool)
    .await
    .expect("points check");
    assert_eq!(points_breaches, 0, "seeded points agree with their ledger and lots");
    assert!(!dry.contains("FAILED"), "every gate holds on the computed lines: {dry}");
    let written: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM settlement_lines), (SELECT count(*) FROM settlement_days),
                (SELECT count(*) FROM batch_job_executions)",
    )
    .fetch_one(&env.pool)
    .await
    .expect("counts");
    assert_eq!(written, (0, 0, 0), "no line, day or execution recorded");

    succeeded(&settle(&env, day, &[]));
    let (lines, paid): (i64, i64) =
        sqlx::query_as("SELECT count(*), sum(paid)::bigint FROM settlement_lines WHERE business_date = $1")
            .bind(day)
            .fetch_one(&env.pool)
            .await
            .expect("the run's lines");
    assert_eq!((summary_value(&dry, "lines it would write"), summary_value(&dry, "paid")), (lines, paid));

    // Once settled, a dry run has nothing left to write, and a breach planted since shows in its gates.
    let again = succeeded(&settle(&env, day, &["--dry-run"]));
    assert_eq!(summary_value(&again, "lines it would write"), 0, "{again}");
    sqlx::query("UPDATE points SET amount = amount - 1 WHERE id = (SELECT min(id) FROM points WHERE kind = 'USE')")
        .execute(&env.pool)
        .await
        .expect("planting a breach");
    let breached = settle(&env, day, &["--dry-run"]);
    let stdout = String::from_utf8_lossy(&breached.stdout);
    assert_eq!(breached.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("would fail gates: point_lines_match_ledger"), "{stdout}");
}

#[tokio::test]
async fn a_coupon_that_gives_another_discount_than_the_orders_took_fails_the_coupon_gate() {
    planted("UPDATE coupon_policies SET discount_value = 20 WHERE $1::date IS NOT NULL", "coupon_lines_match_coupons")
        .await;
}

#[tokio::test]
async fn a_ledger_use_entry_that_differs_from_its_order_fails_the_points_gate() {
    planted(
        "UPDATE points SET amount = amount - 1
         WHERE kind = 'USE' AND $1::date IS NOT NULL AND id = (SELECT min(id) FROM points WHERE kind = 'USE')",
        "point_lines_match_ledger",
    )
    .await;
}

#[tokio::test]
async fn an_order_settled_on_another_day_fails_the_settled_once_gate() {
    planted(
        "INSERT INTO settlement_lines (business_date, event, order_id, option_id, product_id, quantity, unit_price,
             gross, coupon_discount, points, paid, payment_method, payment_key, fee_rate_bps, fee, net, execution_id)
         SELECT $1::date - 1, 'SALE', o.id, i.option_id, i.product_id, i.quantity, i.unit_price, i.line_total,
                0, 0, i.line_total, o.payment_method, NULL, 0, 0, i.line_total, 0
         FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.id = (SELECT min(id) FROM orders)",
        "orders_settled_once",
    )
    .await;
}

#[tokio::test]
async fn a_closed_day_exports_its_lines_and_summaries_as_csv_and_an_unsettled_one_is_refused() {
    let env = TestEnv::new().await;
    let day = settled_day();
    seed(&env, day, 20);
    let out = std::env::temp_dir().join(format!("settle-export-{}", testkit::unique_suffix()));
    let out_arg = out.to_string_lossy().into_owned();
    let early = batch(&env, &["settlement", "export", "--date", &day.to_string(), "--out", &out_arg]);
    assert_eq!(early.status.code(), Some(2), "not settled yet: {early:?}");
    assert!(String::from_utf8_lossy(&early.stderr).contains("has not been settled"));

    succeeded(&settle(&env, day, &[]));
    succeeded(&batch(&env, &["settlement", "export", "--date", &day.to_string(), "--out", &out_arg]));
    let lines = std::fs::read_to_string(out.join(format!("settlement-{day}-lines.csv"))).expect("lines file");
    let by_method = std::fs::read_to_string(out.join(format!("settlement-{day}-by-method.csv"))).expect("method file");
    std::fs::remove_dir_all(&out).expect("cleaning up");
    let mut rows = lines.lines();
    assert!(rows.next().expect("a header").starts_with("business_date,event,order_id,option_id"), "{lines}");
    let (count, paid) = lines_digest(&env, day).await;
    assert_eq!(rows.count() as i64, count, "{paid}");
    let paid_column = |text: &str, column: usize| -> i64 {
        text.lines()
            .skip(1)
            .map(|row| row.split(',').nth(column).expect("column").parse::<i64>().expect("whole won"))
            .sum()
    };
    assert_eq!(paid_column(&lines, 10), paid_column(&by_method, 6), "lines and summary agree on what was paid");
    assert!(by_method.lines().count() > 1, "{by_method}");
}

#[tokio::test]
async fn a_late_refund_of_a_settled_day_is_a_reversal_on_its_own_day_and_the_settled_day_never_changes() {
    let env = TestEnv::new().await;
    let (day, next) = (settled_day() - chrono::Days::new(1), settled_day());
    seed(&env, day, 12);
    succeeded(&settle(&env, day, &[]));
    let settled = lines_digest(&env, day).await;
    // Two purchases of the settled day are refunded after sales the next day (as the admin's move leaves
    // them: REFUNDED, with its history row).
    let refunded: Vec<i64> = sqlx::query_scalar(
        "WITH picked AS (SELECT id FROM orders ORDER BY id LIMIT 2 OFFSET 4),
              moved AS (UPDATE orders SET status = 'REFUNDED', status_changed_at = $1 WHERE id IN (SELECT id FROM picked)
                        RETURNING id)
         INSERT INTO order_status_history (order_id, from_status, to_status, actor, reason, changed_at)
         SELECT id, 'CONFIRMED', 'REFUNDED', 'admin:1', 'after sales', $1 FROM moved RETURNING order_id",
    )
    .bind(SEOUL.start_of(next) + chrono::Duration::hours(10))
    .fetch_all(&env.pool)
    .await
    .expect("refunding two purchases");

    succeeded(&settle(&env, next, &[]));
    assert_eq!(day_status(&env, next).await, "CLOSED");
    assert_eq!(lines_digest(&env, day).await, settled, "the settled day is not rewritten");
    let (reversals, net_sum, sale_sum): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(r.paid)::bigint, (SELECT sum(paid)::bigint FROM settlement_lines
                                                 WHERE event = 'SALE' AND order_id = ANY($2))
         FROM settlement_lines r WHERE r.business_date = $1 AND r.event = 'REVERSAL' AND r.order_id = ANY($2)",
    )
    .bind(next)
    .bind(&refunded)
    .fetch_one(&env.pool)
    .await
    .expect("reversals");
    let items: i64 = sqlx::query_scalar("SELECT count(*) FROM order_items WHERE order_id = ANY($1)")
        .bind(&refunded)
        .fetch_one(&env.pool)
        .await
        .expect("items");
    assert_eq!(reversals, items, "one reversal per item sold");
    assert_eq!(net_sum, -sale_sum, "a reversal gives back exactly what the sale booked");
    let day_paid: i64 = sqlx::query_scalar("SELECT paid FROM settlement_days WHERE business_date = $1")
        .bind(next)
        .fetch_one(&env.pool)
        .await
        .expect("the next day's total");
    assert_eq!(day_paid, -sale_sum, "the next day sold nothing and gave back the two purchases");

    let rewrite = sqlx::query("UPDATE settlement_lines SET paid = paid WHERE business_date = $1").bind(day);
    let refused = rewrite.execute(&env.pool).await.expect_err("settlement lines are append-only");
    assert!(refused.to_string().contains("append-only"), "{refused}");
}

/// What the day's checkpointed partitions say they wrote, and the lines there are.
async fn checkpointed_and_written(env: &TestEnv, date: NaiveDate) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM batch_partition_checkpoints c JOIN batch_job_executions e ON e.id = c.execution_id
                 WHERE e.job_name = 'settle-sales' AND c.status = 'COMPLETED'),
                (SELECT coalesce(sum(rows_written), 0)::bigint FROM batch_partition_checkpoints),
                (SELECT count(*) FROM settlement_lines WHERE business_date = $1)",
    )
    .bind(date)
    .fetch_one(&env.pool)
    .await
    .expect("checkpoints")
}

#[tokio::test]
async fn a_run_stopped_then_killed_mid_way_resumes_each_time_and_settles_every_item_exactly_once() {
    let env = TestEnv::new().await;
    let day = settled_day();
    seed(&env, day, 30_000);
    let date = day.to_string();
    let args = ["settle-sales", "--date", &date, "--timezone", "Asia/Seoul", "--partitions", "128", "--workers", "1"];
    let spawn = || process::Running::spawn(process::command_for(BATCH.as_ref(), &env).args(args)).expect("batch");
    let done = || async { checkpointed_and_written(&env, day).await.0 };

    let mut first = spawn();
    assert!(process::progresses_to(4, std::time::Duration::from_secs(30), done).await);
    let stopped = first.terminate(std::time::Duration::from_secs(30)).await.expect("the run ends on SIGTERM");
    assert_eq!(stopped.code(), Some(1), "stopped, not killed");
    let (partitions, written, lines) = checkpointed_and_written(&env, day).await;
    assert!(partitions < 128, "stopped before the end ({partitions} partitions)");
    assert_eq!(written, lines, "a partition's lines commit with its checkpoint, never apart");
    let status: String = sqlx::query_scalar("SELECT status FROM batch_job_executions WHERE job_name = 'settle-sales'")
        .fetch_one(&env.pool)
        .await
        .expect("the execution");
    assert_eq!(status, "STOPPED");

    let mut second = spawn();
    assert!(process::progresses_to(partitions + 4, std::time::Duration::from_secs(30), done).await);
    second.kill();
    let (killed_at, written, lines) = checkpointed_and_written(&env, day).await;
    assert!(killed_at < 128, "killed before the end ({killed_at} partitions)");
    assert_eq!(written, lines, "the partition the kill cut short left nothing");
    // The killed run's session holds its run lock until PostgreSQL notices the connection is gone: a run
    // started before that is refused as "already running elsewhere" (CI saw it once).
    let released = process::eventually(std::time::Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                                WHERE l.locktype = 'advisory' AND d.datname = current_database())",
        )
        .fetch_one(&env.pool)
        .await
        .expect("locks")
    })
    .await;
    assert!(released, "the killed run's lock went back");

    succeeded(&batch(&env, &args));
    assert_eq!(day_status(&env, day).await, "CLOSED", "every gate holds after two interruptions");
    let (partitions, written, lines) = checkpointed_and_written(&env, day).await;
    assert_eq!((partitions, written), (128, lines), "each partition done once, in one execution");
    let executions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM batch_job_executions").fetch_one(&env.pool).await.expect("n");
    assert_eq!(executions, 1, "resumed, never started over");
}

//! settle-batch seed-points and reconcile-points run as an operator runs them, against real PostgreSQL,
//! checked against a plain GROUP BY oracle.

use domain::{points::PointAmount, UserId};
use sqlx::PgPool;
use std::process::Output;
use testkit::{process, TestEnv};

const BATCH: &str = env!("CARGO_BIN_EXE_settle-batch");
const DATE: &str = "2026-11-20";
const TIMEZONE: &str = "Asia/Seoul";

fn batch(env: &TestEnv, args: &[&str]) -> Output {
    process::command_for(BATCH.as_ref(), env).env("RUST_LOG", "warn").args(args).output().expect("running settle-batch")
}

fn succeeded(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "exit {:?}\n{stdout}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    stdout
}

fn seed(env: &TestEnv, users: &str, transactions: &str, seed: &str, corrupt: &str) {
    succeeded(&batch(
        env,
        &[
            "seed-points",
            "--users",
            users,
            "--transactions",
            transactions,
            "--days",
            "6",
            "--until",
            "2026-11-22",
            "--seed",
            seed,
            "--corrupt",
            corrupt,
        ],
    ));
}

fn reconcile(env: &TestEnv, extra: &[&str]) -> Output {
    let mut args = vec!["reconcile-points", "--date", DATE, "--timezone", TIMEZONE];
    args.extend_from_slice(extra);
    batch(env, &args)
}

/// Snapshot rows that differ from the oracle (both directions), and discrepancy rows of the latest
/// execution that differ from the balance/ledger comparison.
async fn differences_from_oracle(pool: &PgPool) -> (i64, i64) {
    let snapshots: i64 = sqlx::query_scalar(
        "WITH day AS (SELECT ($1::date::timestamp AT TIME ZONE $2) AS s, (($1::date + 1)::timestamp AT TIME ZONE $2) AS e), \
         oracle AS ( \
           SELECT $1::date AS business_date, user_id, \
                  sum(amount) FILTER (WHERE created_at < e) AS balance, \
                  coalesce(sum(amount) FILTER (WHERE kind = 'EARN' AND created_at >= s AND created_at < e), 0) AS earned, \
                  coalesce(-sum(amount) FILTER (WHERE kind = 'USE' AND created_at >= s AND created_at < e), 0) AS used, \
                  coalesce(sum(abs(amount)) FILTER (WHERE kind = 'CANCEL' AND created_at >= s AND created_at < e), 0) AS cancelled \
           FROM points, day GROUP BY user_id HAVING count(*) FILTER (WHERE created_at < e) > 0), \
         actual AS (SELECT business_date, user_id, balance, earned, used, cancelled FROM daily_point_snapshots WHERE business_date = $1::date) \
         SELECT (SELECT count(*) FROM (SELECT * FROM oracle EXCEPT SELECT * FROM actual) a) \
              + (SELECT count(*) FROM (SELECT * FROM actual EXCEPT SELECT * FROM oracle) b)",
    )
    .bind(DATE)
    .bind(TIMEZONE)
    .fetch_one(pool)
    .await
    .expect("snapshot oracle");
    let discrepancies: i64 = sqlx::query_scalar(
        "WITH ledger AS (SELECT user_id, sum(amount) AS total FROM points GROUP BY user_id), \
         lots AS (SELECT user_id, sum(remaining) AS remaining FROM point_lots GROUP BY user_id), \
         oracle AS (SELECT user_id, coalesce(b.balance, 0) AS stored, coalesce(l.total, 0) AS ledger, \
                           coalesce(t.remaining, 0)::bigint AS lots \
                    FROM point_balances b FULL JOIN ledger l USING (user_id) FULL JOIN lots t USING (user_id) \
                    WHERE coalesce(b.balance, 0) <> coalesce(l.total, 0) OR coalesce(b.balance, 0) <> coalesce(t.remaining, 0)), \
         actual AS (SELECT user_id, stored_balance, ledger_balance, lots_balance FROM reconciliation_discrepancies \
                    WHERE execution_id = (SELECT max(id) FROM batch_job_executions)) \
         SELECT (SELECT count(*) FROM (SELECT * FROM oracle EXCEPT SELECT * FROM actual) a) \
              + (SELECT count(*) FROM (SELECT * FROM actual EXCEPT SELECT * FROM oracle) b)",
    )
    .fetch_one(pool)
    .await
    .expect("discrepancy oracle");
    (snapshots, discrepancies)
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// Entries exactly at the start of the business day, just before its end and exactly at its end.
async fn boundary_entries(pool: &PgPool) -> i64 {
    let user: i64 = sqlx::query_scalar("SELECT min(user_id) FROM point_balances").fetch_one(pool).await.expect("user");
    sqlx::query(
        "WITH day AS (SELECT ($1::date::timestamp AT TIME ZONE $2) AS s, (($1::date + 1)::timestamp AT TIME ZONE $2) AS e) \
         INSERT INTO points (user_id, kind, amount, reason, created_at) \
         SELECT $3, 'EARN', v.amount, 'boundary', v.at FROM day, \
                LATERAL (VALUES (1000000, s), (2000000, e - interval '1 microsecond'), (4000000, e)) AS v(amount, at)",
    )
    .bind(DATE)
    .bind(TIMEZONE)
    .bind(user)
    .execute(pool)
    .await
    .expect("boundary entries");
    sqlx::query("UPDATE point_balances SET balance = balance + 7000000 WHERE user_id = $1")
        .bind(user)
        .execute(pool)
        .await
        .expect("balance");
    sqlx::query(
        "INSERT INTO point_lots (user_id, source, amount, remaining, expires_at, point_id) \
         SELECT $1, 'ADMIN', 7000000, 7000000, now() + interval '1 year', max(id) FROM points WHERE user_id = $1",
    )
    .bind(user)
    .execute(pool)
    .await
    .expect("lot");
    user
}

#[tokio::test]
async fn snapshots_and_discrepancies_equal_the_oracle_for_any_partitions_and_threads() {
    let env = TestEnv::new().await;
    seed(&env, "3000", "40000", "7", "9");
    // Users with no ledger at all, one with a balance row only (a discrepancy with no entries).
    sqlx::query(
        "INSERT INTO users (email, password_hash, name) VALUES ('lonely@x.io', 'x', 'L'), ('ghost@x.io', 'x', 'G')",
    )
    .execute(&env.pool)
    .await
    .expect("users");
    sqlx::query("INSERT INTO point_balances (user_id, balance) SELECT id, 50 FROM users WHERE email = 'ghost@x.io'")
        .execute(&env.pool)
        .await
        .expect("ghost balance");
    let edge = boundary_entries(&env.pool).await;
    // A lot that lost a point: its balance still agrees with the ledger, not with the lots.
    sqlx::query(
        "UPDATE point_lots SET remaining = remaining - 1 WHERE id = (SELECT max(l.id) FROM point_lots l \
         JOIN point_balances b USING (user_id) WHERE l.remaining > 0 AND b.balance = l.remaining)",
    )
    .execute(&env.pool)
    .await
    .expect("lot");

    for (partitions, threads) in [("16", "2"), ("4", "1"), ("1", "3"), ("8", "4")] {
        let stdout = succeeded(&reconcile(&env, &["--partitions", partitions, "--threads", threads, "--force"]));
        assert_eq!(
            differences_from_oracle(&env.pool).await,
            (0, 0),
            "{partitions} partitions, {threads} threads:\n{stdout}"
        );
    }
    let found = count(&env.pool, "SELECT discrepancies FROM batch_job_executions ORDER BY id DESC LIMIT 1").await;
    assert_eq!(found, 11, "9 corrupted balances, the balance without a ledger and the lot that lost a point");
    let earned: i64 =
        sqlx::query_scalar("SELECT earned FROM daily_point_snapshots WHERE user_id = $1 AND business_date = $2::date")
            .bind(edge)
            .bind(DATE)
            .fetch_one(&env.pool)
            .await
            .expect("edge snapshot");
    // 1,000,000 at the first instant and 2,000,000 at the last are the day's; 4,000,000 at the end is the next day's.
    assert!((3_000_000..4_000_000).contains(&earned), "earned {earned}");
}

#[tokio::test]
async fn a_failed_run_resumes_without_redoing_finished_partitions_and_a_completed_date_needs_force() {
    let env = TestEnv::new().await;
    seed(&env, "2000", "20000", "11", "4");
    let failed = reconcile(&env, &["--partitions", "8", "--threads", "1", "--fail-partition", "5"]);
    assert_eq!(failed.status.code(), Some(1), "{}", String::from_utf8_lossy(&failed.stderr));
    assert_eq!(count(&env.pool, "SELECT count(*) FROM batch_job_executions WHERE status = 'FAILED'").await, 1);
    let done_before =
        count(&env.pool, "SELECT count(*) FROM batch_partition_checkpoints WHERE status = 'COMPLETED'").await;
    assert_eq!(done_before, 5, "units 0 to 4 finished before unit 5 failed (one thread, in order)");

    let resumed = succeeded(&reconcile(&env, &["--partitions", "8", "--threads", "1"]));
    assert!(resumed.contains("(5 done earlier)"), "{resumed}");
    assert_eq!(count(&env.pool, "SELECT count(*) FROM batch_job_executions").await, 1, "the same execution resumed");
    assert_eq!(differences_from_oracle(&env.pool).await, (0, 0));

    let again = reconcile(&env, &["--partitions", "8"]);
    assert_eq!(again.status.code(), Some(3), "a completed date is not redone");
    let other_parameters = reconcile(&env, &["--partitions", "4", "--force"]);
    assert!(other_parameters.status.success());
    assert_eq!(differences_from_oracle(&env.pool).await, (0, 0), "--force replaces the date's snapshot");
}

/// A single-threaded run of 16 units, once `units` of them are done.
async fn run_until_units_done(env: &TestEnv, units: i64) -> process::Running {
    let mut command = process::command_for(BATCH.as_ref(), env);
    command.env("RUST_LOG", "warn").args([
        "reconcile-points",
        "--date",
        DATE,
        "--timezone",
        TIMEZONE,
        "--threads",
        "1",
    ]);
    let child = process::Running::spawn(command.args(["--partitions", "16"])).expect("batch");
    let progressed = process::eventually(std::time::Duration::from_secs(60), || async {
        count(&env.pool, "SELECT count(*) FROM batch_partition_checkpoints").await >= units
    })
    .await;
    assert!(progressed, "the run finished {units} units");
    child
}

#[tokio::test]
async fn a_killed_run_resumes_and_matches_the_oracle() {
    let env = TestEnv::new().await;
    seed(&env, "20000", "600000", "3", "5");
    let mut child = run_until_units_done(&env, 2).await;
    child.kill();
    let finished = count(&env.pool, "SELECT count(*) FROM batch_partition_checkpoints").await;
    assert!(finished < 16, "killed before the end ({finished} partitions done)");
    let resumed = succeeded(&reconcile(&env, &["--threads", "2"]));
    assert!(resumed.contains("done earlier"), "{resumed}");
    assert_eq!(differences_from_oracle(&env.pool).await, (0, 0));
}

#[tokio::test]
async fn a_stopped_run_ends_between_units_and_its_restart_matches_the_oracle() {
    let env = TestEnv::new().await;
    seed(&env, "20000", "600000", "4", "5");
    let mut child = run_until_units_done(&env, 1).await;
    let execution = count(&env.pool, "SELECT max(id) FROM batch_job_executions").await;
    succeeded(&batch(&env, &["stop", &execution.to_string()]));
    let mut exit = None;
    let ended = process::eventually(std::time::Duration::from_secs(60), || {
        exit = child.0.try_wait().expect("the run");
        std::future::ready(exit.is_some())
    })
    .await;
    assert!(ended && exit.and_then(|status| status.code()) == Some(1), "the stop ended the run: {exit:?}");
    let stopped = "SELECT count(*) FROM batch_job_executions WHERE status = 'STOPPED'";
    assert_eq!(count(&env.pool, stopped).await, 1);
    let finished = count(&env.pool, "SELECT count(*) FROM batch_partition_checkpoints").await;
    assert!(finished < 16, "stopped before the end ({finished} units done)");
    succeeded(&batch(&env, &["restart", &execution.to_string()]));
    assert_eq!(differences_from_oracle(&env.pool).await, (0, 0));
}

#[tokio::test]
async fn dry_run_and_bad_arguments_write_nothing() {
    let env = TestEnv::new().await;
    seed(&env, "500", "3000", "5", "3");
    let dry = succeeded(&reconcile(&env, &["--dry-run"]));
    assert!(dry.contains("DRY RUN") && dry.contains("discrepancies"), "{dry}");
    for (args, message) in [
        (vec!["reconcile-points", "--date", "2026-02-30"], "invalid value"),
        (vec!["reconcile-points", "--date", DATE, "--partitions", "0"], "divisor of 16"),
        (vec!["reconcile-points", "--date", DATE, "--partitions", "3"], "divisor of 16"),
        (vec!["reconcile-points", "--date", DATE, "--frobnicate"], "unexpected argument"),
        (vec!["reconcile-points", "--date", DATE, "--timezone", "Mars/Olympus"], "not known"),
    ] {
        let output = batch(&env, &args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(message),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let written = count(
        &env.pool,
        "SELECT (SELECT count(*) FROM batch_job_executions) + (SELECT count(*) FROM daily_point_snapshots) \
              + (SELECT count(*) FROM reconciliation_discrepancies)",
    )
    .await;
    assert_eq!(written, 0);
}

/// Earns and spends through the ledger (as the API does) for `users` until `stop` is set.
async fn keep_writing(pool: PgPool, users: Vec<i64>, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> u64 {
    let mut writes = 0;
    let mut n = 0usize;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let user = UserId::parse(users[n % users.len()]).expect("id");
        let mut tx = pool.begin().await.expect("tx");
        let amount = PointAmount::parse(1 + (n % 5) as i64).expect("amount");
        let result = if n.is_multiple_of(2) {
            let validity = domain::points::Validity::days(365).expect("validity");
            let terms = infra::points::lots::LotTerms { source: domain::points::LotSource::Admin, validity };
            infra::points::ledger::earn(&mut tx, user, amount, terms, Some("concurrent"), None).await
        } else {
            infra::points::ledger::spend(&mut tx, user, amount, None, None).await
        };
        if result.expect("ledger").is_ok() {
            tx.commit().await.expect("commit");
            writes += 1;
        }
        n += 1;
    }
    writes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_the_batch_cause_no_false_discrepancy_and_fixes_keep_them() {
    let env = TestEnv::new().await;
    seed(&env, "20000", "300000", "9", "6");
    let corrupted: Vec<i64> = sqlx::query_scalar(
        "SELECT b.user_id FROM point_balances b JOIN (SELECT user_id, sum(amount) s FROM points GROUP BY user_id) l \
         USING (user_id) WHERE b.balance <> l.s",
    )
    .fetch_all(&env.pool)
    .await
    .expect("corrupted users");
    assert_eq!(corrupted.len(), 6);
    let healthy: Vec<i64> = sqlx::query_scalar("SELECT user_id FROM point_balances WHERE user_id <> ALL($1) LIMIT 50")
        .bind(&corrupted)
        .fetch_all(&env.pool)
        .await
        .expect("healthy users");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = [corrupted.clone(), healthy]
        .into_iter()
        .map(|users| tokio::spawn(keep_writing(env.pool.clone(), users, stop.clone())))
        .collect();
    let mut command = process::command_for(BATCH.as_ref(), &env);
    command.env("RUST_LOG", "warn").args([
        "reconcile-points",
        "--date",
        DATE,
        "--timezone",
        TIMEZONE,
        "--fix",
        "--threads",
        "1",
    ]);
    let output = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("batch");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut writes = 0;
    for writer in writers {
        writes += writer.await.expect("writer");
    }
    let stdout = succeeded(&output);
    assert!(writes > 0, "writes happened while the batch ran");
    assert_eq!(
        count(&env.pool, "SELECT discrepancies FROM batch_job_executions").await,
        6,
        "only the corrupted:\n{stdout}"
    );
    let wrong: i64 = count(
        &env.pool,
        "SELECT count(*) FROM point_balances b FULL JOIN (SELECT user_id, sum(amount) s FROM points GROUP BY user_id) l \
         USING (user_id) WHERE coalesce(b.balance, 0) <> coalesce(l.s, 0)",
    )
    .await;
    assert_eq!(wrong, 0, "every balance equals its ledger after the fixes and the concurrent writes");
    assert_eq!(count(&env.pool, "SELECT count(*) FROM reconciliation_discrepancies WHERE fixed_at IS NULL").await, 0);
}

#[tokio::test]
async fn a_balance_off_its_lots_only_is_reported_and_never_changed_by_the_fix() {
    let env = TestEnv::new().await;
    seed(&env, "300", "3000", "5", "2");
    let (user, balance): (i64, i64) = sqlx::query_as(
        "UPDATE point_lots SET remaining = remaining - 3 \
         WHERE id = (SELECT min(l.id) FROM point_lots l JOIN point_balances b USING (user_id) \
                     WHERE l.remaining >= 3 AND b.balance = l.remaining) RETURNING user_id, \
         (SELECT balance FROM point_balances b WHERE b.user_id = point_lots.user_id)",
    )
    .fetch_one(&env.pool)
    .await
    .expect("lot");

    let stdout = succeeded(&reconcile(&env, &[]));
    assert_eq!(differences_from_oracle(&env.pool).await.1, 0, "{stdout}");
    succeeded(&reconcile(&env, &["--fix", "--force"]));
    let row: (i64, i64, Option<i64>, bool) = sqlx::query_as(
        "SELECT stored_balance, ledger_balance, lots_balance, fixed_at IS NOT NULL FROM reconciliation_discrepancies \
         WHERE user_id = $1 AND execution_id = (SELECT max(id) FROM batch_job_executions)",
    )
    .bind(user)
    .fetch_one(&env.pool)
    .await
    .expect("the lots' discrepancy");
    assert_eq!(row, (balance, balance, Some(balance - 3), false));
    let after: i64 = sqlx::query_scalar("SELECT balance FROM point_balances WHERE user_id = $1")
        .bind(user)
        .fetch_one(&env.pool)
        .await
        .expect("balance");
    assert_eq!(after, balance, "the fix leaves a balance that agrees with its ledger");
    let fixed = count(
        &env.pool,
        "SELECT count(*) FROM reconciliation_discrepancies WHERE fixed_at IS NOT NULL \
         AND execution_id = (SELECT max(id) FROM batch_job_executions)",
    )
    .await;
    assert_eq!(fixed, 2, "the two corrupted balances were fixed");
}

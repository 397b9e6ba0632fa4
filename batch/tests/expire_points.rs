//! `settle-batch expire-points` and `notify-expiring-points` against real PostgreSQL and Redis: what
//! expires (lots due by the end of the date, with something left) and what it leaves (closed lots, one
//! EXPIRE entry and one event per user, lower balances that still equal their ledgers and lots, fresh
//! cached balances); reruns that change nothing; a run killed midway that resumes without expiring
//! anything twice; notices 60, 30 and 3 days ahead, each once.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use domain::{
    points::{LotSource, PointAmount, Validity},
    UserId,
};
use infra::{
    config::BusinessTimeArgs,
    points::{cache::BalanceCache, ledger, lots::LotTerms},
};
use sqlx::PgPool;
use std::process::Output;
use testkit::{process, TestEnv};

const BATCH: &str = env!("CARGO_BIN_EXE_settle-batch");
const SEOUL: BusinessTimeArgs = BusinessTimeArgs { timezone: chrono_tz::Asia::Seoul };

fn expire_points(env: &TestEnv, args: &[&str]) -> Output {
    let mut command = process::command_for(BATCH.as_ref(), env);
    command.args(["expire-points", "--timezone", "Asia/Seoul"]).args(args);
    command.output().expect("running settle-batch expire-points")
}

fn yesterday() -> NaiveDate {
    SEOUL.day_of(Utc::now()).pred_opt().expect("a day before today")
}

async fn user(pool: &PgPool) -> UserId {
    UserId::parse(testkit::orders::buyer(pool).await).expect("id")
}

/// Earns `amount` as a lot that expires at `expires_at`; the earn's id.
async fn lot(pool: &PgPool, user: UserId, amount: i64, expires_at: DateTime<Utc>) -> i64 {
    let terms = LotTerms { source: LotSource::Purchase, validity: Validity::days(365).expect("validity") };
    let mut tx = pool.begin().await.expect("tx");
    let amount = PointAmount::parse(amount).expect("amount");
    let earned = ledger::earn(&mut tx, user, amount, terms, None, None).await.expect("earn").expect("earned");
    tx.commit().await.expect("commit");
    set_expiry(pool, earned.point_id, expires_at).await;
    earned.point_id
}

/// Moves the expiry of the earn's lot (validities are whole days from the earn; tests need instants).
async fn set_expiry(pool: &PgPool, earn: i64, expires_at: DateTime<Utc>) {
    sqlx::query("UPDATE point_lots SET expires_at = $2 WHERE point_id = $1")
        .bind(earn)
        .bind(expires_at)
        .execute(pool)
        .await
        .expect("expiry");
}

async fn spend(pool: &PgPool, user: UserId, amount: i64) {
    let mut tx = pool.begin().await.expect("tx");
    let amount = PointAmount::parse(amount).expect("amount");
    ledger::spend(&mut tx, user, amount, None, None).await.expect("spend").expect("covered");
    tx.commit().await.expect("commit");
}

/// (balance, ledger sum, lots' remaining sum) of a user.
async fn books(pool: &PgPool, user: UserId) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT balance FROM point_balances WHERE user_id = $1),
                (SELECT sum(amount) FROM points WHERE user_id = $1)::bigint,
                (SELECT sum(remaining) FROM point_lots WHERE user_id = $1)::bigint",
    )
    .bind(user.get())
    .fetch_one(pool)
    .await
    .expect("books")
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect("count")
}

#[tokio::test]
async fn lots_due_by_the_end_of_the_date_expire_once_with_an_entry_an_event_and_a_fresh_cached_balance() {
    let env = TestEnv::new().await;
    let date = yesterday();
    let during_the_date = SEOUL.start_of(date) + Duration::hours(5);
    let (holder, late, untouched) = (user(&env.pool).await, user(&env.pool).await, user(&env.pool).await);
    // The holder's use takes the lot due first whole and 200 of the next; then both end on the date.
    let day = |days| Utc::now() + Duration::days(days);
    let spent = lot(&env.pool, holder, 1_000, day(1)).await;
    let partly_spent = lot(&env.pool, holder, 500, day(2)).await;
    lot(&env.pool, holder, 2_000, day(3)).await;
    spend(&env.pool, holder, 1_200).await;
    set_expiry(&env.pool, spent, during_the_date - Duration::hours(3)).await;
    set_expiry(&env.pool, partly_spent, during_the_date).await;
    // A lot that ended today, after the date: tomorrow's run takes it.
    lot(&env.pool, late, 40, SEOUL.start_of(SEOUL.day_of(Utc::now())) + Duration::seconds(1)).await;
    lot(&env.pool, untouched, 700, day(3)).await;
    let before = books(&env.pool, holder).await;
    assert_eq!(before, (2_300, 2_300, 2_300), "500 + 2,000 lots less the 200 the use took from the 2,000 one");
    let cache = BalanceCache::new(infra::redis_client::Redis::connect(&env.redis).await.expect("redis"));
    let (_, version) = ledger::balance(&env.pool, holder).await.expect("balance").expect("a row");
    cache.offer(holder, version, 2_300).await;

    let run = expire_points(&env, &["--date", &date.to_string(), "--chunk", "1"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        stdout.lines().any(|line| line.contains("points expired") && line.trim_end().ends_with(" 300")),
        "{stdout}"
    );

    // The lot the use emptied has nothing to expire; 300 of the one it took 200 from expires.
    assert_eq!(books(&env.pool, holder).await, (2_000, 2_000, 2_000));
    let entries: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, amount FROM points WHERE user_id = $1 AND kind = 'EXPIRE'")
            .bind(holder.get())
            .fetch_all(&env.pool)
            .await
            .expect("entries");
    assert_eq!(entries, [("EXPIRE".to_owned(), -300)]);
    let closed = count(&env.pool, "SELECT count(*) FROM point_lots WHERE closed_at IS NOT NULL").await;
    assert_eq!(closed, 1, "only the due lot with something left is closed");
    assert_eq!(books(&env.pool, late).await, (40, 40, 40), "a lot that ended today waits for tomorrow's run");
    assert_eq!(books(&env.pool, untouched).await, (700, 700, 700));
    let (event_amount, event_balance): (i64, i64) = sqlx::query_as(
        "SELECT (payload->>'amount')::bigint, (payload->>'balance')::bigint FROM outbox_events
         WHERE event_type = 'PointsExpired' AND aggregate_id = $1::text",
    )
    .bind(holder.get())
    .fetch_one(&env.pool)
    .await
    .expect("one event");
    assert_eq!((event_amount, event_balance), (-300, 2_000));
    assert_eq!(cache.get(holder).await, Some((version + 1, 2_000)), "the cached balance follows the expiry");

    assert_eq!(expire_points(&env, &["--date", &date.to_string()]).status.code(), Some(3), "this date is done");
    let forced = expire_points(&env, &["--date", &date.to_string(), "--force"]);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert_eq!(
        count(&env.pool, "SELECT count(*) FROM points WHERE kind = 'EXPIRE'").await,
        1,
        "a rerun changes nothing"
    );
    assert_eq!(books(&env.pool, holder).await, (2_000, 2_000, 2_000));
}

#[tokio::test]
async fn a_run_killed_midway_resumes_and_expires_every_due_lot_exactly_once() {
    let env = TestEnv::new().await;
    let seeded = process::command_for(BATCH.as_ref(), &env)
        .args(["seed-points", "--users", "4000", "--transactions", "12000", "--days", "3"])
        .output()
        .expect("seed");
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    let due_users = sqlx::query(
        "UPDATE point_lots SET expires_at = now() - interval '3 days' WHERE remaining > 0 AND user_id % 4 <> 0",
    )
    .execute(&env.pool)
    .await
    .expect("due lots")
    .rows_affected() as i64;
    assert!(due_users > 2_000, "{due_users}");
    let date = yesterday().to_string();
    let mut first = process::Running::spawn(process::command_for(BATCH.as_ref(), &env).env("RUST_LOG", "warn").args([
        "expire-points",
        "--date",
        &date,
        "--chunk",
        "5",
        "--workers",
        "1",
    ]))
    .expect("batch");
    let started = process::eventually(std::time::Duration::from_secs(60), || async {
        count(&env.pool, "SELECT count(*) FROM points WHERE kind = 'EXPIRE'").await >= 200
    })
    .await;
    assert!(started, "the first run expired some users");
    first.kill();
    let expired = count(&env.pool, "SELECT count(*) FROM points WHERE kind = 'EXPIRE'").await;
    assert!(expired < due_users, "killed before the end ({expired} of {due_users})");

    let resumed = expire_points(&env, &["--date", &date, "--chunk", "50"]);
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let (users, once) = sqlx::query_as::<_, (i64, bool)>(
        "SELECT count(*), bool_and(n = 1) FROM (SELECT count(*) AS n FROM points WHERE kind = 'EXPIRE' GROUP BY user_id) e",
    )
    .fetch_one(&env.pool)
    .await
    .expect("entries");
    assert_eq!((users, once), (due_users, true), "one EXPIRE entry per user with a due lot");
    let left = "SELECT count(*) FROM point_lots WHERE remaining > 0 AND expires_at < now()";
    assert_eq!(count(&env.pool, left).await, 0, "every due lot is closed");
    let disagreeing = "SELECT count(*) FROM point_balances b
         WHERE b.balance <> (SELECT coalesce(sum(amount), 0) FROM points p WHERE p.user_id = b.user_id)
            OR b.balance <> (SELECT coalesce(sum(remaining), 0) FROM point_lots l WHERE l.user_id = b.user_id)";
    assert_eq!(count(&env.pool, disagreeing).await, 0, "balances equal their ledgers and lots");
    assert_eq!(
        count(&env.pool, "SELECT count(*) FROM outbox_events WHERE event_type = 'PointsExpired'").await,
        due_users
    );
}

fn notify(env: &TestEnv, date: NaiveDate, force: bool) -> Output {
    let mut command = process::command_for(BATCH.as_ref(), env);
    command.args(["notify-expiring-points", "--timezone", "Asia/Seoul", "--date", &date.to_string()]);
    if force {
        command.arg("--force");
    }
    command.output().expect("running settle-batch notify-expiring-points")
}

/// (user, expiry date, days before, amount) of every notice event, in a stable order.
async fn notice_events(pool: &PgPool) -> Vec<(i64, String, i64, i64)> {
    sqlx::query_as(
        "SELECT (payload->>'userId')::bigint, payload->>'expiresOn', (payload->>'daysBefore')::bigint,
                (payload->>'amount')::bigint
         FROM outbox_events WHERE event_type = 'PointsExpiringSoon' ORDER BY 1, 2, 3 DESC",
    )
    .fetch_all(pool)
    .await
    .expect("notices")
}

#[tokio::test]
async fn notices_go_out_60_30_and_3_days_ahead_once_per_user_date_and_step() {
    let env = TestEnv::new().await;
    let today = SEOUL.day_of(Utc::now());
    let on = |days: u64| today.checked_add_days(chrono::Days::new(days)).expect("a date");
    let noon_on = |days: u64| SEOUL.start_of(on(days)) + Duration::hours(12);
    let (first, second) = (user(&env.pool).await, user(&env.pool).await);
    // Two lots ending on the same day make one notice of both; an emptied lot and one beyond 60 days none.
    lot(&env.pool, first, 100, noon_on(45)).await;
    lot(&env.pool, first, 50, noon_on(45) + Duration::hours(3)).await;
    lot(&env.pool, first, 70, noon_on(20)).await;
    lot(&env.pool, second, 30, noon_on(2)).await;
    lot(&env.pool, second, 999, noon_on(61)).await;
    let emptied = lot(&env.pool, second, 10, noon_on(10)).await;
    sqlx::query("UPDATE point_lots SET remaining = 0, closed_at = now() WHERE point_id = $1")
        .bind(emptied)
        .execute(&env.pool)
        .await
        .expect("emptied");
    let (a, b) = (first.get(), second.get());
    let date = |days: u64| on(days).to_string();

    let run = notify(&env, today, false);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let sent = vec![(a, date(20), 30, 70), (a, date(45), 60, 150), (b, date(2), 3, 30)];
    assert_eq!(notice_events(&env.pool).await, sent);
    assert_eq!(notify(&env, today, false).status.code(), Some(3), "this date is done");
    assert!(notify(&env, today, true).status.success());
    assert_eq!(notice_events(&env.pool).await, sent, "a forced rerun repeats no notice");

    // Fifteen days on, the 45-day date is 30 days away (the 20-day one is still inside its 30-day step)
    // and the 61-day one 46: its first notice. Forty-two days on, they are 3 and 19 days away.
    assert!(notify(&env, on(15), false).status.success());
    assert!(notify(&env, on(42), false).status.success());
    let mut expected = sent.clone();
    expected.splice(2..2, [(a, date(45), 30, 150), (a, date(45), 3, 150)]);
    expected.extend([(b, date(61), 60, 999), (b, date(61), 30, 999)]);
    assert_eq!(notice_events(&env.pool).await, expected);
}

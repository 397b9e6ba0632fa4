//! Point lots against real PostgreSQL: the spending order and its allocations, cancels that put points
//! back or regrant them, expired lots never spent, untouched-earn cancels, racing uses, and the backfill
//! that turned existing ledgers into lots.

use domain::{
    points::{LotSource, PointAmount, Validity},
    UserId,
};
use infra::points::{
    expiry,
    ledger::{self, Actor, Entry, Refusal},
    lots::LotTerms,
};
use sqlx::PgPool;
use testkit::TestEnv;

const DEFAULT: i64 = 365;

async fn user(pool: &PgPool) -> UserId {
    UserId::parse(testkit::orders::buyer(pool).await).expect("id")
}

fn terms(source: LotSource, days: i64) -> LotTerms {
    LotTerms { source, validity: Validity::days(days).expect("validity") }
}

fn points(amount: i64) -> PointAmount {
    PointAmount::parse(amount).expect("amount")
}

async fn earn(pool: &PgPool, user: UserId, amount: i64, terms: LotTerms) -> i64 {
    let mut tx = pool.begin().await.expect("tx");
    let entry = ledger::earn(&mut tx, user, points(amount), terms, None, None).await.expect("earn").expect("earned");
    tx.commit().await.expect("commit");
    entry.point_id
}

async fn spend(pool: &PgPool, user: UserId, amount: i64) -> Result<Entry, Refusal> {
    let mut tx = pool.begin().await.expect("tx");
    let result = ledger::spend(&mut tx, user, points(amount), None, None).await.expect("spend");
    tx.commit().await.expect("commit");
    result
}

async fn cancel(pool: &PgPool, point_id: i64) -> Result<Entry, Refusal> {
    let admin = Actor { user: UserId::parse(1).expect("id"), is_admin: true };
    let regrant = Validity::days(DEFAULT).expect("validity");
    let mut tx = pool.begin().await.expect("tx");
    let result = ledger::cancel(&mut tx, point_id, admin, regrant, None).await.expect("cancel");
    tx.commit().await.expect("commit");
    result
}

/// (source, amount, remaining) of the lot the entry `point_id` made.
async fn lot_of(pool: &PgPool, point_id: i64) -> (String, i64, i64) {
    sqlx::query_as("SELECT source, amount, remaining FROM point_lots WHERE point_id = $1")
        .bind(point_id)
        .fetch_one(pool)
        .await
        .expect("lot")
}

/// (the earn that made the lot, amount) of each part the use took, in the order taken.
async fn parts_of(pool: &PgPool, use_point_id: i64) -> Vec<(i64, i64)> {
    sqlx::query_as(
        "SELECT l.point_id, a.amount FROM point_allocations a JOIN point_lots l ON l.user_id = a.user_id AND l.id = a.lot_id \
         WHERE a.use_point_id = $1 ORDER BY (l.source <> 'ADMIN'), l.expires_at, l.id",
    )
    .bind(use_point_id)
    .fetch_all(pool)
    .await
    .expect("allocations")
}

/// The balance, and the sum of the lots' remaining amounts: the two must agree.
async fn balance_and_lots(pool: &PgPool, user: UserId) -> (i64, i64) {
    sqlx::query_as(
        "SELECT coalesce((SELECT balance FROM point_balances WHERE user_id = $1), 0), \
                coalesce((SELECT sum(remaining) FROM point_lots WHERE user_id = $1), 0)::bigint",
    )
    .bind(user.get())
    .fetch_one(pool)
    .await
    .expect("balance")
}

async fn expire_now(pool: &PgPool, point_id: i64) {
    sqlx::query("UPDATE point_lots SET expires_at = now() - interval '1 second' WHERE point_id = $1")
        .bind(point_id)
        .execute(pool)
        .await
        .expect("expiring the lot");
}

#[tokio::test]
async fn a_use_takes_admin_grants_first_then_the_soonest_expiry_and_records_each_part() {
    let env = TestEnv::new().await;
    let buyer = user(&env.pool).await;
    let later = earn(&env.pool, buyer, 1_000, terms(LotSource::Purchase, 30)).await;
    let sooner = earn(&env.pool, buyer, 1_000, terms(LotSource::Purchase, 10)).await;
    let granted = earn(&env.pool, buyer, 1_000, terms(LotSource::Admin, DEFAULT)).await;

    let used = spend(&env.pool, buyer, 2_500).await.expect("covered");
    assert_eq!(parts_of(&env.pool, used.point_id).await, [(granted, 1_000), (sooner, 1_000), (later, 500)]);
    assert_eq!(lot_of(&env.pool, granted).await, ("ADMIN".to_owned(), 1_000, 0));
    assert_eq!(lot_of(&env.pool, sooner).await, ("PURCHASE".to_owned(), 1_000, 0));
    assert_eq!(lot_of(&env.pool, later).await, ("PURCHASE".to_owned(), 1_000, 500));
    assert_eq!(balance_and_lots(&env.pool, buyer).await, (500, 500));
}

#[tokio::test]
async fn a_cancelled_use_goes_back_into_its_lots_and_regrants_what_expired_meanwhile() {
    let env = TestEnv::new().await;
    let buyer = user(&env.pool).await;
    let granted = earn(&env.pool, buyer, 1_000, terms(LotSource::Admin, DEFAULT)).await;
    let bought = earn(&env.pool, buyer, 1_000, terms(LotSource::Purchase, DEFAULT)).await;
    let used = spend(&env.pool, buyer, 1_500).await.expect("covered");
    expire_now(&env.pool, granted).await;

    let cancelled = cancel(&env.pool, used.point_id).await.expect("cancelled");
    assert_eq!(cancelled.amount, 1_500);
    assert_eq!(lot_of(&env.pool, bought).await.2, 1_000, "the live lot's part went back into it");
    assert_eq!(lot_of(&env.pool, granted).await.2, 0, "an expired lot is not refilled");
    let (source, amount, remaining) = lot_of(&env.pool, cancelled.point_id).await;
    assert_eq!((source.as_str(), amount, remaining), ("REGRANT", 1_000, 1_000));
    let valid_for: i64 = sqlx::query_scalar(
        "SELECT extract(day FROM expires_at - created_at)::bigint FROM point_lots WHERE point_id = $1",
    )
    .bind(cancelled.point_id)
    .fetch_one(&env.pool)
    .await
    .expect("validity");
    assert_eq!(valid_for, DEFAULT, "a regrant has the default validity");
    assert_eq!(balance_and_lots(&env.pool, buyer).await, (2_000, 2_000));
}

#[tokio::test]
async fn an_expired_lot_is_never_spent_and_a_refused_use_writes_nothing() {
    let env = TestEnv::new().await;
    let buyer = user(&env.pool).await;
    let granted = earn(&env.pool, buyer, 1_000, terms(LotSource::Admin, DEFAULT)).await;
    expire_now(&env.pool, granted).await;

    assert_eq!(spend(&env.pool, buyer, 100).await, Err(Refusal::InsufficientBalance { balance: 0 }));
    assert_eq!(lot_of(&env.pool, granted).await.2, 1_000);
    let uses: i64 = sqlx::query_scalar("SELECT count(*) FROM points WHERE user_id = $1 AND kind = 'USE'")
        .bind(buyer.get())
        .fetch_one(&env.pool)
        .await
        .expect("uses");
    assert_eq!(uses, 0);
    assert_eq!(balance_and_lots(&env.pool, buyer).await, (1_000, 1_000), "it counts until the expiry job takes it");
}

#[tokio::test]
async fn only_an_untouched_earn_is_cancelled_and_its_lot_closes() {
    let env = TestEnv::new().await;
    let buyer = user(&env.pool).await;
    let partly_spent = earn(&env.pool, buyer, 300, terms(LotSource::Purchase, DEFAULT)).await;
    let all_spent = earn(&env.pool, buyer, 700, terms(LotSource::Admin, DEFAULT)).await;
    spend(&env.pool, buyer, 750).await.expect("covered");

    assert_eq!(cancel(&env.pool, partly_spent).await, Err(Refusal::EarnTouched));
    assert_eq!(cancel(&env.pool, all_spent).await, Err(Refusal::EarnTouched));
    assert_eq!(lot_of(&env.pool, partly_spent).await.2, 250, "a refused cancel changes nothing");
    // A fresh earn nobody spent from can be taken back whole.
    let fresh = earn(&env.pool, buyer, 400, terms(LotSource::Admin, DEFAULT)).await;
    assert_eq!(cancel(&env.pool, fresh).await.expect("cancelled").amount, -400);
    assert_eq!(lot_of(&env.pool, fresh).await.2, 0);
    assert_eq!(balance_and_lots(&env.pool, buyer).await, (250, 250));
}

#[tokio::test]
async fn racing_uses_of_one_user_never_take_more_than_the_lots_hold() {
    let env = TestEnv::new().await;
    let buyer = user(&env.pool).await;
    for (source, days) in [(LotSource::Purchase, 20), (LotSource::Admin, DEFAULT), (LotSource::Purchase, 5)] {
        earn(&env.pool, buyer, 350, terms(source, days)).await;
    }
    let racers: Vec<_> = (0..24)
        .map(|_| {
            let pool = env.pool.clone();
            tokio::spawn(async move { spend(&pool, buyer, 100).await })
        })
        .collect();
    let mut covered = 0;
    for racer in racers {
        covered += usize::from(racer.await.expect("racer").is_ok());
    }
    assert_eq!(covered, 10, "1,050 points cover ten uses of 100");
    let allocated: i64 = sqlx::query_scalar("SELECT sum(amount)::bigint FROM point_allocations WHERE user_id = $1")
        .bind(buyer.get())
        .fetch_one(&env.pool)
        .await
        .expect("allocated");
    assert_eq!(allocated, 1_000);
    assert_eq!(balance_and_lots(&env.pool, buyer).await, (50, 50));
}

/// The backfill in the lots migration, run again over a ledger written before lots (the lots the earns
/// made are removed first): each live earn becomes a lot valid a year from its earn, and what was spent
/// is taken in the spending order (all ADMIN here, so the oldest first).
#[tokio::test]
async fn the_backfill_turns_an_existing_ledger_into_lots_that_add_up_to_each_balance() {
    let env = TestEnv::new().await;
    let (a, b) = (user(&env.pool).await, user(&env.pool).await);
    let oldest = earn(&env.pool, a, 1_000, terms(LotSource::Admin, DEFAULT)).await;
    let newer = earn(&env.pool, a, 500, terms(LotSource::Admin, DEFAULT)).await;
    spend(&env.pool, a, 800).await.expect("covered");
    let kept = earn(&env.pool, b, 200, terms(LotSource::Admin, DEFAULT)).await;
    let taken_back = earn(&env.pool, b, 900, terms(LotSource::Admin, DEFAULT)).await;
    cancel(&env.pool, taken_back).await.expect("untouched");
    sqlx::query("TRUNCATE point_lots, point_allocations").execute(&env.pool).await.expect("truncate");

    let migration = include_str!("../../../migrations/20261207000018_point_lots.sql");
    let backfill = &migration[migration.find("WITH live_earns").expect("the backfill statement")..];
    sqlx::raw_sql(backfill).execute(&env.pool).await.expect("backfill");

    assert_eq!(lot_of(&env.pool, oldest).await, ("ADMIN".to_owned(), 1_000, 200));
    assert_eq!(lot_of(&env.pool, newer).await, ("ADMIN".to_owned(), 500, 500));
    assert_eq!(lot_of(&env.pool, kept).await, ("ADMIN".to_owned(), 200, 200));
    let lots_of_cancelled: i64 = sqlx::query_scalar("SELECT count(*) FROM point_lots WHERE point_id = $1")
        .bind(taken_back)
        .fetch_one(&env.pool)
        .await
        .expect("count");
    assert_eq!(lots_of_cancelled, 0, "a cancelled earn makes no lot");
    for user in [a, b] {
        let (balance, lots) = balance_and_lots(&env.pool, user).await;
        assert_eq!(balance, lots, "user {user}");
    }
}

/// One expiry pass as the job makes it: every partition, chunk by chunk, lots due by `cutoff`.
async fn expire_due(pool: &PgPool, cutoff: chrono::DateTime<chrono::Utc>) -> usize {
    let mut expired = 0;
    for partition in 0..16 {
        let mut after = 0;
        loop {
            let mut tx = pool.begin().await.expect("tx");
            let users = expiry::lock_due_users(&mut tx, partition, after, cutoff, 100).await.expect("lock");
            let Some(&last) = users.last() else { break };
            expired += expiry::expire_locked(&mut tx, &users, cutoff, "test", None).await.expect("expire").len();
            tx.commit().await.expect("commit");
            after = last;
        }
    }
    expired
}

/// Jepsen-style: a thousand uses and cancels of one user race expiry passes while ten of the user's
/// lots end mid-race. Whatever interleaving happened, the books must agree and no lot may have been
/// spent after it ended.
#[tokio::test]
async fn racing_uses_cancels_and_expiry_passes_on_one_user_keep_balance_ledger_and_lots_equal() {
    let env = TestEnv::new().await;
    let buyer = user(&env.pool).await;
    for lot in 0..30 {
        let source = if lot % 5 == 0 { LotSource::Admin } else { LotSource::Purchase };
        earn(&env.pool, buyer, 1_000, terms(source, DEFAULT)).await;
    }
    sqlx::query(
        "UPDATE point_lots SET expires_at = now() + interval '300 milliseconds' + (id % 10) * interval '100 milliseconds'
         WHERE user_id = $1 AND id % 3 = 0",
    )
    .bind(buyer.get())
    .execute(&env.pool)
    .await
    .expect("ten lots end during the race");
    let uses = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let racers: Vec<_> = (0..8u64)
        .map(|racer| {
            let (pool, uses) = (env.pool.clone(), uses.clone());
            tokio::spawn(async move {
                let (mut state, mut done) = (racer * 7_919 + 13, (0, 0));
                for op in 0..125 {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    let cancellable = if op % 4 == 3 { uses.lock().expect("uses").pop() } else { None };
                    match cancellable {
                        Some(use_id) => done.1 += usize::from(cancel(&pool, use_id).await.is_ok()),
                        None => {
                            if let Ok(used) = spend(&pool, buyer, 1 + (state >> 33) as i64 % 400).await {
                                uses.lock().expect("uses").push(used.point_id);
                                done.0 += 1;
                            }
                        }
                    }
                }
                done
            })
        })
        .collect();
    let expiring = {
        let pool = env.pool.clone();
        let racing = racers.iter().map(|racer| racer.abort_handle()).collect::<Vec<_>>();
        tokio::spawn(async move {
            let mut passes = 0;
            while racing.iter().any(|racer| !racer.is_finished()) {
                expire_due(&pool, chrono::Utc::now()).await;
                passes += 1;
            }
            passes
        })
    };
    let (mut spent, mut cancelled) = (0, 0);
    for racer in racers {
        let (s, c) = racer.await.expect("racer");
        (spent, cancelled) = (spent + s, cancelled + c);
    }
    assert!(expiring.await.expect("expiry passes") > 0);
    // The pass the job makes after the race: whatever ended since the last one.
    let end = chrono::Utc::now();
    expire_due(&env.pool, end).await;

    assert!(spent > 100 && cancelled > 10, "the race did happen: {spent} uses, {cancelled} cancels");
    let expired: i64 = sqlx::query_scalar("SELECT count(*) FROM points WHERE user_id = $1 AND kind = 'EXPIRE'")
        .bind(buyer.get())
        .fetch_one(&env.pool)
        .await
        .expect("expiries");
    assert!(expired > 0, "the ending lots expired with something left");
    let (balance, lots) = balance_and_lots(&env.pool, buyer).await;
    let ledger: i64 = sqlx::query_scalar("SELECT sum(amount)::bigint FROM points WHERE user_id = $1")
        .bind(buyer.get())
        .fetch_one(&env.pool)
        .await
        .expect("ledger");
    assert!(balance >= 0 && balance == ledger && balance == lots, "balance {balance}, ledger {ledger}, lots {lots}");
    let spent_after_the_end: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM point_allocations a
         JOIN point_lots l ON l.user_id = a.user_id AND l.id = a.lot_id
         JOIN points u ON u.user_id = a.user_id AND u.id = a.use_point_id
         WHERE a.user_id = $1 AND u.created_at >= l.expires_at",
    )
    .bind(buyer.get())
    .fetch_one(&env.pool)
    .await
    .expect("allocations");
    assert_eq!(spent_after_the_end, 0, "a use that began after a lot ended took from it");
    let due_left: i64 = sqlx::query_scalar("SELECT count(*) FROM point_lots WHERE remaining > 0 AND expires_at <= $1")
        .bind(end)
        .fetch_one(&env.pool)
        .await
        .expect("lots");
    assert_eq!(due_left, 0);
}

#[tokio::test]
async fn a_use_across_five_lots_is_cancelled_back_into_the_same_lots_part_by_part() {
    let env = TestEnv::new().await;
    let buyer = user(&env.pool).await;
    let mut earns = Vec::new();
    for days in [50, 10, 40, 20, 30] {
        earns.push(earn(&env.pool, buyer, 100, terms(LotSource::Purchase, days)).await);
    }
    let kept = earn(&env.pool, buyer, 100, terms(LotSource::Purchase, 60)).await;
    let used = spend(&env.pool, buyer, 450).await.expect("covered");
    // Soonest expiry first: 10, 20, 30 and 40 days whole, 50 of the 50-day lot; the 60-day one untouched.
    let expected = [(earns[1], 100), (earns[3], 100), (earns[4], 100), (earns[2], 100), (earns[0], 50)];
    assert_eq!(parts_of(&env.pool, used.point_id).await, expected);
    assert_eq!(lot_of(&env.pool, kept).await.2, 100);

    let cancelled = cancel(&env.pool, used.point_id).await.expect("cancelled");
    assert_eq!(cancelled.amount, 450);
    for earn in &earns {
        assert_eq!(lot_of(&env.pool, *earn).await.2, 100, "every part went back into the lot it came from");
    }
    let regrants: i64 = sqlx::query_scalar("SELECT count(*) FROM point_lots WHERE user_id = $1 AND source = 'REGRANT'")
        .bind(buyer.get())
        .fetch_one(&env.pool)
        .await
        .expect("regrants");
    assert_eq!(regrants, 0, "nothing had expired: nothing is regranted");
    assert_eq!(balance_and_lots(&env.pool, buyer).await, (600, 600));
}

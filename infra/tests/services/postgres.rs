use sqlx::PgPool;
use testkit::TestEnv;

/// The name of the constraint that rejected `result`, failing the test if nothing did.
fn violated<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> String {
    let error = result.expect_err("the database must reject this write");
    let database_error = error.as_database_error().unwrap_or_else(|| panic!("not a database error: {error}"));
    database_error.constraint().unwrap_or_else(|| panic!("no constraint named in {database_error}")).to_owned()
}

async fn user(pool: &PgPool, email: &str) -> i64 {
    sqlx::query_scalar("INSERT INTO users (email, password_hash, name) VALUES ($1, 'x', 'T') RETURNING id")
        .bind(email)
        .fetch_one(pool)
        .await
        .expect("user")
}

async fn policy(pool: &PgPool, quantity: i32) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO coupon_policies (name, discount_type, discount_value, total_quantity, issue_starts_at, \
         issue_ends_at, coupon_valid_days) VALUES ('p', 'FIXED_AMOUNT', 1000, $1, now(), now() + interval '1 day', 7) \
         RETURNING id",
    )
    .bind(quantity)
    .fetch_one(pool)
    .await
    .expect("policy")
}

async fn users(pool: &PgPool, count: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        ids.push(user(pool, &format!("u{n}@x.io")).await);
    }
    ids
}

fn policy_id(id: i64) -> domain::PolicyId {
    domain::PolicyId::parse(id).expect("a positive policy id")
}

/// A V3 issue request as the API produces it.
fn issue_request(policy: i64, user: i64) -> domain::coupon::IssueRequested {
    domain::coupon::IssueRequested {
        request_id: uuid::Uuid::new_v4(),
        policy_id: domain::PolicyId::parse(policy).expect("id"),
        user_id: domain::UserId::parse(user).expect("id"),
        requested_at: chrono::Utc::now(),
    }
}

/// Waits (polling, no sleep as synchronisation) until a session of this database waits for a lock.
async fn await_lock_wait(pool: &PgPool, failure: &str) {
    let waiting = testkit::process::eventually(std::time::Duration::from_secs(10), || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .expect("activity");
        waiting > 0
    })
    .await;
    assert!(waiting, "{failure}");
}

async fn issue(pool: &PgPool, policy: i64, users: &[i64]) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO coupons (policy_id, user_id, valid_until) SELECT $1, u, now() + interval '7 days' FROM unnest($2::bigint[]) u",
    )
    .bind(policy)
    .bind(users)
    .execute(pool)
    .await
    .map(|done| done.rows_affected())
}

async fn issued(pool: &PgPool, policy: i64) -> i32 {
    sqlx::query_scalar("SELECT issued_quantity FROM coupon_policies WHERE id = $1")
        .bind(policy)
        .fetch_one(pool)
        .await
        .expect("policy")
}

#[tokio::test]
async fn every_migration_is_applied() {
    let env = TestEnv::new().await;
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&env.pool)
        .await
        .expect("count");
    assert_eq!(applied as usize, infra::db::MIGRATOR.iter().count());
    infra::db::migrate(&env.pool).await.expect("re-running migrations is a no-op");
}

#[tokio::test]
async fn a_user_never_gets_the_same_policy_twice() {
    let env = TestEnv::new().await;
    let (alice, policy) = (user(&env.pool, "a@x.io").await, policy(&env.pool, 10).await);
    issue(&env.pool, policy, &[alice]).await.expect("first coupon");
    assert_eq!(violated(issue(&env.pool, policy, &[alice]).await), "coupons_policy_user_key");
    assert_eq!(issued(&env.pool, policy).await, 1);
}

#[tokio::test]
async fn a_policy_never_issues_more_than_its_quantity_one_by_one_or_in_bulk() {
    let env = TestEnv::new().await;
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(user(&env.pool, &format!("u{i}@x.io")).await);
    }
    let policy = policy(&env.pool, 2).await;
    assert_eq!(violated(issue(&env.pool, policy, &users[..3]).await), "coupon_policies_issued_within_quantity");
    assert_eq!(issued(&env.pool, policy).await, 0, "a rejected bulk insert issues nothing");

    issue(&env.pool, policy, &users[..1]).await.expect("first");
    issue(&env.pool, policy, &users[1..2]).await.expect("second");
    assert_eq!(violated(issue(&env.pool, policy, &users[2..3]).await), "coupon_policies_issued_within_quantity");
    let coupons: i64 = sqlx::query_scalar("SELECT count(*) FROM coupons WHERE policy_id = $1")
        .bind(policy)
        .fetch_one(&env.pool)
        .await
        .expect("count");
    assert_eq!((coupons, issued(&env.pool, policy).await), (2, 2));
}

#[tokio::test]
async fn a_point_balance_never_goes_below_zero() {
    let env = TestEnv::new().await;
    let alice = user(&env.pool, "a@x.io").await;
    sqlx::query("INSERT INTO point_balances (user_id, balance) VALUES ($1, 100)")
        .bind(alice)
        .execute(&env.pool)
        .await
        .expect("balance");
    let overspend = sqlx::query("UPDATE point_balances SET balance = balance - 101 WHERE user_id = $1")
        .bind(alice)
        .execute(&env.pool)
        .await;
    assert_eq!(violated(overspend), "point_balances_not_negative");
}

#[tokio::test]
async fn a_ledger_entry_is_cancelled_at_most_once_and_amounts_carry_their_sign() {
    let env = TestEnv::new().await;
    let earn: i64 =
        sqlx::query_scalar("INSERT INTO points (user_id, kind, amount) VALUES (1, 'EARN', 500) RETURNING id")
            .fetch_one(&env.pool)
            .await
            .expect("earn");
    let cancel = "INSERT INTO points (user_id, kind, amount, cancels_point_id) VALUES (1, 'CANCEL', -500, $1)";
    sqlx::query(cancel).bind(earn).execute(&env.pool).await.expect("first cancel");
    let twice = sqlx::query(cancel).bind(earn).execute(&env.pool).await.expect_err("a second cancel must fail");
    let twice = twice.as_database_error().expect("a database error");
    // A partitioned table reports the partition's own index, e.g. points_p8_user_id_cancels_point_id_key.
    assert_eq!(twice.code().as_deref(), Some("23505"));
    assert!(twice.constraint().is_some_and(|name| name.ends_with("user_id_cancels_point_id_key")), "{twice}");
    let negative_earn =
        sqlx::query("INSERT INTO points (user_id, kind, amount) VALUES (1, 'EARN', -5)").execute(&env.pool).await;
    assert_eq!(violated(negative_earn), "points_amount_sign");
}

#[tokio::test]
async fn idempotency_keys_and_scheduler_slots_are_unique() {
    let env = TestEnv::new().await;
    let key = "INSERT INTO idempotency_keys (user_id, idempotency_key, request_hash) VALUES (1, 'k-1', 'h')";
    sqlx::query(key).execute(&env.pool).await.expect("first key");
    assert_eq!(violated(sqlx::query(key).execute(&env.pool).await), "idempotency_keys_pkey");

    let firing = "INSERT INTO scheduler_firings (entry_name, slot_time, leader, status) VALUES ('daily', '2026-01-01T00:00:00Z', $1, 'RUNNING')";
    sqlx::query(firing).bind("a").execute(&env.pool).await.expect("first firing");
    assert_eq!(violated(sqlx::query(firing).bind("b").execute(&env.pool).await), "scheduler_firings_slot_key");
}

#[tokio::test]
async fn the_issuers_policy_lock_does_not_wait_for_another_issuers_key_share() {
    let env = TestEnv::new().await;
    let (alice, policy) = (user(&env.pool, "a@x.io").await, policy(&env.pool, 10).await);
    // Another worker's transaction: its request row's foreign key holds KEY SHARE on the policy row.
    let mut other = env.pool.begin().await.expect("begin");
    sqlx::query("INSERT INTO coupon_issue_requests (id, policy_id, user_id, status) VALUES ($1, $2, $3, 'PENDING')")
        .bind(uuid::Uuid::new_v4())
        .bind(policy)
        .bind(alice)
        .execute(&mut *other)
        .await
        .expect("request row");

    let mut issuer = env.pool.begin().await.expect("begin");
    sqlx::query("SET LOCAL lock_timeout = '2s'").execute(&mut *issuer).await.expect("lock timeout");
    let locked = infra::coupons::repo::lock_policy_for_issue(&mut issuer, policy_id(policy)).await;
    assert!(locked.is_ok(), "the policy lock waited on KEY SHARE (two workers would deadlock): {locked:?}");
    issuer.rollback().await.expect("rollback");
    other.rollback().await.expect("rollback");
}

#[tokio::test]
async fn the_issuance_step_issues_first_come_records_every_verdict_once_and_sets_aside_unknown_requests() {
    use infra::coupons::issuance::persist_batch;
    let env = TestEnv::new().await;
    let policy_id = policy(&env.pool, 2).await;
    let users = users(&env.pool, 3).await;
    let batch = vec![
        issue_request(policy_id, users[0]),
        issue_request(policy_id, users[0]),
        issue_request(policy_id, users[1]),
        issue_request(policy_id, users[2]),
        issue_request(policy_id, 999_999),      // no such user
        issue_request(policy_id + 1, users[2]), // no such policy
    ];
    let first = persist_batch(&env.pool, &batch).await.expect("first delivery");
    let codes: Vec<&str> =
        first.verdicts.iter().map(|v| v.outcome.map_or_else(|rejection| rejection.code(), |()| "ISSUED")).collect();
    assert_eq!(codes, ["ISSUED", "ALREADY_ISSUED", "ISSUED", "SOLD_OUT"]);
    let holds: Vec<bool> = first.verdicts.iter().map(|v| v.holds_coupon).collect();
    assert_eq!(holds, [true, true, true, false], "only the sold-out user's reservation is returned");
    let unknown: Vec<_> = first.unknown.iter().map(|(_, reason)| reason.code()).collect();
    assert_eq!(unknown, ["USER_NOT_FOUND", "POLICY_NOT_FOUND"]);
    assert!(first.redelivered.is_empty() && first.raced.is_empty());
    let settlements = first.settlements();
    assert_eq!(settlements.iter().filter(|s| !s.keep).count(), 3, "sold out and both unknown return their place");

    let again = persist_batch(&env.pool, &batch).await.expect("redelivery");
    assert!(again.verdicts.is_empty(), "a redelivered request was decided again");
    let redelivered: Vec<bool> = again.redelivered.iter().map(|r| r.holds_coupon).collect();
    assert_eq!(redelivered, [true, true, true, false], "a redelivery settles Redis as the first delivery did");
    let (coupons, issued, requests): (i64, i32, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM coupons), (SELECT issued_quantity FROM coupon_policies WHERE id = $1), \
                (SELECT count(*) FROM coupon_issue_requests WHERE resolved_at IS NOT NULL)",
    )
    .bind(policy_id)
    .fetch_one(&env.pool)
    .await
    .expect("counts");
    assert_eq!((coupons, issued, requests), (2, 2, 4));
}

#[tokio::test]
async fn an_issuer_that_decided_from_a_stale_read_decides_again_under_the_policy_lock() {
    use infra::coupons::{issuance::persist_batch, repo::lock_policy_for_issue};
    let env = TestEnv::new().await;
    let policy_id = policy(&env.pool, 30).await;
    let users = users(&env.pool, 40).await;
    // Another issuer holds the policy row; it will take 20 of the 30 coupons.
    let mut other = env.pool.begin().await.expect("begin");
    lock_policy_for_issue(&mut other, self::policy_id(policy_id)).await.expect("lock");

    // The batch reads 30 remaining without the lock, decides to issue to all 20, and waits at its count update.
    let batch: Vec<_> = users[20..].iter().map(|&user| issue_request(policy_id, user)).collect();
    let pool = env.pool.clone();
    let persisting = tokio::spawn(async move { persist_batch(&pool, &batch).await });
    await_lock_wait(&env.pool, "the batch never reached the policy row").await;
    sqlx::query(
        "INSERT INTO coupons (policy_id, user_id, valid_until) SELECT $1, u, now() FROM unnest($2::bigint[]) u",
    )
    .bind(policy_id)
    .bind(&users[..20])
    .execute(&mut *other)
    .await
    .expect("the other issuer's coupons");
    other.commit().await.expect("commit");

    let outcome = persisting.await.expect("join").expect("a lost race is decided again, not an error");
    let issued_now = outcome.verdicts.iter().filter(|v| v.outcome.is_ok()).count();
    let sold_out =
        outcome.verdicts.iter().filter(|v| v.outcome == Err(domain::coupon::IssueRejection::SoldOut)).count();
    assert_eq!((issued_now, sold_out), (10, 10));
    let coupons: i64 = sqlx::query_scalar("SELECT count(*) FROM coupons WHERE policy_id = $1")
        .bind(policy_id)
        .fetch_one(&env.pool)
        .await
        .expect("count");
    assert_eq!((coupons, issued(&env.pool, policy_id).await), (30, 30));
}

#[tokio::test]
async fn an_issuer_that_missed_a_coupon_given_meanwhile_decides_again_and_gives_none_twice() {
    use domain::coupon::IssueRejection;
    use infra::coupons::{issuance::persist_batch, repo::lock_policy_for_issue};
    let env = TestEnv::new().await;
    let policy_id = policy(&env.pool, 30).await;
    let users = users(&env.pool, 20).await;
    // Another issuer, not yet committed, gives one of the batch's users a coupon.
    let mut other = env.pool.begin().await.expect("begin");
    lock_policy_for_issue(&mut other, self::policy_id(policy_id)).await.expect("lock");
    sqlx::query("INSERT INTO coupons (policy_id, user_id, valid_until) VALUES ($1, $2, now())")
        .bind(policy_id)
        .bind(users[0])
        .execute(&mut *other)
        .await
        .expect("the other issuer's coupon");

    // The batch does not see that coupon, decides to issue to all 20, and waits on the user's key.
    let batch: Vec<_> = users.iter().map(|&user| issue_request(policy_id, user)).collect();
    let pool = env.pool.clone();
    let persisting = tokio::spawn(async move { persist_batch(&pool, &batch).await });
    await_lock_wait(&env.pool, "the batch never reached the coupon the other issuer holds").await;
    other.commit().await.expect("commit");

    let outcome = persisting.await.expect("join").expect("a lost race is decided again, not an error");
    let verdict_of_first_user =
        outcome.verdicts.iter().find(|v| v.request.user_id.get() == users[0]).map(|v| v.outcome);
    assert_eq!(verdict_of_first_user, Some(Err(IssueRejection::AlreadyIssued)));
    assert_eq!(outcome.verdicts.iter().filter(|v| v.outcome.is_ok()).count(), 19);
    let (coupons, holders): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT user_id) FROM coupons WHERE policy_id = $1")
            .bind(policy_id)
            .fetch_one(&env.pool)
            .await
            .expect("count");
    assert_eq!((coupons, holders, issued(&env.pool, policy_id).await), (20, 20, 20));
}

/// An order's attempts are looked up by order id on every read of the order and in the expiry's
/// anti-join: without an index each look-up read the whole table (24 ms at 200,000 attempts, growing).
/// With sequential scans priced out, a plan that still scans `payment_attempts` has no index to use.
#[tokio::test]
async fn an_orders_payment_attempts_are_found_through_an_index() {
    let env = TestEnv::new().await;
    let mut connection = env.pool.acquire().await.expect("connection");
    sqlx::query("SET enable_seqscan = off").execute(&mut *connection).await.expect("set");
    let look_ups = [
        "SELECT id FROM payment_attempts WHERE order_id = 7 ORDER BY (status = 'APPROVED') DESC, id DESC LIMIT 1",
        "SELECT id FROM payment_attempts WHERE order_id = 7 AND deposit_secret IS NOT NULL ORDER BY id DESC LIMIT 1",
        "SELECT o.id FROM orders o WHERE o.id = ANY('{1,2,3}') \
         AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.order_id = o.id)",
    ];
    for look_up in look_ups {
        let plan: Vec<String> =
            sqlx::query_scalar(&format!("EXPLAIN {look_up}")).fetch_all(&mut *connection).await.expect("plan");
        let plan = plan.join("\n");
        assert!(!plan.contains("Seq Scan on payment_attempts"), "{look_up}\n{plan}");
    }
}

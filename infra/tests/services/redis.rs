use infra::redis_client::Redis;
use redis::AsyncCommands;
use testkit::TestEnv;

#[tokio::test]
async fn values_round_trip_under_the_test_prefix() {
    let env = TestEnv::new().await;
    let redis = Redis::connect(&env.redis).await.expect("connecting");
    redis.ping().await.expect("PING");
    let key = redis.key("greeting");
    assert!(key.starts_with(&env.redis.key_prefix));

    let mut connection = redis.connection();
    let _: () = connection.set(&key, "hello").await.expect("SET");
    let read: Option<String> = connection.get(&key).await.expect("GET");
    assert_eq!(read.as_deref(), Some("hello"));
}

#[tokio::test]
async fn a_lua_script_runs_atomically_on_the_server() {
    let env = TestEnv::new().await;
    let redis = Redis::connect(&env.redis).await.expect("connecting");
    // Decrement only while positive: the shape of every stock counter the platform keeps.
    let script = redis::Script::new(
        "local v = tonumber(redis.call('GET', KEYS[1]) or '0') if v > 0 then return redis.call('DECR', KEYS[1]) end return -1",
    );
    let key = redis.key("stock");
    let mut connection = redis.connection();
    let _: () = connection.set(&key, 2).await.expect("SET");
    let mut results = Vec::new();
    for _ in 0..3 {
        let result: i64 = script.key(&key).invoke_async(&mut connection).await.expect("EVALSHA");
        results.push(result);
    }
    assert_eq!(results, vec![1, 0, -1]);
}

mod coupon_stock {
    use chrono::{Duration, Utc};
    use domain::{
        coupon::{decide_issue, IssueContext, IssueRejection},
        PolicyId, UserId,
    };
    use infra::{
        coupons::{CouponStock, Reservation, Settlement},
        redis_client::Redis,
    };
    use redis::AsyncCommands;
    use sqlx::PgPool;
    use testkit::TestEnv;

    async fn users(pool: &PgPool, count: i32) -> Vec<i64> {
        sqlx::query_scalar(
            "INSERT INTO users (email, password_hash, name) \
             SELECT gen_random_uuid() || '@stock.test', 'x', 'Stock' FROM generate_series(1, $1) g RETURNING id",
        )
        .bind(count)
        .fetch_all(pool)
        .await
        .expect("users")
    }

    /// A policy of `quantity` whose window starts `starts_in_minutes` from now and lasts an hour, with
    /// coupons already issued to `holders`.
    async fn policy(pool: &PgPool, quantity: i32, starts_in_minutes: i64, holders: &[i64]) -> PolicyId {
        let starts = Utc::now() + Duration::minutes(starts_in_minutes);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO coupon_policies (name, discount_type, discount_value, total_quantity, issue_starts_at, \
             issue_ends_at, coupon_valid_days) VALUES ('p', 'FIXED_AMOUNT', 1000, $1, $2, $3, 7) RETURNING id",
        )
        .bind(quantity)
        .bind(starts)
        .bind(starts + Duration::hours(1))
        .fetch_one(pool)
        .await
        .expect("policy");
        sqlx::query(
            "INSERT INTO coupons (policy_id, user_id, valid_until) SELECT $1, u, now() + interval '7 days' \
             FROM unnest($2::bigint[]) u",
        )
        .bind(id)
        .bind(holders)
        .execute(pool)
        .await
        .expect("coupons");
        PolicyId::parse(id).expect("id")
    }

    /// One table of cases for the first-come rule, run through `decide_issue` and through the reservation
    /// script on real Redis (state rebuilt from the database, as after any loss): they must agree.
    #[tokio::test]
    async fn the_reservation_script_agrees_with_the_domain_rule_on_every_case() {
        struct Case {
            name: &'static str,
            quantity: i32,
            other_holders: usize,
            user_holds: bool,
            starts_in_minutes: i64,
            expected: Result<(), IssueRejection>,
        }
        let cases = [
            Case {
                name: "stock left",
                quantity: 3,
                other_holders: 1,
                user_holds: false,
                starts_in_minutes: -1,
                expected: Ok(()),
            },
            Case {
                name: "sold out",
                quantity: 2,
                other_holders: 2,
                user_holds: false,
                starts_in_minutes: -1,
                expected: Err(IssueRejection::SoldOut),
            },
            Case {
                name: "holder, sold out",
                quantity: 2,
                other_holders: 1,
                user_holds: true,
                starts_in_minutes: -1,
                expected: Err(IssueRejection::AlreadyIssued),
            },
            Case {
                name: "holder, stock left",
                quantity: 3,
                other_holders: 0,
                user_holds: true,
                starts_in_minutes: -1,
                expected: Err(IssueRejection::AlreadyIssued),
            },
            Case {
                name: "before the window",
                quantity: 3,
                other_holders: 0,
                user_holds: false,
                starts_in_minutes: 5,
                expected: Err(IssueRejection::OutsideIssueWindow),
            },
            Case {
                name: "after the window, holder",
                quantity: 3,
                other_holders: 0,
                user_holds: true,
                starts_in_minutes: -120,
                expected: Err(IssueRejection::OutsideIssueWindow),
            },
        ];
        let env = TestEnv::new().await;
        let stock = CouponStock::new(Redis::connect(&env.redis).await.expect("redis"));
        for case in cases {
            let people = users(&env.pool, case.other_holders as i32 + 1).await;
            let (user, others) = (people[0], &people[1..]);
            let mut holders = others.to_vec();
            if case.user_holds {
                holders.push(user);
            }
            let id = policy(&env.pool, case.quantity, case.starts_in_minutes, &holders).await;

            let now = Utc::now();
            let starts = now + Duration::minutes(case.starts_in_minutes);
            let context = IssueContext {
                starts_at: starts,
                ends_at: starts + Duration::hours(1),
                total_quantity: i64::from(case.quantity),
                issued: holders.len() as i64,
                already_issued_to_user: case.user_holds,
            };
            assert_eq!(decide_issue(&context, now), case.expected, "domain rule, case {:?}", case.name);
            let reserved = stock.reserve(&env.pool, id, UserId::parse(user).expect("id"), None).await.expect("reserve");
            let through_lua = match reserved {
                Reservation::Reserved { .. } => Ok(()),
                Reservation::Rejected(rejection) => Err(rejection),
                Reservation::InFlight => Err(IssueRejection::AlreadyIssued),
            };
            assert_eq!(through_lua, case.expected, "reserve.lua, case {:?}", case.name);
        }
    }

    #[tokio::test]
    async fn a_lost_settlement_is_repaired_once_nothing_is_in_flight_but_never_while_something_is() {
        let env = TestEnv::new().await;
        let redis = Redis::connect(&env.redis).await.expect("redis");
        let stock = CouponStock::new(redis.clone());
        let people = users(&env.pool, 4).await;
        let [a, b, c, d] = [people[0], people[1], people[2], people[3]].map(|id| UserId::parse(id).expect("id"));
        let policy = policy(&env.pool, 2, -1, &[]).await;
        let inflight = redis.key(&format!("coupon:policy:{policy}:inflight"));
        let drift_token = redis.key(&format!("coupon:policy:{policy}:drift-check"));

        for user in [a, b] {
            assert!(matches!(
                stock.reserve(&env.pool, policy, user, None).await.expect("reserve"),
                Reservation::Reserved { .. }
            ));
        }
        // Both requests are still in flight: Redis is sold out and the database empty, which is normal.
        let waiting = stock.reserve(&env.pool, policy, c, None).await.expect("reserve");
        assert_eq!(waiting, Reservation::Rejected(IssueRejection::SoldOut), "an in-flight reservation kept its place");

        // Both were refused downstream, but their settlements never reached Redis: their places leaked.
        let _: () = redis.connection().del(&inflight).await.expect("losing the in-flight entries");
        let _: () = redis.connection().del(&drift_token).await.expect("no check in the last second");
        let repaired = stock.reserve(&env.pool, policy, c, None).await.expect("reserve");
        assert!(matches!(repaired, Reservation::Reserved { .. }), "the drift guard did not rebuild: {repaired:?}");

        // The repaired state counts c's new reservation; settling it as issued keeps c's place.
        stock.settle(&[Settlement { policy, user: c, request: None, keep: true }]).await.expect("settle");
        let taken: i64 =
            redis.connection().scard(redis.key(&format!("coupon:policy:{policy}:users"))).await.expect("SCARD");
        assert_eq!(taken, 1, "the rebuilt set holds exactly the new reservation");
        assert!(matches!(
            stock.reserve(&env.pool, policy, d, None).await.expect("reserve"),
            Reservation::Reserved { .. }
        ));
    }

    #[tokio::test]
    async fn a_drift_repair_never_reloads_a_holder_list_read_before_a_place_was_settled() {
        let env = TestEnv::new().await;
        let redis = Redis::connect(&env.redis).await.expect("redis");
        let stock = CouponStock::new(redis.clone());
        let people = users(&env.pool, 3).await;
        let [a, b, c] = [people[0], people[1], people[2]].map(|id| UserId::parse(id).expect("id"));
        let policy = policy(&env.pool, 2, -1, &[]).await;
        let reserved = |user| {
            let (stock, pool) = (stock.clone(), env.pool.clone());
            async move {
                matches!(stock.reserve(&pool, policy, user, None).await.expect("reserve"), Reservation::Reserved { .. })
            }
        };
        assert!(reserved(a).await);
        // a's place leaked (its refusal never settled), so a repair is due: it reads the database...
        let _: () =
            redis.connection().del(redis.key(&format!("coupon:policy:{policy}:inflight"))).await.expect("lose a");
        let snapshot = stock.drift_snapshot(&env.pool, policy).await.expect("snapshot").expect("stock left");
        // ...and before it reloads, b reserves, is issued and settled: the snapshot does not know b's coupon.
        assert!(reserved(b).await);
        sqlx::query("INSERT INTO coupons (policy_id, user_id, valid_until) VALUES ($1, $2, now() + interval '7 days')")
            .bind(policy.get())
            .bind(b.get())
            .execute(&env.pool)
            .await
            .expect("b's coupon");
        stock.settle(&[Settlement { policy, user: b, request: None, keep: true }]).await.expect("settle b");
        assert!(!stock.replace_drifted(&snapshot).await.expect("reload"), "a stale snapshot was reloaded");
        let holds_b: bool = redis
            .connection()
            .sismember(redis.key(&format!("coupon:policy:{policy}:users")), b.get())
            .await
            .expect("SISMEMBER");
        assert!(holds_b, "b keeps the place of the coupon it holds");
        // A snapshot taken now is current and repairs a's leak.
        let snapshot = stock.drift_snapshot(&env.pool, policy).await.expect("snapshot").expect("stock left");
        assert!(stock.replace_drifted(&snapshot).await.expect("reload"), "a current snapshot repairs");
        assert!(reserved(c).await, "a's leaked place is free again");
        assert!(!reserved(a).await, "the policy is full: b and c");
    }

    #[tokio::test]
    async fn after_a_failover_holders_are_restored_in_flight_places_kept_and_caches_dropped() {
        let env = TestEnv::new().await;
        let redis = Redis::connect(&env.redis).await.expect("redis");
        let stock = CouponStock::new(redis.clone());
        let people = users(&env.pool, 4).await;
        let [held, in_flight, late] = [people[0], people[1], people[2]].map(|id| UserId::parse(id).expect("id"));
        let policy = policy(&env.pool, 3, -1, &[people[0]]).await;
        assert!(matches!(stock.reserve(&env.pool, policy, in_flight, None).await, Ok(Reservation::Reserved { .. })));
        // The new master missed the write that loaded the holder; it has the in-flight reservation.
        let users_key = redis.key(&format!("coupon:policy:{policy}:users"));
        let _: () = redis.connection().srem(&users_key, held.get()).await.expect("SREM");
        let (balance, gate) = (redis.key("points:balance:7"), redis.key("shop:stock:9"));
        let _: () = redis.connection().set(&balance, "1:100").await.expect("SET");
        let _: () = redis.connection().set(&gate, 5).await.expect("SET");

        let restored = infra::failover::rebuild(&redis, &env.pool).await.expect("rebuild");

        assert_eq!(restored, 1, "the one policy this test owns");
        let mut members: Vec<i64> = redis.connection().smembers(&users_key).await.expect("SMEMBERS");
        members.sort();
        assert_eq!(members, vec![held.get(), in_flight.get()], "holder back, in-flight place kept");
        let left: i64 = redis.connection().exists(&[&balance, &gate]).await.expect("EXISTS");
        assert_eq!(left, 0, "cached balances and the stock gate are dropped");
        assert_eq!(
            stock.reserve(&env.pool, policy, held, None).await.expect("reserve"),
            Reservation::Rejected(IssueRejection::AlreadyIssued),
            "the holder cannot get a second coupon from the new master"
        );
        assert!(matches!(stock.reserve(&env.pool, policy, late, None).await, Ok(Reservation::Reserved { .. })));
    }
}

mod login_throttle {
    use infra::{
        accounts::throttle::{Limits, Throttle},
        redis_client::Redis,
    };
    use std::time::Duration;
    use testkit::TestEnv;

    async fn throttle(env: &TestEnv, limits: Limits) -> Throttle {
        Throttle::new(Redis::connect(&env.redis).await.expect("connecting"), limits)
    }

    /// Thresholds per account and per address; window, first back-off and cap in milliseconds.
    fn limits((per_account, per_ip): (u32, u32), window: u64, base: u64, cap: u64) -> Limits {
        Limits {
            max_per_account: per_account,
            max_per_ip: per_ip,
            window: Duration::from_millis(window),
            backoff_base: Duration::from_millis(base),
            backoff_cap: Duration::from_millis(cap),
        }
    }

    #[tokio::test]
    async fn the_back_off_doubles_up_to_its_cap_and_stays_there_while_the_guessing_goes_on() {
        let env = TestEnv::new().await;
        let cap = Duration::from_millis(400);
        // A window far shorter than the blocks: a counter that lived only for the window would be gone after each.
        let throttle = throttle(&env, limits((1, 1_000), 50, 25, 400)).await;
        let mut waits = Vec::new();
        while waits.len() < 10 {
            match throttle.attempt(Some(7), Some("10.0.0.1")).await {
                // Let through: counted as a failure (no success follows); the next attempt says how long to wait.
                None => {
                    let wait = throttle.attempt(Some(7), Some("10.0.0.1")).await.expect("blocked right after");
                    waits.push(wait);
                }
                // An obedient guesser waits exactly as long as told.
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
        let at_cap = |wait: &Duration| *wait > cap / 2;
        assert!(!at_cap(&waits[0]), "the first wait is the base: {waits:?}");
        assert!(waits[5..].iter().all(at_cap), "the wait reached the cap and stayed there: {waits:?}");
    }

    #[tokio::test]
    async fn concurrent_attempts_are_let_through_only_up_to_the_threshold() {
        let env = TestEnv::new().await;
        let throttle = throttle(&env, limits((3, 1_000), 60_000, 60_000, 3_600_000)).await;
        let attempts = (0..40).map(|_| {
            let throttle = throttle.clone();
            tokio::spawn(async move { throttle.attempt(Some(9), Some("10.0.0.2")).await })
        });
        let mut let_through = 0;
        for attempt in attempts {
            if attempt.await.expect("attempt").is_none() {
                let_through += 1;
            }
        }
        assert_eq!(let_through, 3, "each attempt is checked and counted in one step");
    }

    #[tokio::test]
    async fn a_success_takes_its_count_back_from_the_address_but_clears_only_its_own_account() {
        let env = TestEnv::new().await;
        let throttle = throttle(&env, limits((2, 2), 60_000, 60_000, 3_600_000)).await;
        let ip = Some("10.0.0.3");
        assert_eq!(throttle.attempt(Some(1), ip).await, None, "a wrong password from the address");
        assert_eq!(throttle.attempt(Some(2), ip).await, None, "the owner of account 2 signs in");
        throttle.succeeded(2, ip).await;
        assert_eq!(throttle.attempt(Some(3), ip).await, None, "the success did not count against the address");
        assert!(throttle.attempt(Some(4), ip).await.is_some(), "two failures from the address block it");
    }
}

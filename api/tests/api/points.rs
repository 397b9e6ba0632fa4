//! Points against real PostgreSQL: the balance never goes below zero and always equals its ledger.

use crate::helpers::{assert_problem, spawn_app, TestApp};
use domain::Role;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::Semaphore;

async fn user(app: &TestApp, email: &str) -> i64 {
    app.create_user(email, Role::User).await
}

async fn earn(app: &TestApp, user: i64, amount: i64) -> reqwest::Response {
    app.post_json(
        "/api/v2/points/earn",
        &app.token(1, Role::Admin),
        &json!({ "userId": user, "amount": amount, "reason": "test" }),
    )
    .await
}

/// (stored balance, sum of the ledger)
async fn balance_and_ledger(app: &TestApp, user: i64) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT balance FROM point_balances WHERE user_id = $1), \
                (SELECT coalesce(sum(amount), 0)::bigint FROM points WHERE user_id = $1)",
    )
    .bind(user)
    .fetch_one(&app.env.pool)
    .await
    .expect("balance and ledger")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_spends_of_10_against_5000_let_exactly_500_through() {
    let app = spawn_app().await;
    let alice = user(&app, "alice@points.test").await;
    assert_eq!(earn(&app, alice, 5_000).await.status(), 200);

    let gate = Arc::new(Semaphore::new(100));
    let token = app.token(alice, Role::User);
    let mut spends = Vec::new();
    for _ in 0..1_000 {
        let (client, url, token, gate) =
            (app.client.clone(), app.url("/api/v2/points/use"), token.clone(), gate.clone());
        spends.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore");
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "amount": 10 }))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }));
    }
    let mut accepted = 0;
    let mut refused = 0;
    for spend in spends {
        match spend.await.expect("task") {
            200 => accepted += 1,
            409 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((accepted, refused), (500, 500));
    assert_eq!(balance_and_ledger(&app, alice).await, (0, 0), "balance 0 and equal to its ledger");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE aggregate_type = 'points'")
        .fetch_one(&app.env.pool)
        .await
        .expect("outbox");
    assert_eq!(events, 501, "one outbox event per change, in the same transaction");
}

#[tokio::test]
async fn spending_more_than_the_balance_is_409_and_changes_nothing() {
    let app = spawn_app().await;
    let bob = user(&app, "bob@points.test").await;
    earn(&app, bob, 100).await;
    let over = app.post_json("/api/v2/points/use", &app.token(bob, Role::User), &json!({ "amount": 101 })).await;
    assert_problem(over, 409, "INSUFFICIENT_BALANCE").await;
    let read = app.get_json(&format!("/api/v2/points/users/{bob}/balance"), &app.token(bob, Role::User)).await;
    assert_eq!(read["balance"], 100);
    assert_eq!(balance_and_ledger(&app, bob).await, (100, 100));
}

#[tokio::test]
async fn bad_amounts_are_422_and_unknown_users_404() {
    let app = spawn_app().await;
    let carol = user(&app, "carol@points.test").await;
    for amount in [json!(0), json!(-5), json!(10.5), json!("10"), json!(10_000_000_000_i64)] {
        let body = json!({ "userId": carol, "amount": amount });
        let response = app.post_json("/api/v2/points/earn", &app.token(1, Role::Admin), &body).await;
        assert_problem(response, 422, "INVALID_BODY").await;
    }
    assert_problem(earn(&app, 999_999, 10).await, 404, "USER_NOT_FOUND").await;
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM points").fetch_one(&app.env.pool).await.expect("count"),
        0,
        "nothing written"
    );
}

#[tokio::test]
async fn users_read_and_spend_only_their_own_points_and_only_admins_earn() {
    let app = spawn_app().await;
    let (dave, erin) = (user(&app, "dave@points.test").await, user(&app, "erin@points.test").await);
    earn(&app, erin, 50).await;
    let dave_token = app.token(dave, Role::User);
    let read =
        app.client.get(app.url(&format!("/api/v2/points/users/{erin}/balance"))).bearer_auth(&dave_token).send().await;
    // Another user's points answer as if that user did not exist (no existence oracle).
    assert_problem(read.expect("request"), 404, "USER_NOT_FOUND").await;
    let spend_theirs = app.post_json("/api/v2/points/use", &dave_token, &json!({ "amount": 5, "userId": erin })).await;
    assert_problem(spend_theirs, 404, "USER_NOT_FOUND").await;
    let self_earn = app.post_json("/api/v2/points/earn", &dave_token, &json!({ "userId": dave, "amount": 5 })).await;
    assert_problem(self_earn, 403, "FORBIDDEN").await;
    let admin_spend: Value = app
        .post_json(
            "/api/v2/points/use",
            &app.token(1, Role::Admin),
            &json!({ "amount": 5, "userId": erin, "orderId": 3 }),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!((admin_spend["balance"].as_i64(), admin_spend["amount"].as_i64()), (Some(45), Some(-5)));
}

async fn spend_with_key(app: &TestApp, user: i64, key: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v2/points/use"))
        .bearer_auth(app.token(user, Role::User))
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_spend_with_the_same_key_applies_once_even_when_the_retries_race() {
    let app = spawn_app().await;
    let frank = user(&app, "frank@points.test").await;
    earn(&app, frank, 1_000).await;
    let mut retries = Vec::new();
    for _ in 0..20 {
        let (client, url, token) = (app.client.clone(), app.url("/api/v2/points/use"), app.token(frank, Role::User));
        retries.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .header("idempotency-key", "order-17-payment")
                .json(&json!({ "amount": 300, "orderId": 17 }))
                .send()
                .await
                .expect("request");
            (response.status().as_u16(), response.json::<Value>().await.expect("json"))
        }));
    }
    let mut answers = Vec::new();
    for retry in retries {
        answers.push(retry.await.expect("task"));
    }
    assert!(answers.iter().all(|answer| answer == &answers[0]), "every retry gets the first answer");
    assert_eq!((answers[0].0, answers[0].1["balance"].as_i64()), (200, Some(700)));
    assert_eq!(balance_and_ledger(&app, frank).await, (700, 700), "spent once");
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_and_a_refusal_is_replayed_as_it_was() {
    let app = spawn_app().await;
    let gina = user(&app, "gina@points.test").await;
    earn(&app, gina, 100).await;
    let refused = spend_with_key(&app, gina, "k-1", json!({ "amount": 500 })).await;
    assert_problem(refused, 409, "INSUFFICIENT_BALANCE").await;
    earn(&app, gina, 1_000).await;
    let replayed = spend_with_key(&app, gina, "k-1", json!({ "amount": 500 })).await;
    assert_problem(replayed, 409, "INSUFFICIENT_BALANCE").await;
    assert_eq!(balance_and_ledger(&app, gina).await, (1_100, 1_100), "the retry did not spend");

    let reused = spend_with_key(&app, gina, "k-1", json!({ "amount": 5 })).await;
    assert_problem(reused, 422, "IDEMPOTENCY_KEY_REUSED").await;
    let bad_key = spend_with_key(&app, gina, "has spaces", json!({ "amount": 5 })).await;
    assert_problem(bad_key, 400, "INVALID_IDEMPOTENCY_KEY").await;
}

async fn point_id(response: reqwest::Response) -> i64 {
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.expect("json")["pointId"].as_i64().expect("point id")
}

async fn cancel(app: &TestApp, actor_token: &str, point: i64) -> reqwest::Response {
    app.post_json(&format!("/api/v2/points/{point}/cancel"), actor_token, &json!(null)).await
}

#[tokio::test]
async fn a_cancel_reverses_one_entry_once_for_the_right_people_and_never_below_zero() {
    let app = spawn_app().await;
    let (hana, ivan) = (user(&app, "hana@points.test").await, user(&app, "ivan@points.test").await);
    let (hana_token, ivan_token, admin) =
        (app.token(hana, Role::User), app.token(ivan, Role::User), app.token(1, Role::Admin));
    let earned = point_id(earn(&app, hana, 500).await).await;
    let used = point_id(app.post_json("/api/v2/points/use", &hana_token, &json!({ "amount": 200 })).await).await;

    assert_problem(cancel(&app, &ivan_token, used).await, 404, "POINT_NOT_FOUND").await;
    assert_problem(cancel(&app, &hana_token, earned).await, 403, "FORBIDDEN").await;
    let undone: Value = cancel(&app, &hana_token, used).await.json().await.expect("json");
    assert_eq!((undone["kind"].as_str(), undone["balance"].as_i64()), (Some("CANCEL"), Some(500)));
    assert_problem(cancel(&app, &hana_token, used).await, 409, "ALREADY_CANCELLED").await;
    assert_problem(cancel(&app, &admin, undone["pointId"].as_i64().expect("id")).await, 409, "NOT_CANCELLABLE").await;

    app.post_json("/api/v2/points/use", &hana_token, &json!({ "amount": 400 })).await;
    // Points of the earn were spent: taking it back would take what the uses hold.
    assert_problem(cancel(&app, &admin, earned).await, 409, "EARN_TOUCHED").await;
    assert_problem(cancel(&app, &admin, 999_999_999).await, 404, "POINT_NOT_FOUND").await;
    assert_eq!(balance_and_ledger(&app, hana).await, (100, 100), "every refusal left balance and ledger agreeing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleaved_earns_spends_and_cancels_keep_the_balance_equal_to_its_ledger_and_never_negative() {
    let app = spawn_app().await;
    let june = user(&app, "june@points.test").await;
    earn(&app, june, 1_000).await;
    let (june_token, admin) = (app.token(june, Role::User), app.token(1, Role::Admin));
    // Spends to cancel later, so cancels race with new spends and earns.
    let mut cancellable = Vec::new();
    for _ in 0..40 {
        cancellable
            .push(point_id(app.post_json("/api/v2/points/use", &june_token, &json!({ "amount": 5 })).await).await);
    }
    let mut tasks = Vec::new();
    for round in 0..120 {
        let (client, base, june_token, admin) =
            (app.client.clone(), app.address.clone(), june_token.clone(), admin.clone());
        let cancel_target = cancellable.get(round / 3).copied();
        tasks.push(tokio::spawn(async move {
            let (path, token, body) = match round % 3 {
                0 => ("/api/v2/points/use".to_owned(), june_token, json!({ "amount": 37 })),
                1 => ("/api/v2/points/earn".to_owned(), admin, json!({ "userId": june, "amount": 11 })),
                _ => (format!("/api/v2/points/{}/cancel", cancel_target.expect("target")), june_token, json!(null)),
            };
            client
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }));
    }
    for task in tasks {
        let status = task.await.expect("task");
        assert!(status == 200 || status == 409, "unexpected status {status}");
    }
    let (balance, ledger) = balance_and_ledger(&app, june).await;
    assert!(balance >= 0, "negative balance {balance}");
    assert_eq!(balance, ledger, "balance drifted from its ledger");
    let cancels: i64 = sqlx::query_scalar("SELECT count(*) FROM points WHERE user_id = $1 AND kind = 'CANCEL'")
        .bind(june)
        .fetch_one(&app.env.pool)
        .await
        .expect("count");
    assert_eq!(cancels, 40, "every use was cancelled exactly once");
}

async fn read_balance(app: &TestApp, user: i64) -> i64 {
    app.get_json(&format!("/api/v2/points/users/{user}/balance"), &app.token(user, Role::User)).await["balance"]
        .as_i64()
        .expect("balance")
}

#[tokio::test]
async fn a_read_after_a_write_sees_the_write_even_with_a_warm_cache() {
    let app = spawn_app().await;
    let kim = user(&app, "kim@points.test").await;
    earn(&app, kim, 100).await;
    assert_eq!(read_balance(&app, kim).await, 100); // cached now
    app.post_json("/api/v2/points/use", &app.token(kim, Role::User), &json!({ "amount": 30 })).await;
    assert_eq!(read_balance(&app, kim).await, 70);
    let redis = infra::redis_client::Redis::connect(&app.env.redis).await.expect("redis");
    let cached: Option<String> = redis::cmd("GET")
        .arg(redis.key(&format!("points:balance:{kim}")))
        .query_async(&mut redis.connection())
        .await
        .expect("GET");
    assert_eq!(cached.as_deref(), Some("2:70"), "version 2 (earn, use) holds 70");
}

#[tokio::test]
async fn cache_control_no_cache_reads_the_database_and_leaves_a_newer_cached_value_alone() {
    let app = spawn_app().await;
    let lee = user(&app, "lee@points.test").await;
    earn(&app, lee, 100).await;
    let cache = infra::points::cache::BalanceCache::new(
        infra::redis_client::Redis::connect(&app.env.redis).await.expect("redis"),
    );
    // A cached value the database does not hold, so the answer shows which source served it.
    let user = domain::UserId::parse(lee).expect("id");
    cache.offer(user, 99, 12_345).await;
    let soon = infra::points::cache::ExpiringSoon { version: 99, amount: 0, until: None };
    cache.offer_expiring(user, soon, chrono::Utc::now()).await;
    assert_eq!(read_balance(&app, lee).await, 12_345, "a plain read is served from the cache");

    let path = format!("/api/v2/points/users/{lee}/balance");
    let fresh: Value = app
        .client
        .get(app.url(&path))
        .bearer_auth(app.token(lee, Role::User))
        .header("cache-control", "max-age=0, no-cache")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(fresh["balance"], 100, "no-cache reads the database");
    assert_eq!(read_balance(&app, lee).await, 12_345, "the older database version did not replace the cache");
}

#[tokio::test]
async fn an_older_balance_never_replaces_a_newer_one_in_the_cache() {
    let app = spawn_app().await;
    let cache = infra::points::cache::BalanceCache::new(
        infra::redis_client::Redis::connect(&app.env.redis).await.expect("redis"),
    );
    let user = domain::UserId::parse(42).expect("id");
    cache.offer(user, 5, 500).await;
    cache.offer(user, 3, 300).await; // a slow reader arriving late with what it loaded earlier
    assert_eq!(cache.get(user).await, Some((5, 500)));
    cache.offer(user, 6, 450).await;
    assert_eq!(cache.get(user).await, Some((6, 450)));
}

#[tokio::test]
async fn with_redis_gone_balances_are_read_and_written_through_postgres() {
    let (mut redis, url) = crate::helpers::private_redis().await;
    let app = crate::helpers::spawn_app_with(Default::default(), |config| config.redis.url = url).await;
    let lena = user(&app, "lena@points.test").await;
    earn(&app, lena, 100).await;
    assert_eq!(read_balance(&app, lena).await, 100);

    redis.kill();
    let spent = app.post_json("/api/v2/points/use", &app.token(lena, Role::User), &json!({ "amount": 40 })).await;
    assert_eq!(spent.status(), 200, "a write does not need the cache");
    assert_eq!(read_balance(&app, lena).await, 60, "the read falls back to PostgreSQL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_and_writes_with_evictions_leave_the_cache_holding_the_latest_balance() {
    let app = spawn_app().await;
    let mia = user(&app, "mia@points.test").await;
    earn(&app, mia, 10_000).await;
    let redis = infra::redis_client::Redis::connect(&app.env.redis).await.expect("redis");
    let key = redis.key(&format!("points:balance:{mia}"));
    let token = app.token(mia, Role::User);
    let mut tasks = Vec::new();
    for round in 0..300 {
        let (client, base, token, redis, key) =
            (app.client.clone(), app.address.clone(), token.clone(), redis.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            match round % 3 {
                0 => {
                    let url = format!("{base}/api/v2/points/use");
                    let body = json!({ "amount": 7 });
                    client.post(url).bearer_auth(token).json(&body).send().await.expect("request");
                }
                1 => {
                    let url = format!("{base}/api/v2/points/users/{mia}/balance");
                    client.get(url).bearer_auth(token).send().await.expect("request");
                }
                _ => {
                    let _: i64 = redis::cmd("DEL").arg(&key).query_async(&mut redis.connection()).await.expect("DEL");
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let (stored, ledger) = balance_and_ledger(&app, mia).await;
    assert_eq!((stored, ledger), (10_000 - 100 * 7, 10_000 - 100 * 7));
    assert_eq!(read_balance(&app, mia).await, stored, "the cache never kept an older balance");
}

#[tokio::test]
async fn history_pages_newest_first_without_gaps_and_filters_by_type_and_time() {
    let app = spawn_app().await;
    let noah = user(&app, "noah@points.test").await;
    let token = app.token(noah, Role::User);
    earn(&app, noah, 1_000).await;
    for _ in 0..12 {
        app.post_json("/api/v2/points/use", &token, &json!({ "amount": 10 })).await;
    }
    let mut seen = Vec::new();
    let mut path = format!("/api/v2/points/users/{noah}/history?limit=5");
    loop {
        let page = app.get_json(&path, &token).await;
        seen.extend(page["items"].as_array().expect("items").iter().map(|item| item["pointId"].as_i64().expect("id")));
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/v2/points/users/{noah}/history?limit=5&cursor={cursor}"),
            None => break,
        }
    }
    let expected: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM points WHERE user_id = $1 ORDER BY created_at DESC, id DESC")
            .bind(noah)
            .fetch_all(&app.env.pool)
            .await
            .expect("ids");
    assert_eq!(seen, expected, "every entry once, newest first");

    let earns = app.get_json(&format!("/api/v2/points/users/{noah}/history?type=EARN"), &token).await;
    assert_eq!(earns["items"].as_array().map(Vec::len), Some(1));
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339().replace('+', "%2B");
    let none = app.get_json(&format!("/api/v2/points/users/{noah}/history?from={future}"), &token).await;
    assert_eq!(none["items"], json!([]));

    let bad = |query: &str| {
        app.client.get(app.url(&format!("/api/v2/points/users/{noah}/history?{query}"))).bearer_auth(&token).send()
    };
    assert_problem(bad("cursor=zz").await.expect("request"), 400, "INVALID_CURSOR").await;
    assert_problem(bad("type=GIFT").await.expect("request"), 400, "INVALID_QUERY").await;
    assert_problem(bad("limit=0").await.expect("request"), 400, "INVALID_QUERY").await;
    let range = format!("from={future}&to={future}");
    assert_problem(bad(&range).await.expect("request"), 422, "INVALID_RANGE").await;
    let stranger = app.token(noah + 1000, Role::User);
    let theirs =
        app.client.get(app.url(&format!("/api/v2/points/users/{noah}/history"))).bearer_auth(stranger).send().await;
    assert_problem(theirs.expect("request"), 404, "USER_NOT_FOUND").await;
}

#[tokio::test]
async fn an_earn_says_how_long_its_points_stay_spendable_and_an_untouched_earn_is_taken_back() {
    let app = spawn_app().await;
    let kim = user(&app, "kim@points.test").await;
    let admin = app.token(1, Role::Admin);
    let earn_for = |days: Value| json!({ "userId": kim, "amount": 100, "validDays": days });
    let valid_days = |point: i64| {
        let pool = app.env.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT extract(day FROM expires_at - created_at)::bigint FROM point_lots WHERE point_id = $1",
            )
            .bind(point)
            .fetch_one(&pool)
            .await
            .expect("lot")
        }
    };
    let ninety = point_id(app.post_json("/api/v2/points/earn", &admin, &earn_for(json!(90))).await).await;
    assert_eq!(valid_days(ninety).await, 90);
    let default = point_id(earn(&app, kim, 50).await).await;
    assert_eq!(valid_days(default).await, 365, "POINTS_VALID_DAYS by default");
    for bad in [json!(0), json!(1_827), json!(-5)] {
        assert_problem(app.post_json("/api/v2/points/earn", &admin, &earn_for(bad)).await, 422, "INVALID_BODY").await;
    }

    let undone: Value = cancel(&app, &admin, default).await.json().await.expect("json");
    assert_eq!((undone["kind"].as_str(), undone["balance"].as_i64()), (Some("CANCEL"), Some(100)));
    assert_eq!(balance_and_ledger(&app, kim).await, (100, 100));
}

#[tokio::test]
async fn expiring_points_are_listed_soonest_first_within_the_days_asked() {
    let app = spawn_app().await;
    let lee = user(&app, "lee@points.test").await;
    let (admin, token) = (app.token(1, Role::Admin), app.token(lee, Role::User));
    for (amount, days) in [(300, 20), (200, 5), (100, 90)] {
        let body = json!({ "userId": lee, "amount": amount, "validDays": days });
        point_id(app.post_json("/api/v2/points/earn", &admin, &body).await).await;
    }
    // The soonest expiry is spent first: all of the 5-day lot, then 50 of the 20-day one.
    point_id(app.post_json("/api/v2/points/use", &token, &json!({ "amount": 250 })).await).await;
    let remaining = |view: &Value| -> Vec<i64> {
        view["lots"].as_array().expect("lots").iter().map(|lot| lot["remaining"].as_i64().expect("remaining")).collect()
    };

    let month = expiring(&app, &token, lee, "").await;
    assert_eq!((month["withinDays"].as_i64(), month["total"].as_i64()), (Some(30), Some(250)));
    assert_eq!(remaining(&month), [250], "an emptied lot is not listed");
    let quarter = expiring(&app, &token, lee, "?withinDays=91").await;
    assert_eq!((quarter["total"].as_i64(), remaining(&quarter)), (Some(350), vec![250, 100]));
    assert_problem(
        app.get(&format!("/api/v2/points/users/{lee}/expiring?withinDays=0"), &token).await,
        400,
        "INVALID_QUERY",
    )
    .await;
}

async fn expiring(app: &TestApp, token: &str, user: i64, query: &str) -> Value {
    app.get_json(&format!("/api/v2/points/users/{user}/expiring{query}"), token).await
}

#[tokio::test]
async fn the_balance_shows_what_expires_within_30_days_following_writes_and_the_passing_of_time() {
    let app = spawn_app().await;
    let kim = user(&app, "kim@points.test").await;
    let (admin, token) = (app.token(1, Role::Admin), app.token(kim, Role::User));
    let mut earns = Vec::new();
    for (amount, days) in [(300, 10), (200, 90)] {
        let body = json!({ "userId": kim, "amount": amount, "validDays": days });
        earns.push(point_id(app.post_json("/api/v2/points/earn", &admin, &body).await).await);
    }
    let path = format!("/api/v2/points/users/{kim}/balance");
    let view = || app.get_json(&path, &token);
    let expiring = |view: &Value| (view["balance"].as_i64(), view["expiringWithin30Days"].as_i64());
    assert_eq!(expiring(&view().await), (Some(500), Some(300)));
    assert_eq!(expiring(&view().await), (Some(500), Some(300)), "the same from the cache");

    // The soonest expiry is spent first: the next read follows the write.
    point_id(app.post_json("/api/v2/points/use", &token, &json!({ "amount": 100 })).await).await;
    // Time passing without a write: the 90-day lot is made to enter the window two seconds from now.
    sqlx::query("UPDATE point_lots SET expires_at = now() + interval '30 days 2 seconds' WHERE point_id = $1")
        .bind(earns[1])
        .execute(&app.env.pool)
        .await
        .expect("moving the expiry");
    assert_eq!(expiring(&view().await), (Some(400), Some(200)));
    let entered = testkit::process::eventually(std::time::Duration::from_secs(15), || async {
        expiring(&view().await) == (Some(400), Some(400))
    })
    .await;
    assert!(entered, "the cached part lapses when a lot enters the window");
}

/// Runs the expiry job's two steps over every partition: the lots of the test's users that ended by now.
async fn expire_ended_lots(app: &TestApp) {
    use infra::points::expiry;
    for partition in 0..16 {
        let mut tx = app.env.pool.begin().await.expect("tx");
        let users = expiry::lock_due_users(&mut tx, partition, 0, chrono::Utc::now(), 1_000).await.expect("due users");
        expiry::expire_locked(&mut tx, &users, chrono::Utc::now(), "points valid through today expired", None)
            .await
            .expect("expired");
        tx.commit().await.expect("commit");
    }
}

#[tokio::test]
async fn history_shows_expiries_and_the_lots_earns_and_regranting_cancels_made() {
    let app = spawn_app().await;
    let mia = user(&app, "mia@points.test").await;
    let (admin, token) = (app.token(1, Role::Admin), app.token(mia, Role::User));
    let body = |amount: i64, days: i64| json!({ "userId": mia, "amount": amount, "validDays": days });
    let short = point_id(app.post_json("/api/v2/points/earn", &admin, &body(300, 10)).await).await;
    point_id(app.post_json("/api/v2/points/earn", &admin, &body(500, 90)).await).await;
    let used = point_id(app.post_json("/api/v2/points/use", &token, &json!({ "amount": 200 })).await).await;
    // The 10-day lot (which the use drew from) ends; the job takes the 100 left in it.
    sqlx::query("UPDATE point_lots SET expires_at = now() - interval '1 second' WHERE point_id = $1")
        .bind(short)
        .execute(&app.env.pool)
        .await
        .expect("ending the lot");
    expire_ended_lots(&app).await;
    // Cancelling the use gives its 200 back as a new lot: its own lot has ended.
    assert_eq!(cancel(&app, &token, used).await.status(), 200);

    let history = app.get_json(&format!("/api/v2/points/users/{mia}/history"), &token).await;
    let items = history["items"].as_array().expect("items");
    let line = |item: &Value| {
        let lot = &item["grantedLot"];
        (
            item["kind"].as_str().map(str::to_owned),
            item["amount"].as_i64(),
            lot["source"].as_str().map(str::to_owned),
            lot["amount"].as_i64(),
        )
    };
    let lines: Vec<_> = items.iter().map(line).collect();
    let text = |s: &str| Some(s.to_owned());
    assert_eq!(
        lines,
        [
            (text("CANCEL"), Some(200), text("REGRANT"), Some(200)),
            (text("EXPIRE"), Some(-100), None, None),
            (text("USE"), Some(-200), None, None),
            (text("EARN"), Some(500), text("ADMIN"), Some(500)),
            (text("EARN"), Some(300), text("ADMIN"), Some(300)),
        ]
    );
    assert!(items[0]["grantedLot"]["expiresAt"].as_str().is_some_and(|at| at > "2026"), "{}", items[0]);
    let expiries = app.get_json(&format!("/api/v2/points/users/{mia}/history?type=EXPIRE"), &token).await;
    assert_eq!(expiries["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(balance_and_ledger(&app, mia).await, (700, 700));
}

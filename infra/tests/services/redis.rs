use infra::cache::Redis;
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

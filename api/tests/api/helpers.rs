use domain::{Role, UserId};
use infra::config::TelemetryArgs;
use settle_api::{
    auth::JwtKeys,
    config::{ApiConfig, HttpLimits},
};
use std::time::Duration;
use testkit::TestEnv;
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes";

/// settle-api on a free port over a private database, Redis prefix and Kafka prefix.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub env: TestEnv,
    pub keys: JwtKeys,
    shutdown: CancellationToken,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn token(&self, user: i64, role: Role) -> String {
        let user = UserId::parse(user).expect("positive user id");
        self.keys.issue(user, role, Duration::from_secs(300)).expect("issuing a test token")
    }

    /// GET `path` with `token`.
    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request")
    }

    /// GET `path` with `token` and the JSON body of a 200 answer.
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let response = self.get(path, token).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    /// POST `body` as JSON to `path` with `token`.
    pub async fn post_json(&self, path: &str, token: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client.post(self.url(path)).bearer_auth(token).json(body).send().await.expect("request")
    }

    /// Inserts a user row and returns its id.
    pub async fn create_user(&self, email: &str, role: Role) -> i64 {
        sqlx::query_scalar(
            "INSERT INTO users (email, password_hash, name, role) VALUES ($1, 'x', 'Test', $2) RETURNING id",
        )
        .bind(email)
        .bind(role.as_str())
        .fetch_one(&self.env.pool)
        .await
        .expect("inserting a test user")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(HttpLimits::default(), |_| {}).await
}

/// Like [`spawn_app`], with other limits and a chance to change the configuration (e.g. point it at a
/// private broker or Redis that the test stops).
pub async fn spawn_app_with(limits: HttpLimits, adjust: impl FnOnce(&mut ApiConfig)) -> TestApp {
    spawn_app_on(TestEnv::new().await, limits, adjust).await
}

/// Like [`spawn_app_with`], over `env` (e.g. one whose database lives on a server the test restarts).
pub async fn spawn_app_on(env: TestEnv, limits: HttpLimits, adjust: impl FnOnce(&mut ApiConfig)) -> TestApp {
    let mut config = ApiConfig {
        listen_addr: "127.0.0.1:0".parse().expect("address"),
        jwt: infra::config::JwtArgs::with_secret(SECRET),
        accounts: Default::default(),
        orders: Default::default(),
        payments: Default::default(),
        resilience: Default::default(),
        breakers: Default::default(),
        body_limit_bytes: limits.body_limit_bytes,
        request_timeout_ms: limits.request_timeout.as_millis() as u64,
        route_groups: settle_api::config::RouteGroup::ALL.to_vec(),
        postgres: env.postgres.clone(),
        redis: env.redis.clone(),
        kafka: env.kafka.clone(),
        telemetry: TelemetryArgs { json: false, filter: "warn".to_owned() },
    };
    adjust(&mut config);
    let state = settle_api::build_state(&config).await.expect("connecting the app");
    let router = settle_api::router(state, limits).expect("building the router");
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await.expect("binding a port");
    let address = format!("http://{}", listener.local_addr().expect("local address"));
    let shutdown = CancellationToken::new();
    tokio::spawn(settle_api::serve(listener, router, shutdown.clone()));
    TestApp {
        address,
        client: reqwest::Client::new(),
        env,
        keys: JwtKeys::from_secret(SECRET).expect("test secret"),
        shutdown,
    }
}

/// Asserts that `response` is a problem body with `status` and `code`, and returns the body.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(content_type, "application/problem+json");
    assert!(response.headers().contains_key("x-trace-id"), "every response carries a trace id");
    let body: serde_json::Value = response.json().await.expect("a JSON problem body");
    assert_eq!(body["code"], code, "problem code in {body}");
    assert_eq!(body["status"], status, "problem status in {body}");
    body
}

/// A redis-server of the test's own on a free port (so the test may kill it), and its URL.
pub async fn private_redis() -> (testkit::process::Running, String) {
    let port = testkit::broker::free_port();
    let redis = testkit::process::Running::spawn(
        std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null()),
    )
    .expect("a private redis-server");
    let listening = testkit::process::wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(listening.await, "the private redis-server listens");
    (redis, format!("redis://127.0.0.1:{port}"))
}

/// Whether, within 10 s, at least `sessions` of the app's database sessions wait on a lock (a request held
/// inside its transaction by a lock the test took).
pub async fn waiting_on_locks(app: &TestApp, sessions: i64) -> bool {
    testkit::process::eventually(Duration::from_secs(10), || async { sessions_waiting_on_locks(app).await >= sessions })
        .await
}

/// How many of the app's database sessions wait on a lock now.
pub async fn sessions_waiting_on_locks(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(&app.env.pool)
    .await
    .expect("pg_stat_activity")
}

/// A transaction holding `option`'s row lock: orders reaching their stock update wait until it ends.
pub async fn lock_option(app: &TestApp, option: i64) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut holder = app.env.pool.begin().await.expect("a transaction");
    sqlx::query("SELECT stock FROM product_options WHERE id = $1 FOR UPDATE")
        .bind(option)
        .execute(&mut *holder)
        .await
        .expect("lock");
    holder
}

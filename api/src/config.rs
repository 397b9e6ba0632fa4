use clap::Parser;
use infra::config::{JwtArgs, KafkaArgs, OrderArgs, PaymentArgs, PostgresArgs, RedisArgs, TelemetryArgs};
use std::{net::SocketAddr, time::Duration};

/// settle-api: the shop's HTTP API.
#[derive(Parser, Debug, Clone)]
#[command(name = "settle-api", version)]
pub struct ApiConfig {
    /// Address the HTTP server listens on.
    #[arg(long, env = "API_LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: SocketAddr,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "API_BODY_LIMIT_BYTES", default_value_t = 64 * 1024)]
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered 503, in milliseconds.
    #[arg(long, env = "API_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// The route groups this process serves, comma-separated: so issuance replicas can run apart from
    /// accounts and the shop behind one load balancer that routes by path. Health, metrics and the API
    /// document are always served; a route of another group answers 404 ROUTE_NOT_FOUND.
    #[arg(
        long,
        env = "API_ROUTE_GROUPS",
        value_delimiter = ',',
        default_value = "accounts,issuance,points,shop,console"
    )]
    pub route_groups: Vec<RouteGroup>,
    #[command(flatten)]
    pub jwt: JwtArgs,
    #[command(flatten)]
    pub accounts: AccountsArgs,
    #[command(flatten)]
    pub orders: OrderArgs,
    #[command(flatten)]
    pub payments: PaymentArgs,
    #[command(flatten)]
    pub resilience: ResilienceArgs,
    #[command(flatten)]
    pub breakers: infra::breaker::BreakerArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// A set of routes a process can serve on its own (each but the console behind its own bulkhead).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteGroup {
    /// `/api/v1/users/...`: sign-up, login, refresh, the user's own data.
    Accounts,
    /// Coupon policies and coupon issuance, V1 to V3.
    Issuance,
    /// `/api/v2/points/...`: balances, earn, use, cancel, history, expiring points.
    Points,
    /// Catalogue, carts, orders and their payment.
    Shop,
    /// The operations console under `/console`.
    Console,
}

impl RouteGroup {
    pub const ALL: [RouteGroup; 5] =
        [RouteGroup::Accounts, RouteGroup::Issuance, RouteGroup::Points, RouteGroup::Shop, RouteGroup::Console];
}

/// Sessions and the password hashing pool.
#[derive(clap::Args, Debug, Clone)]
pub struct AccountsArgs {
    /// How long an access token is valid, in seconds (also how long one outlives a password change).
    #[arg(long, env = "ACCESS_TOKEN_TTL_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(30..=86_400))]
    pub access_token_ttl_secs: u64,
    /// How long a refresh token is valid, in days.
    #[arg(long, env = "REFRESH_TOKEN_TTL_DAYS", default_value_t = 14, value_parser = clap::value_parser!(u64).range(1..=365))]
    pub refresh_token_ttl_days: u64,
    /// How long an operations-console sign-in lasts, in hours.
    #[arg(long, env = "CONSOLE_SESSION_HOURS", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=72))]
    pub console_session_hours: u64,
    /// Passwords hashed at once (argon2id, ~15 ms of one core each); by default half the cores (at least
    /// one), so a login storm leaves the other half to everything else.
    #[arg(long, env = "PASSWORD_HASH_CONCURRENCY", value_parser = clap::value_parser!(u64).range(1..=256))]
    pub hash_concurrency: Option<u64>,
    /// Callers that may wait for the hashing pool; beyond that 503 SERVER_BUSY at once.
    #[arg(long, env = "PASSWORD_HASH_QUEUE", default_value_t = 16, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub hash_queue: u64,
    /// Failed sign-ins of one account within the window before its attempts must wait.
    #[arg(long, env = "LOGIN_MAX_FAILURES_PER_ACCOUNT", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub max_failures_per_account: u32,
    /// Failed sign-ins from one client IP (any accounts) within the window before its attempts must wait.
    #[arg(long, env = "LOGIN_MAX_FAILURES_PER_IP", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_failures_per_ip: u32,
    /// How long failed sign-ins are counted, in seconds.
    #[arg(long, env = "LOGIN_FAILURE_WINDOW_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub failure_window_secs: u64,
    /// The first wait past the threshold, in milliseconds; each further failure doubles it (up to an hour).
    #[arg(long, env = "LOGIN_BACKOFF_BASE_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub backoff_base_ms: u64,
    /// Proxies whose `X-Forwarded-For` is believed (comma-separated IPs); from anyone else it is ignored.
    #[arg(long, env = "API_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl AccountsArgs {
    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency.map_or_else(
            || std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1)),
            |configured| configured as usize,
        )
    }
    pub fn throttle_limits(&self) -> infra::accounts::throttle::Limits {
        infra::accounts::throttle::Limits {
            max_per_account: self.max_failures_per_account,
            max_per_ip: self.max_failures_per_ip,
            window: Duration::from_secs(self.failure_window_secs),
            backoff_base: Duration::from_millis(self.backoff_base_ms),
            backoff_cap: Duration::from_secs(3_600),
        }
    }

    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_secs)
    }

    pub fn refresh_ttl(&self) -> Duration {
        Duration::from_secs(self.refresh_token_ttl_days * 86_400)
    }

    pub fn console_ttl(&self) -> Duration {
        Duration::from_secs(self.console_session_hours * 3_600)
    }
}

impl Default for AccountsArgs {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 900,
            refresh_token_ttl_days: 14,
            console_session_hours: 8,
            hash_concurrency: None,
            hash_queue: 16,
            max_failures_per_account: 5,
            max_failures_per_ip: 20,
            failure_window_secs: 900,
            backoff_base_ms: 30_000,
            trusted_proxies: Vec::new(),
        }
    }
}

impl ApiConfig {
    pub fn http_limits(&self) -> HttpLimits {
        HttpLimits {
            body_limit_bytes: self.body_limit_bytes,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
        }
    }
}

/// What a single request may cost the server.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self { body_limit_bytes: 64 * 1024, request_timeout: Duration::from_secs(10) }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        <super::ApiConfig as clap::CommandFactory>::command().debug_assert();
    }
}

/// Bulkheads per route group and rate limits (`api/src/http/protect.rs`).
#[derive(clap::Args, Debug, Clone)]
pub struct ResilienceArgs {
    /// false turns circuit breakers, bulkheads and rate limits off: only for measuring what they cost.
    #[arg(long, env = "RESILIENCE_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub enabled: bool,
    /// Coupon issuance and policies: requests at once / waiting for a turn, as `CONCURRENCY/QUEUE`.
    #[arg(long, env = "BULKHEAD_ISSUANCE", default_value = "512/2048", value_parser = parse_bulkhead)]
    pub issuance: (u32, u32),
    /// Points: earn, use, cancel, balances, history.
    #[arg(long, env = "BULKHEAD_POINTS", default_value = "256/1024", value_parser = parse_bulkhead)]
    pub points: (u32, u32),
    /// The shop: catalogue, carts, orders.
    #[arg(long, env = "BULKHEAD_SHOP", default_value = "128/512", value_parser = parse_bulkhead)]
    pub shop: (u32, u32),
    /// Accounts: sign-up, login, refresh, profile, history (the password hashing pool sits inside it).
    #[arg(long, env = "BULKHEAD_ACCOUNTS", default_value = "128/512", value_parser = parse_bulkhead)]
    pub accounts: (u32, u32),
    /// Coupon issue requests one user may send per second, sustained.
    #[arg(long, env = "RATE_LIMIT_ISSUE_PER_SECOND", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub issue_per_second: u32,
    /// Issue requests one user may send at once before the per-second rate applies.
    #[arg(long, env = "RATE_LIMIT_ISSUE_BURST", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub issue_burst: u32,
    /// Requests without a token one client address may send per second, sustained.
    #[arg(long, env = "RATE_LIMIT_ANONYMOUS_PER_SECOND", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub anonymous_per_second: u32,
    /// Requests without a token one client address may send at once.
    #[arg(long, env = "RATE_LIMIT_ANONYMOUS_BURST", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub anonymous_burst: u32,
}

/// The same defaults as the command line's, for tests that build a configuration in code.
impl Default for ResilienceArgs {
    fn default() -> Self {
        Self {
            enabled: true,
            issuance: (512, 2048),
            points: (256, 1024),
            shop: (128, 512),
            accounts: (128, 512),
            issue_per_second: 5,
            issue_burst: 20,
            anonymous_per_second: 20,
            anonymous_burst: 50,
        }
    }
}

/// `CONCURRENCY/QUEUE`, e.g. `128/512`: at least one at once, any queue (0: refuse when all are busy).
fn parse_bulkhead(raw: &str) -> Result<(u32, u32), String> {
    let parsed =
        raw.split_once('/').and_then(|(c, q)| Some((c.trim().parse::<u32>().ok()?, q.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((concurrency, queue)) if (1..=100_000).contains(&concurrency) && queue <= 1_000_000 => {
            Ok((concurrency, queue))
        }
        _ => Err(format!("{raw:?} is not CONCURRENCY/QUEUE with CONCURRENCY 1 to 100000 and QUEUE 0 to 1000000")),
    }
}

//! Configuration pieces that each binary flattens into its own clap struct. Every field has a flag and
//! an environment variable; URLs that may carry secrets are only ever logged through [`redact_url`].

use clap::Args;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct PostgresArgs {
    /// PostgreSQL connection URL (may contain a password: never logged as is).
    #[arg(
        id = "database_url",
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "postgres://settle:settle@127.0.0.1:5432/settle",
        hide_env_values = true
    )]
    pub url: String,
    /// Largest number of pooled connections this process opens.
    #[arg(long = "db-max-connections", env = "DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub max_connections: u32,
    /// How long a caller waits for a pooled connection before failing, in milliseconds.
    #[arg(long = "db-acquire-timeout-ms", env = "DB_ACQUIRE_TIMEOUT_MS", default_value_t = 3_000)]
    pub acquire_timeout_ms: u64,
}

#[derive(Args, Debug, Clone)]
pub struct RedisArgs {
    /// Redis connection URL (may contain a password: never logged as is).
    #[arg(
        id = "redis_url",
        long = "redis-url",
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub url: String,
    /// Prefix of every key this process reads or writes, so environments can share one Redis.
    #[arg(long = "redis-key-prefix", env = "REDIS_KEY_PREFIX", default_value = "settle:")]
    pub key_prefix: String,
    /// Per-command response timeout in milliseconds.
    #[arg(long = "redis-timeout-ms", env = "REDIS_TIMEOUT_MS", default_value_t = 1_000)]
    pub timeout_ms: u64,
    /// Sentinels (host:port, comma-separated) to find the master through; each failover is followed.
    /// Empty: `REDIS_URL` names the server. With sentinels, `REDIS_URL` gives only credentials and database.
    #[arg(long = "redis-sentinels", env = "REDIS_SENTINELS", value_delimiter = ',')]
    pub sentinels: Vec<String>,
    /// The name the sentinels monitor the master under.
    #[arg(long = "redis-master-name", env = "REDIS_MASTER_NAME", default_value = "settle")]
    pub master_name: String,
}

#[derive(Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Comma-separated Kafka bootstrap servers.
    #[arg(long = "kafka-brokers", env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Prefix for topic and consumer-group names, so environments (and tests) never share them.
    #[arg(long = "kafka-topic-prefix", env = "KAFKA_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Partitions given to topics this process creates (at least the largest worker pool).
    #[arg(long = "kafka-partitions", env = "KAFKA_PARTITIONS", default_value_t = 8)]
    pub partitions: i32,
    /// How long a produce may wait for the broker's acknowledgement, in milliseconds.
    #[arg(long = "kafka-message-timeout-ms", env = "KAFKA_MESSAGE_TIMEOUT_MS", default_value_t = 10_000)]
    pub message_timeout_ms: u64,
    /// How long a producer holds a record to batch it with others, in milliseconds: longer batches cost
    /// the broker less per record and a request more latency.
    #[arg(long = "kafka-linger-ms", env = "KAFKA_LINGER_MS", default_value_t = 5)]
    pub linger_ms: u64,
}

#[derive(Args, Debug, Clone)]
pub struct TelemetryArgs {
    /// Log lines as JSON (for log shippers) instead of human-readable text.
    #[arg(long = "log-json", env = "LOG_JSON", default_value_t = false)]
    pub json: bool,
    /// Log filter in tracing's EnvFilter syntax.
    #[arg(long = "log-filter", env = "RUST_LOG", default_value = "info")]
    pub filter: String,
}

/// The bearer-token settings every binary that signs or verifies tokens shares (settle-api,
/// `settle-batch issue-token`, the benchmarks' seeders).
#[derive(Args, Debug, Clone)]
pub struct JwtArgs {
    /// HS256 secret that signs and verifies bearer tokens (at least 32 bytes; never logged).
    #[arg(id = "jwt_secret", long = "jwt-secret", env = "JWT_SECRET", hide_env_values = true)]
    pub secret: String,
    /// `iss` of every token, checked on every request.
    #[arg(long = "jwt-issuer", env = "JWT_ISSUER", default_value = crate::jwt::DEFAULT_ISSUER)]
    pub issuer: String,
    /// `aud` of every token, checked on every request.
    #[arg(long = "jwt-audience", env = "JWT_AUDIENCE", default_value = crate::jwt::DEFAULT_AUDIENCE)]
    pub audience: String,
}

impl JwtArgs {
    pub fn with_secret(secret: &str) -> Self {
        Self {
            secret: secret.to_owned(),
            issuer: crate::jwt::DEFAULT_ISSUER.to_owned(),
            audience: crate::jwt::DEFAULT_AUDIENCE.to_owned(),
        }
    }

    pub fn keys(&self) -> anyhow::Result<crate::jwt::JwtKeys> {
        crate::jwt::JwtKeys::new(&self.secret, &self.issuer, &self.audience)
    }
}

/// The payment provider: where it answers and with which key. By default the local sandbox
/// (`settle-sandbox`); the provider itself is `https://api.tosspayments.com` with a live or test secret key.
#[derive(Args, Debug, Clone)]
pub struct PaymentArgs {
    /// Base URL of the provider's API.
    #[arg(long = "payment-gateway-url", env = "PAYMENT_GATEWAY_URL", default_value = "http://127.0.0.1:18400")]
    pub gateway_url: String,
    /// The secret key the provider issued (sent as HTTP Basic `<key>:`; never logged).
    #[arg(
        long = "payment-secret-key",
        env = "PAYMENT_SECRET_KEY",
        default_value = "test_sk_settle_sandbox",
        hide_env_values = true
    )]
    pub secret_key: String,
    /// Longest a call to the provider may take, in milliseconds; past it the outcome is unknown.
    #[arg(id = "payment_timeout_ms", long = "payment-timeout-ms", env = "PAYMENT_TIMEOUT_MS", default_value_t = 5_000,
        value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub timeout_ms: u64,
}

impl Default for PaymentArgs {
    fn default() -> Self {
        Self {
            gateway_url: "http://127.0.0.1:18400".to_owned(),
            secret_key: "test_sk_settle_sandbox".to_owned(),
            timeout_ms: 5_000,
        }
    }
}

impl PaymentArgs {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// The time rules of an order's lifecycle (the API's moves and the background passes read the same ones).
#[derive(Args, Debug, Clone)]
pub struct OrderArgs {
    /// How long a placed order waits for its payment before it expires, in minutes.
    #[arg(long = "order-payment-window-minutes", env = "ORDER_PAYMENT_WINDOW_MINUTES", default_value_t = Self::PAYMENT_WINDOW_MINUTES,
        value_parser = clap::value_parser!(u32).range(1..=10_080))]
    pub payment_window_minutes: u32,
    /// How long after delivery the buyer may ask for a refund, in days.
    #[arg(long = "return-window-days", env = "RETURN_WINDOW_DAYS", default_value_t = Self::RETURN_WINDOW_DAYS,
        value_parser = clap::value_parser!(u32).range(0..=365))]
    pub return_window_days: u32,
    /// How long earned points stay spendable, in days: an admin's earn may say otherwise; purchase points
    /// and the points of a cancelled use whose lot expired meanwhile (regranted) get this.
    #[arg(long = "points-valid-days", env = "POINTS_VALID_DAYS", default_value_t = Self::POINTS_VALID_DAYS,
        value_parser = clap::value_parser!(u16).range(1..=i64::from(domain::points::MAX_VALID_DAYS)))]
    pub points_valid_days: u16,
}

impl OrderArgs {
    const PAYMENT_WINDOW_MINUTES: u32 = 15;
    const RETURN_WINDOW_DAYS: u32 = 7;
    const POINTS_VALID_DAYS: u16 = 365;

    /// How long earned points stay spendable unless an earn says otherwise.
    pub fn points_validity(&self) -> domain::points::Validity {
        domain::points::Validity::days(i64::from(self.points_valid_days)).expect("clap checked the range")
    }

    pub fn payment_window(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.payment_window_minutes))
    }

    pub fn lifecycle(&self) -> crate::shop::orders::LifecycleRules {
        crate::shop::orders::LifecycleRules {
            return_window: chrono::Duration::days(i64::from(self.return_window_days)),
            points_validity: self.points_validity(),
        }
    }
}

impl Default for OrderArgs {
    fn default() -> Self {
        Self {
            payment_window_minutes: Self::PAYMENT_WINDOW_MINUTES,
            return_window_days: Self::RETURN_WINDOW_DAYS,
            points_valid_days: Self::POINTS_VALID_DAYS,
        }
    }
}

/// Where the shop's business day runs from midnight to midnight: the one definition of "a day" for the
/// reconciliation batch and the daily point-activity projection.
#[derive(Args, Debug, Clone)]
pub struct BusinessTimeArgs {
    /// IANA time zone of the business day (e.g. Asia/Seoul).
    #[arg(long = "timezone", env = "BUSINESS_TIMEZONE", default_value = "Asia/Seoul", value_parser = parse_timezone)]
    pub timezone: chrono_tz::Tz,
}

fn parse_timezone(raw: &str) -> Result<chrono_tz::Tz, String> {
    raw.parse().map_err(|_| format!("time zone {raw:?} is not known (an IANA name such as Asia/Seoul)"))
}

impl BusinessTimeArgs {
    /// The business day that `instant` falls on.
    pub fn day_of(&self, instant: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
        instant.with_timezone(&self.timezone).date_naive()
    }

    /// The instant the business day `date` begins: its first midnight there, or the first instant after a
    /// midnight that a daylight-saving change skipped.
    pub fn start_of(&self, date: chrono::NaiveDate) -> chrono::DateTime<chrono::Utc> {
        use chrono::TimeZone;
        let mut local = date.and_time(chrono::NaiveTime::MIN);
        loop {
            if let Some(start) = self.timezone.from_local_datetime(&local).earliest() {
                return start.with_timezone(&chrono::Utc);
            }
            local += chrono::Duration::minutes(1);
        }
    }
}

impl PostgresArgs {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

impl RedisArgs {
    /// Settings for one Redis server at `url` (no sentinels).
    pub fn server(url: String, key_prefix: String, timeout_ms: u64) -> Self {
        Self { url, key_prefix, timeout_ms, sentinels: Vec::new(), master_name: "settle".to_owned() }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// A URL fit for logs: the password, if any, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{redact_url, BusinessTimeArgs};

    #[test]
    fn the_business_day_of_an_instant_is_its_date_in_the_business_zone() {
        let seoul = BusinessTimeArgs { timezone: chrono_tz::Asia::Seoul };
        let late_utc: chrono::DateTime<chrono::Utc> = "2026-11-30T16:30:00Z".parse().expect("instant");
        assert_eq!(seoul.day_of(late_utc).to_string(), "2026-12-01", "01:30 in Seoul is already the next day");
        assert!(super::parse_timezone("Mars/Olympus").unwrap_err().contains("not known"));
    }

    #[test]
    fn a_business_day_starts_at_its_first_local_midnight_or_right_after_a_skipped_one() {
        let date = |raw: &str| raw.parse::<chrono::NaiveDate>().expect("date");
        let seoul = BusinessTimeArgs { timezone: chrono_tz::Asia::Seoul };
        assert_eq!(seoul.start_of(date("2026-12-01")).to_rfc3339(), "2026-11-30T15:00:00+00:00");
        // Santiago skipped 2022-09-11 00:00-00:59 (clocks went from 24:00 to 01:00).
        let santiago = BusinessTimeArgs { timezone: chrono_tz::America::Santiago };
        assert_eq!(santiago.start_of(date("2022-09-11")).to_rfc3339(), "2022-09-11T04:00:00+00:00");
    }

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://settle:s3cret@127.0.0.1:5432/settle"),
            "postgres://settle:***@127.0.0.1:5432/settle"
        );
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact_url("redis://:pw@host:1"), "redis://:***@host:1");
    }
}

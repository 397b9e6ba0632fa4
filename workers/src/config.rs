use crate::{outbox_relay::cleanup::Retention, WorkerSettings};
use clap::Parser;
use infra::config::{BusinessTimeArgs, KafkaArgs, PostgresArgs, RedisArgs, TelemetryArgs};
use std::{net::SocketAddr, time::Duration};

/// settle-workers: Kafka consumers and the outbox relay.
#[derive(Parser, Debug, Clone)]
#[command(name = "settle-workers", version)]
pub struct WorkersConfig {
    /// Run only these workers (comma-separated names); all registered workers when empty.
    #[arg(long, env = "WORKERS_ONLY", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Concurrent tasks each worker runs in this process.
    #[arg(long, env = "WORKERS_CONCURRENCY", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Most records a worker handles in one database transaction.
    #[arg(long, env = "WORKERS_BATCH_SIZE", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_size: u32,
    /// Longest a worker waits to fill a batch after its first record, in milliseconds.
    #[arg(long, env = "WORKERS_BATCH_WAIT_MS", default_value_t = 20)]
    pub batch_wait_ms: u64,
    /// Attempts at a failing (non-transient) record before it goes to the dead-letter topic.
    #[arg(long, env = "WORKERS_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// How often an idle outbox relay polls when no LISTEN/NOTIFY wake-up arrives, in milliseconds.
    #[arg(long, env = "OUTBOX_POLL_MS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub outbox_poll_ms: u64,
    /// Failed deliveries of one outbox row before it is parked (kept, skipped with the rest of its
    /// aggregate, listed by `settle-batch outbox parked`).
    #[arg(long, env = "OUTBOX_MAX_ATTEMPTS", default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=1_000))]
    pub outbox_max_attempts: i32,
    /// Hours sent outbox rows and consumer dedupe rows are kept before cleanup deletes them.
    #[arg(long, env = "OUTBOX_RETENTION_HOURS", default_value_t = 168, value_parser = clap::value_parser!(u64).range(1..=8_760))]
    pub outbox_retention_hours: u64,
    /// Hours the API's idempotency keys are kept: a retry within them gets the first answer again.
    #[arg(long, env = "IDEMPOTENCY_RETENTION_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=8_760))]
    pub idempotency_retention_hours: u64,
    /// Days login attempts stay in the login history.
    #[arg(long, env = "LOGIN_HISTORY_RETENTION_DAYS", default_value_t = 365, value_parser = clap::value_parser!(u64).range(1..=3_650))]
    pub login_history_retention_days: u64,
    /// Address of the ops endpoints (/health/live, /health/ready, /metrics).
    #[arg(long, env = "WORKERS_OPS_ADDR", default_value = "127.0.0.1:9101")]
    pub ops_addr: SocketAddr,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub breakers: infra::breaker::BreakerArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub business_time: BusinessTimeArgs,
    #[command(flatten)]
    pub payments: infra::config::PaymentArgs,
    #[command(flatten)]
    pub orders: infra::config::OrderArgs,
    /// How often the payment-resolution pass runs (unanswered payments and refunds, expiry), in milliseconds.
    #[arg(long, env = "PAYMENT_RESOLUTION_EVERY_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub payment_resolution_every_ms: u64,
    /// Points a confirmed purchase earns, in basis points of what was paid (100 = 1%).
    #[arg(long, env = "PURCHASE_POINTS_RATE_BPS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub purchase_points_rate_bps: u32,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

impl WorkersConfig {
    pub fn settings(&self) -> WorkerSettings {
        WorkerSettings {
            batch_size: self.batch_size as usize,
            batch_wait: Duration::from_millis(self.batch_wait_ms),
            max_attempts: self.max_attempts,
            outbox_poll: Duration::from_millis(self.outbox_poll_ms),
            retention: Retention {
                outbox: hours(self.outbox_retention_hours),
                idempotency_keys: hours(self.idempotency_retention_hours),
                login_history: hours(self.login_history_retention_days * 24),
            },
            outbox_max_attempts: self.outbox_max_attempts,
            business_time: self.business_time.clone(),
            payments: crate::worker::PaymentSettings {
                provider: self.payments.clone(),
                breakers: self.breakers.clone(),
                orders: self.orders.clone(),
                every: Duration::from_millis(self.payment_resolution_every_ms),
            },
            purchase_points_rate_bps: self.purchase_points_rate_bps,
        }
    }
}

fn hours(hours: u64) -> Duration {
    Duration::from_secs(hours * 3_600)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        <super::WorkersConfig as clap::CommandFactory>::command().debug_assert();
    }
}

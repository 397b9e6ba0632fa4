use clap::Parser;
use infra::config::{KafkaArgs, PostgresArgs, RedisArgs, TelemetryArgs};
use std::net::SocketAddr;

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
    /// Address of the ops endpoints (/health/live, /health/ready, /metrics).
    #[arg(long, env = "WORKERS_OPS_ADDR", default_value = "127.0.0.1:9101")]
    pub ops_addr: SocketAddr,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        <super::WorkersConfig as clap::CommandFactory>::command().debug_assert();
    }
}

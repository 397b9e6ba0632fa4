use clap::Parser;
use infra::config::{JwtArgs, KafkaArgs, PostgresArgs, RedisArgs, TelemetryArgs};
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
    #[command(flatten)]
    pub jwt: JwtArgs,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
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

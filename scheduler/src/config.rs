use clap::Parser;
use infra::config::{PostgresArgs, TelemetryArgs};
use std::{net::SocketAddr, time::Duration};

/// settle-scheduler: cron triggers for batch jobs, one leader among replicas.
#[derive(Parser, Debug, Clone)]
#[command(name = "settle-scheduler", version)]
pub struct SchedulerConfig {
    /// Address of the ops endpoints (/health/live, /health/ready, /metrics).
    #[arg(long, env = "SCHEDULER_OPS_ADDR", default_value = "127.0.0.1:9102")]
    pub ops_addr: SocketAddr,
    /// How often a follower retries the leader lock, in milliseconds.
    #[arg(long, env = "SCHEDULER_LEADER_POLL_MS", default_value_t = 1_000)]
    pub leader_poll_ms: u64,
    /// Name of this replica in logs and firing records; host name and process id by default.
    #[arg(long, env = "SCHEDULER_IDENTITY")]
    pub identity: Option<String>,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

impl SchedulerConfig {
    pub fn leader_poll(&self) -> Duration {
        Duration::from_millis(self.leader_poll_ms)
    }

    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
            format!("{}-{}", if host.is_empty() { "scheduler" } else { &host }, std::process::id())
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        <super::SchedulerConfig as clap::CommandFactory>::command().debug_assert();
    }
}

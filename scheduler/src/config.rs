use clap::{Parser, Subcommand};
use infra::config::{PostgresArgs, TelemetryArgs};
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// settle-scheduler: fires batch jobs on cron schedules; one leader among replicas.
///
/// Without a subcommand it runs the scheduler (as `run` does).
#[derive(Parser, Debug, Clone)]
#[command(name = "settle-scheduler", version)]
pub struct SchedulerCli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The schedule file (TOML); `scheduler/schedule.toml` is the annotated example.
    #[arg(long, env = "SCHEDULE_FILE", default_value = "scheduler/schedule.toml", global = true)]
    pub schedule: PathBuf,
    /// Address of the ops endpoints (/health/live, /health/ready, /metrics).
    #[arg(long, env = "SCHEDULER_OPS_ADDR", default_value = "127.0.0.1:9102")]
    pub ops_addr: SocketAddr,
    /// How often a follower retries the leader lock (and a leader checks it still holds it), in ms.
    #[arg(long, env = "SCHEDULER_LEADER_POLL_MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub leader_poll_ms: u64,
    /// Name of this replica in logs and firing records; host name and process id by default.
    #[arg(long, env = "SCHEDULER_IDENTITY", global = true)]
    pub identity: Option<String>,
    /// The settle-batch binary entries with a `command` run; by default the one beside this binary,
    /// else `settle-batch` from PATH.
    #[arg(long, env = "SETTLE_BATCH_BIN", global = true)]
    pub batch_bin: Option<PathBuf>,
    /// How long a job may take to stop after SIGTERM (on timeout or shutdown) before it is killed, in s.
    #[arg(long, env = "SCHEDULER_STOP_GRACE_SECS", default_value_t = 30, global = true,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub stop_grace_secs: u64,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Run the scheduler: compete for leadership, fire entries while leading (the default).
    Run,
    /// Print the entries with their next fire times (reads only the schedule file).
    List {
        /// Fire times to show per entry.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
        count: u16,
    },
    /// Print recent firings, newest first.
    History {
        /// How many to list.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        /// Only this entry's firings.
        #[arg(long)]
        entry: Option<String>,
    },
    /// Fire one entry now, outside its schedule, and wait for it (recorded like any firing; the
    /// entry's overlap policy still applies). Exits with 0 if the job succeeded.
    RunNow {
        /// The entry's name in the schedule file.
        name: String,
    },
}

impl SchedulerCli {
    pub fn leader_poll(&self) -> Duration {
        Duration::from_millis(self.leader_poll_ms)
    }

    pub fn stop_grace(&self) -> Duration {
        Duration::from_secs(self.stop_grace_secs)
    }

    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
            format!("{}-{}", if host.is_empty() { "scheduler" } else { &host }, std::process::id())
        })
    }

    /// The batch binary: the flag, else `settle-batch` beside this executable, else from PATH.
    pub fn batch_bin(&self) -> PathBuf {
        if let Some(path) = &self.batch_bin {
            return path.clone();
        }
        let beside = std::env::current_exe().ok().and_then(|me| Some(me.parent()?.join("settle-batch")));
        beside.filter(|path| path.is_file()).unwrap_or_else(|| PathBuf::from("settle-batch"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        <super::SchedulerCli as clap::CommandFactory>::command().debug_assert();
    }
}

use clap::{Parser, Subcommand};
use infra::config::{PostgresArgs, TelemetryArgs};

/// settle-batch: the shop's batch jobs.
#[derive(Parser, Debug)]
#[command(name = "settle-batch", version)]
pub struct BatchCli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub postgres: PostgresArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Apply pending database migrations (idempotent).
    Migrate,
    /// Check that the database answers; prints a JSON readiness report.
    Check,
    /// Create an account (e.g. the first admin); the password is read from standard input.
    CreateUser(crate::accounts::CreateUserArgs),
    /// Print a bearer token signed with JWT_SECRET (for benchmarks and the demo; people log in instead).
    IssueToken(IssueTokenArgs),
    /// Create users, a realistic point ledger and balances (some deliberately wrong), with COPY.
    SeedPoints(crate::seed::SeedArgs),
    /// Create purchases confirmed during a business day (for tests, the demo and benchmarks); prints the ids as JSON.
    SeedSales(crate::seed_sales::SeedSalesArgs),
    /// Create products with options and stock (for demos and benchmarks); prints the ids as JSON.
    SeedCatalogue(crate::catalogue::SeedCatalogueArgs),
    /// The daily reconciliation: closing snapshots per user and date, and balances checked against the ledger.
    ReconcilePoints(crate::jobs::reconcile::ReconcileArgs),
    /// Purchase confirmation of orders delivered AUTO_CONFIRM_DAYS ago that the buyer did not confirm.
    AutoConfirm(crate::jobs::auto_confirm::AutoConfirmArgs),
    /// Expiry of the points whose validity ended by the end of a business date (lots closed, EXPIRE entries).
    ExpirePoints(crate::jobs::expire_points::ExpirePointsArgs),
    /// Advance notices (60, 30 and 3 days ahead) of the dates on which users' points expire.
    NotifyExpiringPoints(crate::jobs::notify_expiring::NotifyExpiringArgs),
    /// Daily sales settlement: a line per order item sold (confirmed) or reversed on a business date, the
    /// day's summaries, and the gates that close the day.
    SettleSales(crate::jobs::settle_sales::SettleSalesArgs),
    /// Payment reconciliation: the provider's settlement lines of a business date against our payments.
    ReconcilePayments(crate::jobs::reconcile_payments::ReconcilePaymentsArgs),
    /// A settled day for finance: `settlement export --date D` writes its lines and summaries as CSV.
    #[command(subcommand)]
    Settlement(crate::jobs::settle_sales::export::SettlementCommand),
    /// Parked outbox rows: list them, or re-drive one.
    #[command(subcommand)]
    Outbox(crate::outbox::OutboxCommand),
    /// List recent batch executions, newest first; `runs show ID` for one in detail.
    Runs(RunsArgs),
    /// The jobs the repository records, and their options.
    Jobs,
    /// Ask a running execution to stop: it ends within one chunk as STOPPED (restartable).
    Stop {
        /// The execution (`settle-batch runs` lists them).
        execution: i64,
    },
    /// Run a FAILED or STOPPED execution again with its recorded options: only its unfinished partitions.
    Restart {
        /// The execution (`settle-batch runs` lists them).
        execution: i64,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunsArgs {
    /// How many to list.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub limit: i64,
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// One execution: parameters, arguments, outcome, duration, rows/s, and each partition's counts.
    Show { execution: i64 },
}

#[derive(clap::Args, Debug)]
pub struct IssueTokenArgs {
    /// The user the token speaks for.
    #[arg(long, value_parser = parse_user)]
    pub user: domain::UserId,
    /// USER or ADMIN.
    #[arg(long, default_value = "USER")]
    pub role: domain::Role,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86_400 * 30))]
    pub ttl_secs: u64,
    #[command(flatten)]
    pub jwt: infra::config::JwtArgs,
}

/// Each job of [`crate::jobs::NAMES`] with what it does and its options, from the command-line definition itself.
pub fn describe_jobs() -> String {
    let command = <BatchCli as clap::CommandFactory>::command();
    let mut text = String::new();
    for job in command.get_subcommands().filter(|sub| crate::jobs::NAMES.contains(&sub.get_name())) {
        text.push_str(&format!("{}: {}\n", job.get_name(), job.get_about().map(|a| a.to_string()).unwrap_or_default()));
        for arg in job.get_arguments().filter(|arg| !arg.is_hide_set()) {
            let Some(long) = arg.get_long() else { continue };
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let default: Vec<_> = arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
            let default = if default.is_empty() { String::new() } else { format!(" [default: {}]", default.join(",")) };
            text.push_str(&format!("  --{long:<24} {help}{default}\n"));
        }
    }
    text
}

fn parse_user(raw: &str) -> Result<domain::UserId, String> {
    let id: i64 = raw.parse().map_err(|_| format!("{raw:?} is not a whole number"))?;
    domain::UserId::parse(id).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        <super::BatchCli as clap::CommandFactory>::command().debug_assert();
    }
}

//! settle-bench: the pieces the coupon benchmark and the demo need around the real binaries.

mod accounts;
mod check;
mod consume;
mod histogram;
mod latency;
mod orders;
mod origin;
mod points;
mod produce;
mod purchases;
mod relay;
mod rush;
mod seed;
mod settlements;

use clap::{Parser, Subcommand};
use infra::config::{KafkaArgs, PostgresArgs, TelemetryArgs};
use std::process::ExitCode;

/// Helpers for scripts/bench-coupons and scripts/demo.
#[derive(Parser, Debug)]
#[command(name = "settle-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    postgres: PostgresArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create users and coupon policies, and write one "token policy" line per user for the load tool.
    SeedRush(seed::SeedArgs),
    /// Send each line of a requests file as an issue request (repeated) and tally the answers.
    Rush(rush::RushArgs),
    /// The bare-producer ceiling: send issue-request records with the API's producer settings.
    Produce(produce::ProduceArgs),
    /// The bare-consumer ceiling: read records with the workers' consumer settings, nothing else.
    Consume(consume::ConsumeArgs),
    /// Wait until the issuance worker has decided N requests; print how long it took.
    WaitDecided(check::WaitArgs),
    /// Check the invariants of the given policies; exit 1 on any breach.
    Check(check::CheckArgs),
    /// Create users with balances and write "token user-id" lines for the balance lookup load.
    SeedPoints(points::SeedPointsArgs),
    /// The outbox relay against a bare producer, then its commit-to-publish latency at a steady rate.
    Relay(relay::RelayArgs),
    /// The origin's reconciliation method (OFFSET pages, row-at-a-time) on a sample, extrapolated.
    OriginBaseline(origin::OriginArgs),
    /// Clients logging in (or refreshing) in a loop against settle-api; latencies by outcome.
    Accounts(accounts::AccountsArgs),
    /// Create buyers (a third with a coupon, a third with points) and one order request line each.
    SeedOrders(orders::SeedOrdersArgs),
    /// Send each order request line once against settle-api; placed orders per second, latencies by outcome.
    Orders(orders::OrdersArgs),
    /// Write orders in the state the clock-driven jobs work on (delivered a week ago; unpaid past due).
    SeedPurchases(purchases::SeedPurchasesArgs),
    /// Expire every unpaid order that is due with the expiry's bulk step; rows per second.
    Expire(purchases::ExpireArgs),
    /// A quantile of one route's latency histogram between two /metrics scrapes.
    HistogramQuantile(histogram::QuantileArgs),
    /// Fetch every page of the provider's settlement lines of a day, nothing else (reconciliation's ceiling).
    FetchSettlements(settlements::FetchSettlementsArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = cli.telemetry.clone();
    infra::binary::run("settle-bench", &telemetry, async move {
        match cli.command {
            Command::SeedRush(args) => seed::run(&cli.postgres, args).await,
            Command::SeedPurchases(args) => purchases::seed(&cli.postgres, args).await,
            Command::Expire(args) => purchases::expire(&cli.postgres, args).await,
            Command::Rush(args) => rush::run(args).await,
            Command::Produce(args) => produce::run(&cli.kafka, args).await,
            Command::Consume(args) => consume::run(&cli.kafka, args).await,
            Command::WaitDecided(args) => check::wait(&cli.postgres, args).await,
            Command::Check(args) => check::check(&cli.postgres, args).await,
            Command::SeedPoints(args) => points::seed(&cli.postgres, args).await,
            Command::Relay(args) => relay::run(&cli.postgres, &cli.kafka, args).await,
            Command::HistogramQuantile(args) => histogram::run(args),
            Command::Accounts(args) => accounts::run(args).await,
            Command::SeedOrders(args) => orders::seed(&cli.postgres, args).await,
            Command::Orders(args) => orders::run(args).await,
            Command::OriginBaseline(args) => origin::run(&cli.postgres, args).await,
            Command::FetchSettlements(args) => settlements::fetch(args).await,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}

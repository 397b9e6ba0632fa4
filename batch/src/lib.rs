//! settle-batch: one binary, one subcommand per job. Exit codes are part of the interface (Jenkins and
//! the scheduler read them): see [`Exit`].

mod accounts;
mod catalogue;
mod cli;
pub mod job;
pub mod jobs;
mod outbox;
mod seed;
mod seed_sales;

pub use cli::{BatchCli, Command, RunsArgs, RunsCommand};
pub use infra::binary::Exit;

use anyhow::Context;
use infra::ops::Readiness;
use job::repository::{self as runs, Restartable};
use jobs::{auto_confirm, expire_points, notify_expiring, reconcile, reconcile_payments, settle_sales};

pub async fn run(cli: BatchCli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Migrate => {
            let pool = infra::db::connect(&cli.postgres).await?;
            infra::db::migrate(&pool).await?;
            let applied: i64 =
                // Not a macro: `_sqlx_migrations` is the migrator's own bookkeeping, not part of our schema.
                sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success").fetch_one(&pool).await?;
            tracing::info!(applied, "database schema is up to date");
            println!("migrations applied: {applied}");
            Ok(Exit::Success)
        }
        Command::Check => {
            let pool = infra::db::connect(&cli.postgres).await?;
            let report = Readiness::new().with_postgres(pool).report().await;
            println!("{}", serde_json::to_string(&report)?);
            Ok(if report.failed.is_empty() { Exit::Success } else { Exit::Failure })
        }
        Command::SeedPoints(args) => {
            let pool = connect_for(&cli.postgres, args.threads).await?;
            seed::run(&pool, args).await.map(|()| Exit::Success)
        }
        Command::SeedSales(args) => {
            let pool = infra::db::connect(&cli.postgres).await?;
            seed_sales::run(&pool, args).await.map(|()| Exit::Success)
        }
        Command::SeedCatalogue(args) => {
            let pool = infra::db::connect(&cli.postgres).await?;
            catalogue::run(&pool, args).await.map(|()| Exit::Success)
        }
        Command::ReconcilePoints(args) => {
            let pool = connect_for(&cli.postgres, args.threads).await?;
            reconcile::run(&pool, args).await
        }
        Command::AutoConfirm(args) => {
            let pool = connect_for(&cli.postgres, args.run.workers).await?;
            auto_confirm::run(&pool, args).await
        }
        Command::ExpirePoints(args) => {
            let pool = connect_for(&cli.postgres, args.run.workers).await?;
            expire_points::run(&pool, args).await
        }
        Command::NotifyExpiringPoints(args) => {
            let pool = connect_for(&cli.postgres, args.run.workers).await?;
            notify_expiring::run(&pool, args).await
        }
        Command::SettleSales(args) => {
            let pool = connect_for(&cli.postgres, args.run.workers).await?;
            settle_sales::run(&pool, args).await
        }
        Command::ReconcilePayments(args) => {
            let pool = infra::db::connect(&cli.postgres).await?;
            reconcile_payments::run(&pool, args).await
        }
        Command::Settlement(command) => {
            let pool = infra::db::connect(&cli.postgres).await?;
            settle_sales::export::run(&pool, command).await
        }
        Command::Runs(RunsArgs { limit, command }) => {
            let pool = infra::db::connect(&cli.postgres).await?;
            let lines = match command {
                None => runs::recent(&pool, limit).await?,
                Some(RunsCommand::Show { execution }) => match runs::show(&pool, execution).await? {
                    Some(lines) => lines,
                    None => {
                        eprintln!("settle-batch: there is no execution {execution}");
                        return Ok(Exit::BadArguments);
                    }
                },
            };
            for line in lines {
                println!("{line}");
            }
            Ok(Exit::Success)
        }
        Command::Jobs => {
            print!("{}", cli::describe_jobs());
            Ok(Exit::Success)
        }
        Command::Stop { execution } => {
            let pool = infra::db::connect(&cli.postgres).await?;
            match infra::jobs::request_stop(&pool, execution).await? {
                Ok(()) => {
                    println!("execution {execution}: stop requested; it ends within one chunk as STOPPED");
                    Ok(Exit::Success)
                }
                Err(status) => {
                    match status {
                        Some(status) => eprintln!("settle-batch: execution {execution} is {status}, not running"),
                        None => eprintln!("settle-batch: there is no execution {execution}"),
                    }
                    Ok(Exit::BadArguments)
                }
            }
        }
        Command::Restart { execution } => {
            let pool = infra::db::connect(&cli.postgres).await?;
            match runs::restartable(&pool, execution).await? {
                Restartable::Yes { job, arguments } => {
                    let recorded = std::iter::once("settle-batch".to_owned()).chain(arguments);
                    let again = <BatchCli as clap::Parser>::try_parse_from(recorded).with_context(|| {
                        format!("execution {execution} of {job} recorded arguments this version refuses")
                    })?;
                    println!("execution {execution}: restarting {job}");
                    let again = BatchCli { command: again.command, postgres: cli.postgres, telemetry: cli.telemetry };
                    Box::pin(run(again)).await
                }
                Restartable::No { status } => {
                    eprintln!("settle-batch: execution {execution} is {status}: only FAILED or STOPPED runs restart");
                    Ok(Exit::BadArguments)
                }
                Restartable::Unknown => {
                    eprintln!("settle-batch: there is no execution {execution}");
                    Ok(Exit::BadArguments)
                }
            }
        }
        Command::CreateUser(args) => {
            let pool = infra::db::connect(&cli.postgres).await?;
            accounts::create_user(&pool, args).await
        }
        Command::Outbox(command) => {
            let pool = infra::db::connect(&cli.postgres).await?;
            outbox::run(&pool, command).await
        }
        Command::IssueToken(args) => {
            let keys = args.jwt.keys()?;
            println!("{}", keys.issue(args.user, args.role, std::time::Duration::from_secs(args.ttl_secs))?);
            Ok(Exit::Success)
        }
    }
}

/// A pool with room for two connections per thread plus the run lock and the exported snapshot.
async fn connect_for(postgres: &infra::config::PostgresArgs, threads: u16) -> anyhow::Result<sqlx::PgPool> {
    let mut postgres = postgres.clone();
    postgres.max_connections = postgres.max_connections.max(u32::from(threads) * 2 + 3);
    infra::db::connect(&postgres).await
}

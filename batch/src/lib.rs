//! settle-batch: one binary, one subcommand per job. Exit codes are part of the interface (Jenkins and
//! the scheduler read them): see [`Exit`].

mod accounts;
pub mod auto_confirm;
mod catalogue;
mod cli;
pub mod expire_points;
mod jobs;
mod notify_expiring;
mod outbox;
mod partitions;
mod progress;
pub mod reconcile;
mod seed;

pub use cli::{BatchCli, Command};
pub use infra::binary::Exit;

use infra::ops::Readiness;

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
        Command::SeedCatalogue(args) => {
            let pool = infra::db::connect(&cli.postgres).await?;
            catalogue::run(&pool, args).await.map(|()| Exit::Success)
        }
        Command::ReconcilePoints(args) => {
            let pool = connect_for(&cli.postgres, args.threads).await?;
            reconcile::run(&pool, args).await
        }
        Command::AutoConfirm(args) => {
            let pool = connect_for(&cli.postgres, args.workers).await?;
            auto_confirm::run(&pool, args).await
        }
        Command::ExpirePoints(args) => {
            let pool = connect_for(&cli.postgres, args.workers).await?;
            expire_points::run(&pool, args).await
        }
        Command::NotifyExpiringPoints(args) => {
            let pool = connect_for(&cli.postgres, args.workers).await?;
            notify_expiring::run(&pool, args).await
        }
        Command::Runs { limit } => {
            let pool = infra::db::connect(&cli.postgres).await?;
            for line in jobs::recent(&pool, limit).await? {
                println!("{line}");
            }
            Ok(Exit::Success)
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

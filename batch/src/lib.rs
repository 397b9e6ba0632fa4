//! settle-batch: one binary, one subcommand per job. Exit codes are part of the interface (Jenkins and
//! the scheduler read them): see [`ExitStatus`].

mod cli;
mod exit;

pub use cli::{BatchCli, Command};
pub use exit::ExitStatus;

use infra::health::Readiness;

pub async fn run(cli: BatchCli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Migrate => {
            let pool = infra::db::connect(&cli.postgres).await?;
            infra::db::migrate(&pool).await?;
            let applied: i64 =
                sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success").fetch_one(&pool).await?;
            tracing::info!(applied, "database schema is up to date");
            println!("migrations applied: {applied}");
            Ok(ExitStatus::Success)
        }
        Command::Check => {
            let pool = infra::db::connect(&cli.postgres).await?;
            let report = Readiness::new().with_postgres(pool).report().await;
            println!("{}", serde_json::to_string(&report)?);
            Ok(if report.failed.is_empty() { ExitStatus::Success } else { ExitStatus::Failure })
        }
        Command::IssueToken(args) => {
            let keys = infra::jwt::JwtKeys::from_secret(&args.jwt_secret)?;
            println!("{}", keys.issue(args.user, args.role, std::time::Duration::from_secs(args.ttl_secs))?);
            Ok(ExitStatus::Success)
        }
    }
}

//! settle-scheduler: fires batch jobs on cron schedules. Replicas compete for one PostgreSQL advisory
//! lock; only the holder fires, and another takes over when it dies (its session ends, the lock with it).
//! Every firing is a row in `scheduler_firings`, unique per entry and slot.

mod child;
mod commands;
mod config;
mod entry_lock;
mod firer;
mod firing_records;
mod job_metrics;
mod leader_lock;
mod replica;
mod requests;
pub mod schedule;

pub use config::{Command, SchedulerCli};
pub use firing_records::FiringRow;
pub use leader_lock::LeaderLock;

use anyhow::Context;
use firer::Firer;
use infra::binary::Exit;
use infra::ops::Readiness;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub async fn run(cli: SchedulerCli, shutdown: CancellationToken) -> anyhow::Result<Exit> {
    let schedule = match schedule::load(&cli.schedule) {
        Ok(schedule) => Arc::new(schedule),
        Err(error) => {
            eprintln!("settle-scheduler: the schedule file is not usable: {error}");
            return Ok(Exit::BadArguments);
        }
    };
    match cli.command.clone().unwrap_or(Command::Run) {
        Command::List { count } => {
            for line in commands::list(&schedule, usize::from(count), chrono::Utc::now()) {
                println!("{line}");
            }
            Ok(Exit::Success)
        }
        Command::History { limit, entry } => {
            let pool = infra::db::connect(&cli.postgres).await?;
            for line in commands::history(&pool, entry.as_deref(), limit).await? {
                println!("{line}");
            }
            Ok(Exit::Success)
        }
        Command::RunNow { name } => {
            let Some(entry) = schedule.entry(&name) else {
                let known: Vec<&str> = schedule.entries.iter().map(|entry| entry.name.as_str()).collect();
                eprintln!(
                    "settle-scheduler: no entry named {name:?} in {}; entries: {}",
                    cli.schedule.display(),
                    known.join(", ")
                );
                return Ok(Exit::BadArguments);
            };
            let pool = infra::db::connect(&cli.postgres).await?;
            let firer = firer(&cli, pool, format!("run-now:{}", cli.identity()), shutdown);
            commands::run_now(&firer, entry).await
        }
        Command::Run => serve(cli, schedule, shutdown).await.map(|()| Exit::Success),
    }
}

async fn serve(
    cli: SchedulerCli,
    schedule: Arc<schedule::Schedule>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let pool = infra::db::connect(&cli.postgres).await?;
    let readiness = Readiness::new().with_postgres(pool.clone());
    let ops = infra::ops::ops_router(readiness, infra::metrics::install()?);
    let ops_listener = infra::ops::bind_ops(cli.ops_addr).await?;
    let ops_server = tokio::spawn(infra::ops::serve_ops(ops_listener, ops, shutdown.clone()));
    let job_metrics = tokio::spawn(job_metrics::refresh_until(pool.clone(), shutdown.clone()));

    let identity = cli.identity();
    let names: Vec<&str> = schedule.entries.iter().map(|entry| entry.name.as_str()).collect();
    tracing::info!(identity = %identity, entries = ?names, file = %cli.schedule.display(), "settle-scheduler ready");
    let firer = Arc::new(firer(&cli, pool.clone(), identity.clone(), shutdown.clone()));
    let lock = LeaderLock::new(pool, identity);
    replica::run(firer, schedule, lock, cli.leader_poll(), shutdown).await;
    ops_server.await.context("the ops server task")??;
    job_metrics.await.context("the job metrics task")?;
    tracing::info!("settle-scheduler stopped");
    Ok(())
}

fn firer(cli: &SchedulerCli, pool: sqlx::PgPool, identity: String, stop: CancellationToken) -> Firer {
    Firer {
        pool,
        identity,
        batch_bin: cli.batch_bin(),
        database_url: cli.postgres.url.clone(),
        stop_grace: cli.stop_grace(),
        stop,
    }
}

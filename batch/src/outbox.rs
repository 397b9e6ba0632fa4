//! `settle-batch outbox`: what an operator does about parked outbox rows (deliveries that failed
//! OUTBOX_MAX_ATTEMPTS times and now hold back the rest of their aggregate).

use crate::Exit;
use clap::Subcommand;
use infra::outbox::parked;
use sqlx::PgPool;

#[derive(Subcommand, Debug)]
pub enum OutboxCommand {
    /// List parked rows, oldest first, with their last error and how many rows wait behind each.
    Parked {
        /// How many to list.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Put a parked row back in the relay's queue (fix its cause first); its aggregate flows again.
    Retry {
        /// The outbox row's id, as `outbox parked` lists it.
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        id: i64,
    },
}

pub async fn run(pool: &PgPool, command: OutboxCommand) -> anyhow::Result<Exit> {
    match command {
        OutboxCommand::Parked { limit } => {
            let rows = parked::list(pool, limit).await?;
            println!("{} parked outbox row(s)", rows.len());
            for row in rows {
                println!(
                    "id={} aggregate={}/{} event={} attempts={} parked_at={} waiting_behind={} last_error={}",
                    row.id,
                    row.aggregate_type,
                    row.aggregate_id,
                    row.event_type,
                    row.attempts,
                    row.parked_at.to_rfc3339(),
                    row.waiting,
                    row.last_error.as_deref().unwrap_or("-"),
                );
            }
            Ok(Exit::Success)
        }
        OutboxCommand::Retry { id } => {
            if parked::retry(pool, id).await? {
                tracing::info!(id, "parked outbox row re-driven");
                println!("outbox row {id} is queued again");
                Ok(Exit::Success)
            } else {
                eprintln!("settle-batch: no parked outbox row {id} (see `settle-batch outbox parked`)");
                Ok(Exit::BadArguments)
            }
        }
    }
}

//! PostgreSQL: the pool every binary uses and the migrations that `settle-batch migrate` applies.

use crate::config::{redact_url, PostgresArgs};
use anyhow::Context;
use sqlx::{migrate::Migrator, postgres::PgPoolOptions, PgPool};

/// The schema under `migrations/`, embedded at build time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Opens the pool and proves it with one round trip, so a wrong URL fails at start-up, not on first use.
pub async fn connect(args: &PostgresArgs) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(args.max_connections)
        .acquire_timeout(args.acquire_timeout())
        .connect(&args.url)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redact_url(&args.url)))?;
    Ok(pool)
}

/// Applies every pending migration; already-applied ones are checked against their checksums.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("applying database migrations")
}

/// The constraint a failed statement violated, if it failed on one.
pub fn violated_constraint(error: &sqlx::Error) -> Option<&str> {
    error.as_database_error()?.constraint()
}

/// SQLSTATEs that mean the server cannot serve now (not that the statement was wrong): connection
/// exceptions (class 08), shutdown or restart in progress (57P01-57P03), no connection slot (53300).
const UNAVAILABLE_STATES: [&str; 4] = ["57P01", "57P02", "57P03", "53300"];

/// True when `error` means PostgreSQL is unreachable or restarting, or the pool has no connection to
/// give: an outage, answered 503 and safe to retry, never a bug. A write failing this way during its
/// commit has an unknown outcome; callers make retries safe with idempotency keys or natural keys.
pub fn is_outage(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => {
            database.code().is_some_and(|code| code.starts_with("08") || UNAVAILABLE_STATES.contains(&code.as_ref()))
        }
        _ => false,
    }
}

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

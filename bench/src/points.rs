//! Seeding and measuring for scripts/bench-points: users with balances for the lookup load, and the
//! outbox relay against a bare producer and under a steady write rate.

use anyhow::Context;
use domain::{Role, UserId};
use infra::config::PostgresArgs;
use std::{io::Write, path::PathBuf, time::Duration};

#[derive(clap::Args, Debug)]
pub struct SeedPointsArgs {
    /// Users to create, each with one earn of 1,000 points and its balance row.
    #[arg(long, default_value_t = 10_000)]
    users: u32,
    /// Where to write the "token user-id" lines for the load tool.
    #[arg(long)]
    requests_out: PathBuf,
    #[command(flatten)]
    jwt: infra::config::JwtArgs,
}

pub async fn seed(postgres: &PostgresArgs, args: SeedPointsArgs) -> anyhow::Result<()> {
    let pool = infra::db::connect(postgres).await?;
    let users: Vec<i64> = sqlx::query_scalar!(
        "WITH created AS (
             INSERT INTO users (email, password_hash, name)
             SELECT 'points-' || gen_random_uuid() || '@bench.test', 'x', 'Bench' FROM generate_series(1, $1)
             RETURNING id),
         ledger AS (INSERT INTO points (user_id, kind, amount, reason)
             SELECT id, 'EARN', 1000, 'bench' FROM created RETURNING id, user_id),
         lots AS (INSERT INTO point_lots (user_id, source, amount, remaining, expires_at, point_id)
             SELECT user_id, 'ADMIN', 1000, 1000, now() + interval '365 days', id FROM ledger)
         INSERT INTO point_balances (user_id, balance, version) SELECT id, 1000, 1 FROM created RETURNING user_id",
        args.users as i32
    )
    .fetch_all(&pool)
    .await
    .context("creating users with balances")?;
    let keys = args.jwt.keys()?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args.requests_out)?);
    for user in &users {
        let token = keys.issue(UserId::parse(*user)?, Role::User, Duration::from_secs(6 * 3600))?;
        writeln!(out, "{token} {user}")?;
    }
    out.flush()?;
    println!("seeded {} users with 1,000 points each", users.len());
    Ok(())
}

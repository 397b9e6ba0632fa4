//! Seeding and measuring for scripts/bench-points: users with balances for the lookup load, and the
//! outbox relay against a bare producer and under a steady write rate.

use anyhow::Context;
use domain::{Role, UserId};
use infra::config::PostgresArgs;
use std::{io::Write, path::PathBuf, time::Duration};

#[derive(clap::Args, Debug)]
pub struct SeedPointsArgs {
    /// Users to create, each with `--lots` earns of 1,000 points, their lots and a balance row.
    #[arg(long, default_value_t = 10_000)]
    users: u32,
    /// Lots per user: one is an ADMIN grant valid a year; more are PURCHASE lots 30, 47, 64... days from
    /// expiry, so a use takes from the soonest but reads them all.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=1_000))]
    lots: i32,
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
             SELECT id, 'EARN', 1000, 'bench' FROM created, generate_series(1, $2) RETURNING id, user_id),
         numbered AS (SELECT id, user_id, row_number() OVER (PARTITION BY user_id ORDER BY id)::int AS n FROM ledger),
         lots AS (INSERT INTO point_lots (user_id, source, amount, remaining, expires_at, point_id)
             SELECT user_id, CASE WHEN $2 = 1 THEN 'ADMIN' ELSE 'PURCHASE' END, 1000, 1000,
                    now() + CASE WHEN $2 = 1 THEN interval '365 days' ELSE make_interval(days => 13 + 17 * n) END, id
             FROM numbered)
         INSERT INTO point_balances (user_id, balance, version) SELECT id, 1000 * $2, $2 FROM created RETURNING user_id",
        args.users as i32,
        args.lots,
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
    println!("seeded {} users with {} lots of 1,000 points each", users.len(), args.lots);
    Ok(())
}

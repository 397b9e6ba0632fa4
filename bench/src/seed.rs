use anyhow::Context;
use domain::{Role, UserId};
use infra::config::PostgresArgs;
use std::{io::Write, path::PathBuf, time::Duration};

#[derive(clap::Args, Debug)]
pub struct SeedArgs {
    /// Policies to create.
    #[arg(long, default_value_t = 10)]
    policies: u32,
    /// Coupons per policy.
    #[arg(long, default_value_t = 10_000)]
    quantity: i32,
    /// Distinct users; user i asks for policy i mod `policies`.
    #[arg(long, default_value_t = 100_000)]
    users: u32,
    /// Where to write the "token policy" lines (shuffled).
    #[arg(long)]
    requests_out: PathBuf,
    /// Where to write the created policy ids, one per line.
    #[arg(long)]
    policies_out: PathBuf,
    /// Tag that keeps the e-mail addresses of separate seedings apart.
    #[arg(long, default_value = "bench")]
    tag: String,
    #[command(flatten)]
    jwt: infra::config::JwtArgs,
}

pub async fn run(postgres: &PostgresArgs, args: SeedArgs) -> anyhow::Result<()> {
    let pool = infra::db::connect(postgres).await?;
    let users: Vec<i64> = sqlx::query_scalar!(
        "INSERT INTO users (email, password_hash, name)
         SELECT $2 || '-' || g || '@bench.test', 'x', 'Bench ' || g FROM generate_series(1, $1) g RETURNING id",
        args.users as i32,
        args.tag
    )
    .fetch_all(&pool)
    .await
    .context("creating users")?;
    let policies: Vec<i64> = sqlx::query_scalar!(
        "INSERT INTO coupon_policies (name, discount_type, discount_value, total_quantity, issue_starts_at,
         issue_ends_at, coupon_valid_days)
         SELECT $3 || ' policy ' || g, 'FIXED_AMOUNT', 1000, $2, now() - interval '1 minute', now() + interval '1 day', 7
         FROM generate_series(1, $1) g RETURNING id",
        args.policies as i32,
        args.quantity,
        args.tag
    )
    .fetch_all(&pool)
    .await
    .context("creating policies")?;

    let keys = args.jwt.keys()?;
    let mut lines = Vec::with_capacity(users.len());
    for (index, user) in users.iter().enumerate() {
        let token = keys.issue(UserId::parse(*user)?, Role::User, Duration::from_secs(6 * 3600))?;
        lines.push(format!("{token} {}", policies[index % policies.len()]));
    }
    shuffle(&mut lines);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args.requests_out)?);
    for line in &lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    std::fs::write(&args.policies_out, policies.iter().map(|p| format!("{p}\n")).collect::<String>())?;
    println!("seeded {} users and {} policies of {} coupons", users.len(), policies.len(), args.quantity);
    Ok(())
}

/// A fixed-seed Fisher-Yates shuffle: the same seeding gives the same request order every run.
fn shuffle(lines: &mut [String]) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..lines.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        lines.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

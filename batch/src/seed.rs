//! `settle-batch seed-points`: a realistic ledger for the reconciliation (and its benchmark). Users get a
//! skewed number of entries (a few are very active), each user's entries are an earn first, then earns,
//! uses within the balance and cancels of earlier uses, spread over `--days` days up to `--until`. The
//! balances match the ledger except `--corrupt` of them; each user's one lot holds what the ledger leaves.
//! Written with COPY; the same seed and `--until`
//! give the same ledger whatever `--threads` is.

use crate::job::progress::Progress;
use anyhow::{ensure, Context};
use chrono::{NaiveDate, TimeZone, Utc};
use futures::future::try_join_all;
use sqlx::PgPool;
use std::{fmt::Write, sync::atomic::Ordering};

#[derive(clap::Args, Debug, Clone)]
pub struct SeedArgs {
    /// Users to create.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=50_000_000))]
    pub users: u32,
    /// Ledger entries to create in total.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=500_000_000))]
    pub transactions: u64,
    /// Days the entries are spread over, ending with `--until`.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3_650))]
    pub days: u32,
    /// The last day (UTC) with entries; defaults to today.
    #[arg(long)]
    pub until: Option<NaiveDate>,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Balances to leave deliberately wrong (each off by a different positive amount).
    #[arg(long, default_value_t = 0)]
    pub corrupt: u32,
    /// COPY streams written at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub threads: u16,
}

/// A small, fast, seedable generator (SplitMix64): good enough for test data, no dependency.
struct Rng(u64);
impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        Self(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

pub async fn run(pool: &PgPool, args: SeedArgs) -> anyhow::Result<()> {
    let until = args.until.unwrap_or_else(|| Utc::now().date_naive());
    let first_user = create_users(pool, &args).await?;
    let counts = entries_per_user(&args);
    let first_point = sqlx::query_scalar!(r#"SELECT nextval('points_id_seq') AS "first!""#).fetch_one(pool).await?;
    sqlx::query!("SELECT setval('points_id_seq', $1)", first_point + args.transactions as i64).fetch_one(pool).await?;
    let end =
        Utc.from_utc_datetime(&until.succ_opt().context("date overflow")?.and_hms_opt(0, 0, 0).context("midnight")?);
    let plan = Plan { seed: args.seed, first_user, first_point, end_micros: end.timestamp_micros(), days: args.days };

    let progress = Progress::start("seed-points", u64::from(args.threads));
    let chunk = counts.len().div_ceil(usize::from(args.threads));
    let mut offsets = Vec::with_capacity(counts.len());
    let mut next_id = 0i64;
    for count in &counts {
        offsets.push(next_id);
        next_id += i64::from(*count);
    }
    let writers = (0..usize::from(args.threads)).map(|part| {
        let range = (part * chunk).min(counts.len())..((part + 1) * chunk).min(counts.len());
        write_part(pool, &plan, &counts, &offsets, (part, range), args.corrupt, &progress)
    });
    let corrupted: u64 = try_join_all(writers).await?.into_iter().sum();
    let rows = progress.rows.load(Ordering::Relaxed);
    drop(progress);
    sqlx::query!("ANALYZE points").execute(pool).await?;
    sqlx::query!("ANALYZE point_balances").execute(pool).await?;
    println!(
        "seeded {} users, {rows} ledger entries over {} days up to {until}, {} corrupted balances (users without entries have no balance row)",
        args.users,
        args.days,
        corrupted
    );
    Ok(())
}

struct Plan {
    seed: u64,
    first_user: i64,
    first_point: i64,
    end_micros: i64,
    days: u32,
}

async fn create_users(pool: &PgPool, args: &SeedArgs) -> anyhow::Result<i64> {
    let created = sqlx::query!(
        r#"WITH created AS (
               INSERT INTO users (email, password_hash, name)
               SELECT 'seed-' || $2::bigint || '-' || txid_current() || '-' || g || '@seed.test', 'x', 'Seed ' || g
               FROM generate_series(1, $1::bigint) g RETURNING id)
           SELECT min(id) AS "first!", max(id) AS "last!", count(*) AS "count!" FROM created"#,
        args.users as i64,
        args.seed as i64
    )
    .fetch_one(pool)
    .await
    .context("creating users")?;
    let (first, last, count) = (created.first, created.last, created.count);
    ensure!(last - first + 1 == count, "user ids are not contiguous (someone else was inserting users)");
    Ok(first)
}

/// How many entries each user gets: one each (every user has a balance, as in the shop), the rest skewed
/// so low indexes are the shop's heavy users.
fn entries_per_user(args: &SeedArgs) -> Vec<u32> {
    let users = u64::from(args.users);
    let baseline = args.transactions.min(users);
    let mut counts: Vec<u32> = (0..users).map(|user| u32::from(user < baseline)).collect();
    let mut rng = Rng::new(args.seed, u64::MAX);
    for _ in baseline..args.transactions {
        let r = rng.below(1 << 20) as f64 / f64::from(1 << 20); // uniform in [0, 1)
        counts[((r * r) * users as f64) as usize % users as usize] += 1;
    }
    counts
}

#[allow(clippy::too_many_arguments)]
async fn write_part(
    pool: &PgPool,
    plan: &Plan,
    counts: &[u32],
    offsets: &[i64],
    (part, range): (usize, std::ops::Range<usize>),
    corrupt: u32,
    progress: &Progress,
) -> anyhow::Result<u64> {
    let mut ledger_conn = pool.acquire().await?;
    let mut balance_conn = pool.acquire().await?;
    let mut ledger = ledger_conn
        // COPY has no macro form: the statement stays a string (constant, no values in it).
        .copy_in_raw("COPY points (id, user_id, kind, amount, reason, cancels_point_id, created_at) FROM STDIN")
        .await?;
    let mut balances = balance_conn.copy_in_raw("COPY point_balances (user_id, balance, version) FROM STDIN").await?;
    // One lot per user holding what the ledger leaves (not the corrupted balance): lots agree with the
    // ledger, so a corrupted balance differs from both.
    let mut lots_conn = pool.acquire().await?;
    let mut lots = lots_conn
        .copy_in_raw("COPY point_lots (user_id, source, amount, remaining, expires_at, point_id) FROM STDIN")
        .await?;
    let lot_expiry = Utc.timestamp_micros(plan.end_micros).single().context("timestamp")? + chrono::Duration::days(365);
    let lot_expiry = lot_expiry.format("%Y-%m-%d %H:%M:%S%.6f+00");
    let corrupt_every = if corrupt == 0 { u64::MAX } else { (counts.len() as u64 / u64::from(corrupt)).max(1) };
    let mut corrupted = 0;
    let (mut text, mut balance_text) = (String::with_capacity(1 << 21), String::with_capacity(1 << 16));
    let mut lot_text = String::with_capacity(1 << 16);
    for index in range {
        if counts[index] == 0 {
            continue;
        }
        let user = plan.first_user + index as i64;
        let balance = user_entries(plan, index, counts[index], plan.first_point + offsets[index], user, &mut text)?;
        let wrong = (index as u64).is_multiple_of(corrupt_every) && (index as u64 / corrupt_every) < u64::from(corrupt);
        corrupted += u64::from(wrong);
        let stored = if wrong { balance + 7 * (index as i64 / corrupt_every as i64 + 1) } else { balance };
        writeln!(balance_text, "{user}\t{stored}\t{}", counts[index])?;
        if balance > 0 {
            let first_earn = plan.first_point + offsets[index];
            writeln!(lot_text, "{user}\tADMIN\t{balance}\t{balance}\t{lot_expiry}\t{first_earn}")?;
        }
        progress.rows.fetch_add(u64::from(counts[index]), Ordering::Relaxed);
        if text.len() > 1 << 20 {
            ledger.send(std::mem::take(&mut text).into_bytes()).await?;
            balances.send(std::mem::take(&mut balance_text).into_bytes()).await?;
            lots.send(std::mem::take(&mut lot_text).into_bytes()).await?;
        }
    }
    ledger.send(text.into_bytes()).await?;
    balances.send(balance_text.into_bytes()).await?;
    lots.send(lot_text.into_bytes()).await?;
    ledger.finish().await.context("copying the ledger")?;
    balances.finish().await.context("copying the balances")?;
    lots.finish().await.context("copying the lots")?;
    progress.partition_done(part as i32, 0);
    Ok(corrupted)
}

/// Appends one user's entries as COPY lines and returns the resulting balance.
fn user_entries(
    plan: &Plan,
    index: usize,
    count: u32,
    first_id: i64,
    user: i64,
    out: &mut String,
) -> anyhow::Result<i64> {
    let mut rng = Rng::new(plan.seed, index as u64);
    let span = i64::from(plan.days) * 86_400_000_000;
    let mut times: Vec<i64> = (0..count).map(|_| plan.end_micros - 1 - rng.below(span as u64) as i64).collect();
    times.sort_unstable();
    let (mut balance, mut open_uses) = (0i64, Vec::<(i64, i64)>::new());
    for (n, micros) in times.into_iter().enumerate() {
        let id = first_id + n as i64;
        let at = Utc.timestamp_micros(micros).single().context("timestamp")?.format("%Y-%m-%d %H:%M:%S%.6f+00");
        let roll = rng.below(100);
        if n > 0 && roll < 10 && !open_uses.is_empty() {
            let (used_id, amount) = open_uses.swap_remove(rng.below(open_uses.len() as u64) as usize);
            balance += amount;
            writeln!(out, "{id}\t{user}\tCANCEL\t{amount}\t\\N\t{used_id}\t{at}")?;
        } else if n > 0 && roll < 45 && balance > 0 {
            let amount = 1 + rng.below(balance.min(500) as u64) as i64;
            balance -= amount;
            open_uses.push((id, amount));
            writeln!(out, "{id}\t{user}\tUSE\t-{amount}\t\\N\t\\N\t{at}")?;
        } else {
            let amount = 10 + rng.below(991) as i64;
            balance += amount;
            writeln!(out, "{id}\t{user}\tEARN\t{amount}\tseed\t\\N\t{at}")?;
        }
    }
    Ok(balance)
}

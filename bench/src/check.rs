use anyhow::{bail, Context};
use infra::config::PostgresArgs;
use std::{path::PathBuf, time::Duration};

#[derive(clap::Args, Debug)]
pub struct WaitArgs {
    /// Decided requests to wait for (in total, all policies).
    #[arg(long)]
    expected: i64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Count only requests for the policies in these files (ids one per line).
    #[arg(long = "policies", num_args = 1..)]
    policies: Vec<PathBuf>,
    /// Also report the rate of the verdicts from this instant on, first to last (e.g. from when the last
    /// worker process got its partitions).
    #[arg(long)]
    since: Option<chrono::DateTime<chrono::Utc>>,
}

/// Waits for the worker, then reports its rate from the database's own timestamps (first to last
/// verdict), which leaves out process start-up and group join.
pub async fn wait(postgres: &PostgresArgs, args: WaitArgs) -> anyhow::Result<()> {
    let pool = infra::db::connect(postgres).await?;
    let ids = read_policy_ids(&args.policies)?;
    let started = std::time::Instant::now();
    loop {
        let (decided, _, _) = verdict_rate(&pool, &ids, None).await?;
        if decided >= args.expected {
            break;
        }
        if started.elapsed() > Duration::from_secs(args.timeout_secs) {
            bail!("only {decided} of {} requests decided after {} s", args.expected, args.timeout_secs);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (count, span, rate) = verdict_rate(&pool, &ids, None).await?;
    println!(
        "decided {count} requests: waited {:.2} s; first to last verdict {span:.2} s = {rate:.0}/s",
        started.elapsed().as_secs_f64()
    );
    if let Some(since) = args.since {
        let (count, span, rate) = verdict_rate(&pool, &ids, Some(since)).await?;
        println!("since {since}: {count} requests decided in {span:.2} s = {rate:.0}/s (steady)");
    }
    Ok(())
}

/// Decided requests of the policies `ids` (all when empty), from `since` on if given: how many, seconds
/// from first to last verdict, per second.
async fn verdict_rate(
    pool: &sqlx::PgPool,
    ids: &[i64],
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> sqlx::Result<(i64, f64, f64)> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "count!",
                  coalesce(extract(epoch FROM max(resolved_at) - min(resolved_at))::float8, 0) AS "span!"
           FROM coupon_issue_requests
           WHERE status <> 'PENDING' AND (cardinality($1::bigint[]) = 0 OR policy_id = ANY($1))
             AND ($2::timestamptz IS NULL OR resolved_at >= $2)"#,
        ids,
        since
    )
    .fetch_one(pool)
    .await?;
    let (count, span) = (row.count, row.span);
    Ok((count, span, if span > 0.0 { count as f64 / span } else { 0.0 }))
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Files of policy ids (one per line), as written by seed-rush.
    #[arg(long = "policies", required = true, num_args = 1..)]
    policies: Vec<PathBuf>,
}

/// For each policy: coupons never above the quantity, never two for one user, and the kept count exact.
pub async fn check(postgres: &PostgresArgs, args: CheckArgs) -> anyhow::Result<()> {
    let pool = infra::db::connect(postgres).await?;
    let ids = read_policy_ids(&args.policies)?;
    let rows: Vec<(i64, i32, i32, i64, i64)> = sqlx::query!(
        r#"SELECT p.id, p.total_quantity, p.issued_quantity, count(c.id) AS "coupons!",
                  count(DISTINCT c.user_id) AS "holders!"
           FROM coupon_policies p LEFT JOIN coupons c ON c.policy_id = p.id WHERE p.id = ANY($1)
           GROUP BY p.id ORDER BY p.id"#,
        &ids
    )
    .fetch_all(&pool)
    .await?
    .into_iter()
    .map(|row| (row.id, row.total_quantity, row.issued_quantity, row.coupons, row.holders))
    .collect();
    let mut breaches = 0;
    let (mut coupons, mut quantity) = (0, 0);
    for (policy, total, issued, count, holders) in &rows {
        let ok = *count <= i64::from(*total) && count == holders && i64::from(*issued) == *count;
        if !ok {
            breaches += 1;
            println!("BREACH policy {policy}: quantity {total}, issued {issued}, coupons {count}, holders {holders}");
        }
        coupons += count;
        quantity += i64::from(*total);
    }
    println!("{} policies checked: {coupons} coupons of {quantity}; over-issue or duplicates: {breaches}", rows.len());
    if breaches > 0 || rows.len() != ids.len() {
        bail!("{breaches} policies breached an invariant ({} of {} found)", rows.len(), ids.len());
    }
    Ok(())
}

fn read_policy_ids(files: &[PathBuf]) -> anyhow::Result<Vec<i64>> {
    let mut ids = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {file:?}"))?;
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            ids.push(line.trim().parse::<i64>().with_context(|| format!("policy id {line:?} in {file:?}"))?);
        }
    }
    Ok(ids)
}

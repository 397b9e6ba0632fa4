//! The origin project's reconciliation method, for the benchmark's baseline: balances read in
//! LIMIT/OFFSET pages, then for every user one ledger query and one INSERT, row at a time. Run on pages
//! spread evenly over the table (OFFSET grows with the position, which is what made it slow), then
//! extrapolated to every page.

use infra::config::PostgresArgs;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct OriginArgs {
    /// The business date to close.
    #[arg(long)]
    date: chrono::NaiveDate,
    #[arg(long, default_value = "Asia/Seoul")]
    timezone: String,
    /// Users per page.
    #[arg(long, default_value_t = 1_000)]
    page: i64,
    /// Pages measured, spread evenly over all pages.
    #[arg(long, default_value_t = 50)]
    pages: i64,
}

pub async fn run(postgres: &PostgresArgs, args: OriginArgs) -> anyhow::Result<()> {
    let pool = infra::db::connect(postgres).await?;
    // origin_snapshots is the baseline's own scratch table, made here: not in the schema the macros check.
    sqlx::query("CREATE TABLE IF NOT EXISTS origin_snapshots (LIKE daily_point_snapshots INCLUDING ALL)")
        .execute(&pool)
        .await?;
    sqlx::query("TRUNCATE origin_snapshots").execute(&pool).await?; // the scratch table: not a macro either
    let users: i64 = sqlx::query_scalar!(r#"SELECT count(*) AS "users!" FROM point_balances"#).fetch_one(&pool).await?;
    let all_pages = (users + args.page - 1) / args.page;
    let step = (all_pages / args.pages.max(1)).max(1);
    let started = Instant::now();
    let mut measured = 0;
    for page in (0..all_pages).step_by(step as usize).take(args.pages as usize) {
        let ids: Vec<i64> = sqlx::query_scalar!(
            "SELECT user_id FROM point_balances ORDER BY user_id LIMIT $1 OFFSET $2",
            args.page,
            page * args.page
        )
        .fetch_all(&pool)
        .await?;
        for user in ids {
            let day = sqlx::query!(
                r#"WITH day AS (SELECT ($2::date::timestamp AT TIME ZONE $3) s, (($2::date + 1)::timestamp AT TIME ZONE $3) e)
                   SELECT sum(amount) FILTER (WHERE created_at < e)::bigint AS closing,
                          sum(amount) FILTER (WHERE kind = 'EARN' AND created_at >= s AND created_at < e)::bigint AS earned,
                          (-sum(amount) FILTER (WHERE kind = 'USE' AND created_at >= s AND created_at < e))::bigint AS used,
                          sum(abs(amount)) FILTER (WHERE kind = 'CANCEL' AND created_at >= s AND created_at < e)::bigint
                            AS cancelled,
                          count(*) FILTER (WHERE created_at < e) AS "entries!"
                   FROM points, day WHERE user_id = $1"#,
                user,
                args.date,
                args.timezone
            )
            .fetch_one(&pool)
            .await?;
            let (closing, earned, used, cancelled, entries) =
                (day.closing, day.earned, day.used, day.cancelled, day.entries);
            if entries > 0 {
                // Not a macro: origin_snapshots is made at run time (above).
                sqlx::query("INSERT INTO origin_snapshots VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(args.date)
                    .bind(user)
                    .bind(closing.unwrap_or(0))
                    .bind(earned.unwrap_or(0))
                    .bind(used.unwrap_or(0))
                    .bind(cancelled.unwrap_or(0))
                    .execute(&pool)
                    .await?;
            }
        }
        measured += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let extrapolated = seconds / measured as f64 * all_pages as f64;
    println!("RESULT pages={measured} of={all_pages} seconds={seconds:.1} extrapolated_seconds={extrapolated:.0}");
    Ok(())
}

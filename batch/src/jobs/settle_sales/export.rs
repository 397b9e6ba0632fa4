//! `settle-batch settlement export --date D [--out DIR]`: a settled day for finance, as CSV files: its
//! lines (`settlement-D-lines.csv`) and its summaries by option and by method. Amounts are whole won.

use crate::Exit;
use anyhow::Context;
use chrono::NaiveDate;
use futures::TryStreamExt;
use sqlx::PgPool;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum SettlementCommand {
    /// Write the day's lines and summaries as CSV (the day must be CLOSED unless --any-status).
    Export {
        /// The business date, YYYY-MM-DD.
        #[arg(long)]
        date: NaiveDate,
        /// The directory to write the files into (created if missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Export a day that is not CLOSED (OPEN or FAILED), for a look before it closes.
        #[arg(long)]
        any_status: bool,
    },
}

pub async fn run(pool: &PgPool, command: SettlementCommand) -> anyhow::Result<Exit> {
    let SettlementCommand::Export { date, out, any_status } = command;
    let status = sqlx::query_scalar!("SELECT status FROM settlement_days WHERE business_date = $1", date)
        .fetch_optional(pool)
        .await?;
    match status.as_deref() {
        None => {
            eprintln!("settle-batch: {date} has not been settled (`settle-batch settle-sales --date {date}`)");
            return Ok(Exit::BadArguments);
        }
        Some(status) if status != "CLOSED" && !any_status => {
            eprintln!("settle-batch: {date} is {status}, not CLOSED; --any-status exports it anyway");
            return Ok(Exit::BadArguments);
        }
        Some(_) => {}
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let exports = [
        (
            "lines",
            "SELECT business_date, event, order_id, option_id, product_id, quantity, unit_price, gross, coupon_discount,
                    points, paid, payment_method, payment_key, fee_rate_bps, fee, net
             FROM settlement_lines WHERE business_date = $1 ORDER BY order_id, option_id, event",
        ),
        (
            "by-option",
            "SELECT business_date, option_id, product_id, quantity, gross, coupon_discount, points, paid, fee, net
             FROM settlement_summary_by_option WHERE business_date = $1 ORDER BY option_id",
        ),
        (
            "by-method",
            "SELECT business_date, payment_method, lines, gross, coupon_discount, points, paid, fee, net
             FROM settlement_summary_by_method WHERE business_date = $1 ORDER BY payment_method",
        ),
    ];
    for (name, statement) in exports {
        let path = out.join(format!("settlement-{date}-{name}.csv"));
        let rows =
            write_csv(pool, statement, date, &path).await.with_context(|| format!("writing {}", path.display()))?;
        println!("{}: {rows} rows", path.display());
    }
    Ok(Exit::Success)
}

/// Writes the rows of `statement` with a header of its column names; every column is read as text, so
/// amounts are written exactly as stored.
async fn write_csv(pool: &PgPool, statement: &str, date: NaiveDate, path: &PathBuf) -> anyhow::Result<u64> {
    use sqlx::{Column, Row};
    let as_text = format!("SELECT t.* FROM ({statement}) t");
    let mut writer = csv::Writer::from_path(path)?;
    let mut rows = sqlx::query(&as_text).bind(date).fetch(pool);
    let (mut count, mut header) = (0u64, false);
    while let Some(row) = rows.try_next().await? {
        if !header {
            writer.write_record(row.columns().iter().map(|c| c.name()))?;
            header = true;
        }
        let fields: Vec<String> = (0..row.len()).map(|i| text_of(&row, i)).collect::<anyhow::Result<_>>()?;
        writer.write_record(&fields)?;
        count += 1;
    }
    writer.flush()?;
    Ok(count)
}

fn text_of(row: &sqlx::postgres::PgRow, index: usize) -> anyhow::Result<String> {
    use sqlx::Row;
    if let Ok(value) = row.try_get::<Option<i64>, _>(index) {
        return Ok(value.map(|v| v.to_string()).unwrap_or_default());
    }
    if let Ok(value) = row.try_get::<Option<i32>, _>(index) {
        return Ok(value.map(|v| v.to_string()).unwrap_or_default());
    }
    if let Ok(value) = row.try_get::<Option<NaiveDate>, _>(index) {
        return Ok(value.map(|v| v.to_string()).unwrap_or_default());
    }
    Ok(row.try_get::<Option<String>, _>(index)?.unwrap_or_default())
}

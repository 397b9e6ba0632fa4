//! Writes one partition's results in one transaction: its snapshot rows (COPY), its discrepancy rows and
//! its checkpoint, so a partition is either entirely recorded or not at all.

use super::aggregate::{Discrepancy, Totals};
use crate::job::repository::{self as jobs, Counts};
use chrono::NaiveDate;
use sqlx::PgPool;
use std::fmt::Write;

pub async fn partition(
    pool: &PgPool,
    execution: i64,
    unit: i32,
    date: NaiveDate,
    totals: &Totals,
    chunk: usize,
    rows_read: i64,
) -> anyhow::Result<Counts> {
    let mut tx = pool.begin().await?;
    let mut copy = tx
        // COPY has no macro form: the statement stays a string (constant, no values in it).
        .copy_in_raw(
            "COPY daily_point_snapshots (business_date, user_id, balance, earned, used, cancelled, expired) FROM STDIN",
        )
        .await?;
    let mut text = String::with_capacity(chunk * 48);
    let (mut written, mut pending) = (0i64, 0usize);
    for (user, t) in totals.iter().filter(|(_, t)| t.entries_to_close > 0) {
        let (closing, earned, used, cancelled, expired) = (t.closing, t.earned, t.used, t.cancelled, t.expired);
        writeln!(text, "{date}\t{user}\t{closing}\t{earned}\t{used}\t{cancelled}\t{expired}")?;
        (written, pending) = (written + 1, pending + 1);
        if pending == chunk {
            copy.send(std::mem::take(&mut text).into_bytes()).await?;
            pending = 0;
        }
    }
    copy.send(text.into_bytes()).await?;
    copy.finish().await?;

    let differing: Vec<_> = totals.iter().filter_map(|(user, t)| t.discrepancy().map(|d| (*user, d))).collect();
    let users: Vec<i64> = differing.iter().map(|(user, _)| *user).collect();
    let column = |pick: fn(&Discrepancy) -> i64| differing.iter().map(|(_, d)| pick(d)).collect::<Vec<i64>>();
    sqlx::query!(
        "INSERT INTO reconciliation_discrepancies
           (execution_id, business_date, user_id, stored_balance, ledger_balance, lots_balance)
         SELECT $1, $2, * FROM unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])",
        execution,
        date,
        &users,
        &column(|d| d.stored),
        &column(|d| d.ledger),
        &column(|d| d.lots),
    )
    .execute(&mut *tx)
    .await?;
    let counts = Counts { rows_read, rows_written: written, discrepancies: users.len() as i64 };
    jobs::complete_partition(&mut tx, execution, unit, counts).await?;
    tx.commit().await?;
    Ok(counts)
}

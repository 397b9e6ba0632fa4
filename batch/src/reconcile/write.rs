//! Writes one partition's results in one transaction: its snapshot rows (COPY), its discrepancy rows and
//! its checkpoint, so a partition is either entirely recorded or not at all.

use super::aggregate::Totals;
use crate::jobs::{self, Counts};
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
        .copy_in_raw("COPY daily_point_snapshots (business_date, user_id, balance, earned, used, cancelled) FROM STDIN")
        .await?;
    let mut text = String::with_capacity(chunk * 48);
    let (mut written, mut pending) = (0i64, 0usize);
    for (user, t) in totals.iter().filter(|(_, t)| t.entries_to_close > 0) {
        writeln!(text, "{date}\t{user}\t{}\t{}\t{}\t{}", t.closing, t.earned, t.used, t.cancelled)?;
        (written, pending) = (written + 1, pending + 1);
        if pending == chunk {
            copy.send(std::mem::take(&mut text).into_bytes()).await?;
            pending = 0;
        }
    }
    copy.send(text.into_bytes()).await?;
    copy.finish().await?;

    let (users, stored, ledger): (Vec<i64>, Vec<i64>, Vec<i64>) = totals
        .iter()
        .filter_map(|(user, t)| t.discrepancy().map(|(stored, ledger)| (*user, stored, ledger)))
        .fold((vec![], vec![], vec![]), |(mut u, mut s, mut l), (user, stored, ledger)| {
            u.push(user);
            s.push(stored);
            l.push(ledger);
            (u, s, l)
        });
    sqlx::query!(
        "INSERT INTO reconciliation_discrepancies (execution_id, business_date, user_id, stored_balance, ledger_balance)
         SELECT $1, $2, * FROM unnest($3::bigint[], $4::bigint[], $5::bigint[])",
        execution,
        date,
        &users,
        &stored,
        &ledger,
    )
    .execute(&mut *tx)
    .await?;
    let counts = Counts { rows_read, rows_written: written, discrepancies: users.len() as i64 };
    jobs::complete_partition(&mut tx, execution, unit, counts).await?;
    tx.commit().await?;
    Ok(counts)
}

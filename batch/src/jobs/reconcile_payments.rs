//! `settle-batch reconcile-payments --date D`: the provider's settlement lines of business day D, read
//! page by page through its settlements endpoint, matched with the payments we recorded that day (each
//! approval a sale; each refund the provider confirmed a cancel) by payment key
//! (`domain::settlement::payments`). Every difference (missing here, missing there, amount, status, fee,
//! payout date) is recorded with both sides in `payment_reconciliation_mismatches`; the run exits 1 when
//! any remains, with a summary by kind.
//!
//! The provider's listing is one sequence of pages, so the run is one partition: a stop takes effect
//! between pages, and the mismatches are written with the checkpoint in one transaction.

use super::terms::{dated_command, Day, FeeRateArgs};
use crate::{
    job::{self, Conclusion, Context, Counts, Job, PartitionEnd, RunArgs},
    Exit,
};
use anyhow::Context as _;
use chrono::NaiveDate;
use domain::{
    settlement::payments::{reconcile, Matched, Mismatch, MismatchKind, OurPayment, PaymentEvent, ProviderLine, Terms},
    shop::PaymentMethod,
};
use infra::{
    breaker::{Breaker, BreakerArgs},
    config::{BusinessTimeArgs, PaymentArgs},
    payments::{PaymentGateway, TossPayments},
};
use sqlx::PgPool;
use std::{collections::BTreeMap, sync::Mutex};

#[derive(clap::Args, Debug, Clone)]
pub struct ReconcilePaymentsArgs {
    /// The business date to reconcile, YYYY-MM-DD (the schedule passes yesterday); the run's key.
    #[arg(long)]
    pub date: NaiveDate,
    #[command(flatten)]
    pub business: BusinessTimeArgs,
    #[command(flatten)]
    pub fees: FeeRateArgs,
    /// Days from a sale to the provider's payout, by its terms.
    #[arg(long, env = "PAYMENT_PAYOUT_DAYS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=60))]
    pub payout_days: u64,
    /// Settlement lines asked for per page.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub page_size: u32,
    /// Mismatches listed on the terminal (every one is recorded).
    #[arg(long, default_value_t = 20)]
    pub show: usize,
    /// Compare and report only: nothing is recorded, and the day may still be under way (an intraday check).
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub payments: PaymentArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// One run: the day, the provider, and what matching found.
struct ReconcilePayments {
    args: ReconcilePaymentsArgs,
    day: Day,
    gateway: TossPayments,
    found: Mutex<Found>,
}

/// What the run saw, for its summary.
#[derive(Default)]
struct Found {
    provider_lines: usize,
    our_payments: usize,
    agreed: usize,
    by_kind: BTreeMap<MismatchKind, usize>,
}

pub async fn run(pool: &PgPool, args: ReconcilePaymentsArgs) -> anyhow::Result<Exit> {
    let day = match Day::ended(args.date, &args.business) {
        Ok(day) => day,
        Err(_) if args.dry_run => Day::of(args.date, &args.business).map_err(anyhow::Error::msg)?,
        Err(why) => {
            eprintln!("settle-batch: {why}");
            return Ok(Exit::BadArguments);
        }
    };
    // One call at a time, in order: a breaker would only turn the provider's outage into another error.
    let gateway = TossPayments::new(&args.payments, Breaker::new("payments", &BreakerArgs::default()).disabled())?;
    job::run(pool, &ReconcilePayments { args, day, gateway, found: Mutex::default() }).await
}

impl Job for ReconcilePayments {
    const NAME: &'static str = "reconcile-payments";

    fn key(&self) -> String {
        self.day.date.to_string()
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "timezone": self.args.business.timezone.name(),
            "feeRates": self.args.fees.fee_rates.to_string(),
            "payoutDays": self.args.payout_days,
        })
    }

    fn command_line(&self) -> Vec<String> {
        let mut line = dated_command(Self::NAME, self.day.date, &self.args.business);
        line.extend(self.args.fees.command_line());
        line.extend(["--payout-days".into(), self.args.payout_days.to_string()]);
        line.extend(["--page-size".into(), self.args.page_size.to_string()]);
        line.extend(self.args.run.command_line());
        line
    }

    fn run_args(&self) -> &RunArgs {
        &self.args.run
    }

    fn dry_run(&self) -> bool {
        self.args.dry_run
    }

    fn partitions(&self) -> i32 {
        1
    }

    async fn partition(&self, ctx: &Context<'_>, partition: i32) -> anyhow::Result<PartitionEnd> {
        let (theirs, ours) = tokio::join!(self.provider_lines(ctx), our_payments(ctx.pool, &self.day));
        let Some(theirs) = theirs? else { return Ok(PartitionEnd::Stopped) };
        let ours = ours.context("reading our payments of the day")?;
        let (provider_lines, our_payments) = (theirs.len(), ours.len());
        let terms = Terms { day: self.day.date, rates: &self.args.fees.fee_rates, payout_days: self.args.payout_days };
        let matched = reconcile(ours, theirs, &terms);
        let mut tx = ctx.pool.begin().await?;
        if !ctx.dry_run {
            record(&mut tx, self.day.date, ctx.execution, &matched.mismatches).await?;
        }
        let counts = Counts {
            rows_read: (provider_lines + our_payments) as i64,
            rows_written: matched.mismatches.len() as i64,
            discrepancies: matched.mismatches.len() as i64,
        };
        ctx.checkpoint_in(&mut tx, partition, counts).await?;
        tx.commit().await?;
        print_mismatches(&matched.mismatches, self.args.show);
        self.remember(provider_lines, our_payments, &matched);
        Ok(PartitionEnd::Committed(counts))
    }

    async fn conclude(&self, ctx: &Context<'_>) -> anyhow::Result<Conclusion> {
        let left = if ctx.dry_run {
            self.found.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).by_kind.values().sum::<usize>() as i64
        } else {
            // A resumed run did its matching before: its mismatches are in the repository.
            sqlx::query_scalar!(
                r#"SELECT count(*) AS "count!" FROM payment_reconciliation_mismatches WHERE execution_id = $1"#,
                ctx.execution
            )
            .fetch_one(ctx.pool)
            .await?
        };
        Ok(Conclusion {
            attention: (left > 0).then(|| format!("{left} mismatches with the provider on {}", self.day.date)),
            ..Conclusion::default()
        })
    }

    fn summary(&self, _totals: Counts, _elapsed: std::time::Duration) -> Vec<(String, String)> {
        let found = self.found.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut lines = vec![
            ("provider's lines".to_owned(), found.provider_lines.to_string()),
            ("our payments and refunds".to_owned(), found.our_payments.to_string()),
            ("agreed".to_owned(), found.agreed.to_string()),
        ];
        for kind in MismatchKind::ALL {
            lines.push((kind.code().to_lowercase(), found.by_kind.get(&kind).copied().unwrap_or(0).to_string()));
        }
        lines
    }
}

impl ReconcilePayments {
    /// Every page of the provider's lines for the day; None if a stop came between two pages.
    async fn provider_lines(&self, ctx: &Context<'_>) -> anyhow::Result<Option<Vec<ProviderLine>>> {
        let (date, size) = (self.day.date, self.args.page_size);
        let mut lines = Vec::new();
        for page in 1.. {
            if ctx.stop.requested() {
                return Ok(None);
            }
            let batch = self
                .gateway
                .settlements(date, date, page, size)
                .await
                .with_context(|| format!("reading page {page} of the provider's settlements for {date}"))?;
            ctx.progress.rows.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
            let last = batch.len() < size as usize;
            lines.extend(batch.into_iter().map(|line| ProviderLine {
                event: if line.amount < 0 { PaymentEvent::Cancel } else { PaymentEvent::Sale },
                payment_key: line.payment_key,
                amount: line.amount,
                fee: line.fee,
                paid_out_date: line.paid_out_date,
            }));
            if last {
                break;
            }
        }
        Ok(Some(lines))
    }

    fn remember(&self, provider_lines: usize, our_payments: usize, matched: &Matched) {
        let mut found = self.found.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        found.provider_lines = provider_lines;
        found.our_payments = our_payments;
        found.agreed = matched.agreed;
        for mismatch in &matched.mismatches {
            *found.by_kind.entry(mismatch.kind).or_default() += 1;
        }
    }
}

fn print_mismatches(mismatches: &[Mismatch], listed: usize) {
    let amount = |value: Option<i64>| value.map_or("-".to_owned(), |v| v.to_string());
    for m in mismatches.iter().take(listed) {
        let event = if m.event == PaymentEvent::Sale { "sale" } else { "cancel" };
        let order = m.ours.as_ref().map_or("-".to_owned(), |o| o.order_id.to_string());
        let (ours, theirs) = (amount(m.ours.as_ref().map(|o| o.amount)), amount(m.theirs.as_ref().map(|t| t.amount)));
        println!("  {:<20} {:<6} {} order {order}: ours {ours}, theirs {theirs}", m.kind.code(), event, m.payment_key);
    }
    if mismatches.len() > listed {
        println!("  ... and {} more (payment_reconciliation_mismatches)", mismatches.len() - listed);
    }
}

/// Our payments of the day: approvals (sales) and the refunds the provider confirmed (cancels).
async fn our_payments(pool: &PgPool, day: &Day) -> anyhow::Result<Vec<OurPayment>> {
    let rows = sqlx::query!(
        r#"SELECT a.payment_key AS "payment_key!", a.order_id AS "order_id!", a.amount AS "amount!",
                  o.payment_method AS "method!: PaymentMethod", false AS "cancel!"
           FROM payment_attempts a JOIN orders o ON o.id = a.order_id
           WHERE a.status = 'APPROVED' AND a.approved_at >= $1 AND a.approved_at < $2
           UNION ALL
           SELECT a.payment_key, a.order_id, -a.amount, o.payment_method, true
           FROM payment_attempts a JOIN orders o ON o.id = a.order_id
           WHERE a.refund_status = 'DONE' AND a.refunded_at >= $1 AND a.refunded_at < $2"#,
        day.start,
        day.end
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| OurPayment {
            payment_key: row.payment_key,
            order_id: row.order_id,
            event: if row.cancel { PaymentEvent::Cancel } else { PaymentEvent::Sale },
            amount: row.amount,
            method: row.method,
        })
        .collect())
}

async fn record(
    tx: &mut sqlx::PgConnection,
    date: NaiveDate,
    execution: i64,
    mismatches: &[Mismatch],
) -> sqlx::Result<()> {
    let column = |pick: fn(&Mismatch) -> Option<i64>| mismatches.iter().map(pick).collect::<Vec<_>>();
    let dates = |pick: fn(&Mismatch) -> Option<NaiveDate>| mismatches.iter().map(pick).collect::<Vec<_>>();
    let kinds: Vec<&str> = mismatches.iter().map(|m| m.kind.code()).collect();
    let keys: Vec<&str> = mismatches.iter().map(|m| m.payment_key.as_str()).collect();
    let events: Vec<&str> =
        mismatches.iter().map(|m| if m.event == PaymentEvent::Sale { "SALE" } else { "CANCEL" }).collect();
    sqlx::query!(
        "INSERT INTO payment_reconciliation_mismatches (business_date, execution_id, kind, payment_key, event, order_id,
             our_amount, expected_fee, expected_payout, their_amount, their_fee, their_payout)
         SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[],
                                      $9::date[], $10::bigint[], $11::bigint[], $12::date[])",
        date,
        execution,
        &kinds as &[&str],
        &keys as &[&str],
        &events as &[&str],
        &column(|m| m.ours.as_ref().map(|o| o.order_id)) as &[Option<i64>],
        &column(|m| m.ours.as_ref().map(|o| o.amount)) as &[Option<i64>],
        &column(|m| m.expected_fee) as &[Option<i64>],
        &dates(|m| m.expected_payout) as &[Option<NaiveDate>],
        &column(|m| m.theirs.as_ref().map(|t| t.amount)) as &[Option<i64>],
        &column(|m| m.theirs.as_ref().map(|t| t.fee)) as &[Option<i64>],
        &dates(|m| m.theirs.as_ref().map(|t| t.paid_out_date)) as &[Option<NaiveDate>],
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

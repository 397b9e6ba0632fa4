//! One partition's settlement lines (a slice of the day's time): its sales streamed in with COPY (an order's items together), each
//! order split over its items as it arrives, the lines streamed out with COPY; then its reversals (copies
//! of their sales' lines, negated); all with the partition's checkpoint in one transaction. A dry run
//! computes the same lines and only adds them up.

use crate::job::{Context, Counts};
use crate::jobs::terms::Day;
use anyhow::Context as _;
use bytes::BytesMut;
use chrono::{DateTime, Utc};
use domain::{
    settlement::{split_order, FeeRates, LineAmounts, OrderAmounts},
    shop::PaymentMethod,
};
use futures::TryStreamExt;
use std::{fmt::Write, sync::atomic::Ordering};

/// Bytes of lines sent to COPY at a time.
const SEND_BYTES: usize = 1 << 20;

/// One partition of a day: the moves recognised in one of `partitions` equal slices of its time, so each
/// partition reads only its own rows through the history's time index.
pub struct Slice {
    pub day: Day,
    pub partitions: i32,
    pub partition: i32,
}

impl Slice {
    /// The slice's instants: `[from, until)`.
    fn bounds(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let length = self.day.end - self.day.start;
        let at = |p: i32| self.day.start + length * p / self.partitions;
        let until = if self.partition + 1 == self.partitions { self.day.end } else { at(self.partition + 1) };
        (at(self.partition), until)
    }

    /// The sales to settle: items of orders confirmed during the slice that have no sale line yet, with
    /// their order's amounts and payment, an order's items together. COPY takes no parameters: every value
    /// spliced in is a timestamp this code formatted.
    fn sales_statement(&self) -> String {
        let (from, until) = self.bounds();
        format!(
            "COPY (SELECT o.id, o.subtotal, o.coupon_discount, o.points_used, o.amount_to_pay, o.payment_method,
                          pa.payment_key, i.option_id, i.product_id, i.quantity, i.unit_price, i.line_total
                   FROM order_status_history h
                   JOIN orders o ON o.id = h.order_id
                   JOIN order_items i ON i.order_id = o.id
                   LEFT JOIN payment_attempts pa ON pa.order_id = o.id AND pa.status = 'APPROVED'
                   WHERE h.to_status = 'CONFIRMED' AND h.changed_at >= '{from}' AND h.changed_at < '{until}'
                     AND NOT EXISTS (SELECT 1 FROM settlement_lines l WHERE l.order_id = o.id AND l.event = 'SALE')
                   ORDER BY o.id, i.option_id) TO STDOUT",
            from = from.to_rfc3339(),
            until = until.to_rfc3339(),
        )
    }
}

/// The sums of lines computed (in a dry run, the lines a run would write).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineSums {
    pub lines: i64,
    pub total: LineAmounts,
}

impl LineSums {
    pub fn plus(self, other: LineSums) -> LineSums {
        LineSums { lines: self.lines + other.lines, total: self.total + other.total }
    }
}

/// Settles the slice: its lines written with its checkpoint in one transaction (in a dry run, computed
/// and added up only); the counts, and the sums of the lines.
pub async fn settle(ctx: &Context<'_>, slice: &Slice, rates: &FeeRates) -> anyhow::Result<(Counts, LineSums)> {
    let mut reader = ctx.pool.acquire().await?;
    let mut tx = ctx.pool.begin().await?;
    let mut copy = match ctx.dry_run {
        true => None,
        false => Some(
            tx.copy_in_raw(
                "COPY settlement_lines (business_date, event, order_id, option_id, product_id, quantity, unit_price,
                     gross, coupon_discount, points, paid, payment_method, payment_key, fee_rate_bps, fee, net, execution_id)
                 FROM STDIN",
            )
            .await?,
        ),
    };
    let mut sales = Sales::new(slice.day.date, ctx.execution, rates);
    let mut stream = reader.copy_out_raw(&slice.sales_statement()).await.context("reading the day's sales")?;
    let mut pending = BytesMut::new();
    while let Some(chunk) = stream.try_next().await.context("reading the day's sales")? {
        pending.extend_from_slice(&chunk);
        let cut = pending.iter().rposition(|&b| b == b'\n').map_or(0, |at| at + 1);
        let rows = pending.split_to(cut);
        for row in rows[..].split(|&b| b == b'\n').filter(|row| !row.is_empty()) {
            sales.take(row)?;
        }
        if sales.out.len() >= SEND_BYTES {
            ctx.progress.rows.fetch_add(sales.flushed_rows(), Ordering::Relaxed);
            let out = std::mem::take(&mut sales.out).into_bytes();
            if let Some(copy) = copy.as_mut() {
                copy.send(out).await?;
            }
        }
    }
    drop(stream);
    sales.finish_order()?;
    ctx.progress.rows.fetch_add(sales.flushed_rows(), Ordering::Relaxed);
    let out = std::mem::take(&mut sales.out).into_bytes();
    if let Some(mut copy) = copy.take() {
        copy.send(out).await?;
        copy.finish().await.context("writing the day's sale lines")?;
    }
    drop(copy);
    let reversed = reverse(&mut tx, slice, ctx.execution, ctx.dry_run).await?;
    let counts = Counts {
        rows_read: sales.items + reversed.lines,
        rows_written: sales.sums.lines + reversed.lines,
        discrepancies: sales.refused,
    };
    ctx.checkpoint_in(&mut tx, slice.partition, counts).await?;
    if !ctx.dry_run {
        tx.commit().await?;
    }
    Ok((counts, sales.sums.plus(reversed)))
}

/// The reversals recognised in the slice: each sale line of an order whose confirmed purchase was
/// refunded during the slice, negated, with the sale's fee rate (written unless `dry_run`), and their
/// sums. A sale never settled has nothing to reverse yet: the gates report it.
async fn reverse(tx: &mut sqlx::PgConnection, slice: &Slice, execution: i64, dry_run: bool) -> sqlx::Result<LineSums> {
    let (from, until) = slice.bounds();
    let sums = sqlx::query!(
        r#"WITH reversals AS (
               SELECT $1::date AS business_date, 'REVERSAL' AS event, l.order_id, l.option_id, l.product_id,
                      l.quantity, l.unit_price, -l.gross AS gross, -l.coupon_discount AS coupon_discount,
                      -l.points AS points, -l.paid AS paid, l.payment_method, l.payment_key, l.fee_rate_bps,
                      -l.fee AS fee, -l.net AS net, $2::bigint AS execution_id
               FROM order_status_history h
               JOIN settlement_lines l ON l.order_id = h.order_id AND l.event = 'SALE'
               WHERE h.from_status = 'CONFIRMED' AND h.to_status = 'REFUNDED' AND h.changed_at >= $3
                 AND h.changed_at < $4
                 AND NOT EXISTS (SELECT 1 FROM settlement_lines r WHERE r.order_id = l.order_id
                                   AND r.option_id = l.option_id AND r.event = 'REVERSAL')),
           written AS (
               INSERT INTO settlement_lines (business_date, event, order_id, option_id, product_id, quantity,
                   unit_price, gross, coupon_discount, points, paid, payment_method, payment_key, fee_rate_bps, fee,
                   net, execution_id)
               SELECT * FROM reversals WHERE NOT $5
               ON CONFLICT (order_id, option_id, event) DO NOTHING
               RETURNING gross, coupon_discount, points, paid, fee, net),
           counted AS (SELECT gross, coupon_discount, points, paid, fee, net FROM written
                       UNION ALL
                       SELECT gross, coupon_discount, points, paid, fee, net FROM reversals WHERE $5)
           SELECT count(*) AS "lines!", coalesce(sum(gross), 0)::bigint AS "gross!",
                  coalesce(sum(coupon_discount), 0)::bigint AS "coupon_discount!",
                  coalesce(sum(points), 0)::bigint AS "points!", coalesce(sum(paid), 0)::bigint AS "paid!",
                  coalesce(sum(fee), 0)::bigint AS "fee!", coalesce(sum(net), 0)::bigint AS "net!"
           FROM counted"#,
        slice.day.date,
        execution,
        from,
        until,
        dry_run,
    )
    .fetch_one(&mut *tx)
    .await?;
    let total = LineAmounts {
        gross: sums.gross,
        coupon_discount: sums.coupon_discount,
        points: sums.points,
        paid: sums.paid,
        fee: sums.fee,
        net: sums.net,
    };
    Ok(LineSums { lines: sums.lines, total })
}

/// One item row of the sales statement.
struct Item<'a> {
    order: i64,
    amounts: OrderAmounts,
    method: PaymentMethod,
    method_text: &'a str,
    payment_key: &'a str,
    option: i64,
    product: i64,
    quantity: i64,
    unit_price: i64,
    line_total: i64,
}

/// The order being read and the lines written so far.
struct Sales<'r> {
    date: chrono::NaiveDate,
    execution: i64,
    rates: &'r FeeRates,
    order: Option<OpenOrder>,
    out: String,
    items: i64,
    sums: LineSums,
    /// Orders whose row contradicts itself: no lines (the gates fail the day on them).
    refused: i64,
    reported: i64,
}

/// The items of one order, kept until the next order begins.
struct OpenOrder {
    id: i64,
    amounts: OrderAmounts,
    fee_rate_bps: u16,
    /// The columns every line of the order repeats: payment method and payment key, as COPY wrote them.
    payment: String,
    items: Vec<(i64, i64, i64, i64, i64)>,
}

impl<'r> Sales<'r> {
    fn new(date: chrono::NaiveDate, execution: i64, rates: &'r FeeRates) -> Self {
        Sales {
            date,
            execution,
            rates,
            order: None,
            out: String::new(),
            items: 0,
            sums: LineSums::default(),
            refused: 0,
            reported: 0,
        }
    }

    fn take(&mut self, row: &[u8]) -> anyhow::Result<()> {
        let item =
            parse(row).with_context(|| format!("an unreadable sales row: {:?}", String::from_utf8_lossy(row)))?;
        self.items += 1;
        if self.order.as_ref().is_some_and(|open| open.id != item.order) {
            self.finish_order()?;
        }
        let open = self.order.get_or_insert_with(|| {
            let rate = self.rates.of(item.method);
            OpenOrder {
                id: item.order,
                amounts: OrderAmounts { fee: rate.fee_on(item.amounts.amount_paid), ..item.amounts },
                fee_rate_bps: rate.basis_points(),
                payment: format!("{}\t{}", item.method_text, item.payment_key),
                items: Vec::new(),
            }
        });
        open.items.push((item.option, item.product, item.quantity, item.unit_price, item.line_total));
        Ok(())
    }

    /// Splits the open order over its items and writes its lines.
    fn finish_order(&mut self) -> anyhow::Result<()> {
        let Some(order) = self.order.take() else { return Ok(()) };
        let totals: Vec<i64> = order.items.iter().map(|item| item.4).collect();
        let split = match split_order(&order.amounts, &totals) {
            Ok(split) => split,
            Err(error) => {
                tracing::warn!(order = order.id, %error, "an order's amounts contradict themselves: not settled");
                self.refused += 1;
                return Ok(());
            }
        };
        for (&(option, product, quantity, unit_price, _), line) in order.items.iter().zip(&split) {
            self.sums = self.sums.plus(LineSums { lines: 1, total: *line });
            let LineAmounts { gross, coupon_discount, points, paid, fee, net } = *line;
            writeln!(
                self.out,
                "{}\tSALE\t{}\t{option}\t{product}\t{quantity}\t{unit_price}\t{gross}\t{coupon_discount}\t{points}\t{paid}\t{}\t{}\t{fee}\t{net}\t{}",
                self.date, order.id, order.payment, order.fee_rate_bps, self.execution
            )?;
        }
        Ok(())
    }

    /// Lines written since the last call (for progress).
    fn flushed_rows(&mut self) -> u64 {
        let new = self.sums.lines - self.reported;
        self.reported = self.sums.lines;
        new as u64
    }
}

fn parse(row: &[u8]) -> anyhow::Result<Item<'_>> {
    let row = std::str::from_utf8(row)?;
    let fields: Vec<&str> = row.split('\t').collect();
    let [order, subtotal, coupon, points, paid, method, key, option, product, quantity, unit_price, line_total] =
        fields[..]
    else {
        anyhow::bail!("{} columns, not 12", fields.len());
    };
    let number = |text: &str| text.parse::<i64>().with_context(|| format!("{text:?} is not a number"));
    let method_value = match method {
        "CARD" => PaymentMethod::Card,
        "BANK_TRANSFER" => PaymentMethod::BankTransfer,
        "VIRTUAL_ACCOUNT" => PaymentMethod::VirtualAccount,
        "MOBILE" => PaymentMethod::Mobile,
        other => anyhow::bail!("{other:?} is not a payment method"),
    };
    Ok(Item {
        order: number(order)?,
        amounts: OrderAmounts {
            subtotal: number(subtotal)?,
            coupon_discount: number(coupon)?,
            points_used: number(points)?,
            amount_paid: number(paid)?,
            fee: 0,
        },
        method: method_value,
        method_text: method,
        payment_key: key,
        option: number(option)?,
        product: number(product)?,
        quantity: number(quantity)?,
        unit_price: number(unit_price)?,
        line_total: number(line_total)?,
    })
}

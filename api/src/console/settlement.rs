//! Settlement: the business days settle-sales reached, counters first (closed, failed gate, open), then
//! the latest days (live: a day that closes or fails shows within a tick); a day's page shows its totals
//! by payment method and product option, its gates as the latest check found them, and the payment
//! reconciliation's mismatches, with its lines as CSV.

use super::{
    live::every_tick,
    page::{live_page, page, render, ConsoleError, Section},
    session::ConsoleAdmin,
};
use crate::AppState;
use axum::{
    body::Body,
    extract::{Path, State},
    http::{header, StatusCode},
    response::{
        sse::{Event, Sse},
        IntoResponse, Response,
    },
};
use chrono::NaiveDate;
use futures::Stream;
use infra::settlement::{self, Day, Totals};
use maud::{html, Markup};
use std::convert::Infallible;

const DAYS_SHOWN: i64 = 60;
const OPTIONS_SHOWN: i64 = 50;
const MISMATCHES_SHOWN: i64 = 100;
const STATUSES: [&str; 3] = ["CLOSED", "FAILED", "OPEN"];

pub async fn days_page(State(state): State<AppState>, admin: ConsoleAdmin) -> Result<Response, ConsoleError> {
    let live = days_part(&state).await?;
    let body = html! {
        div #settlement-live hx-ext="sse" sse-connect="/console/settlement/stream" sse-swap="settlement" { (live) }
    };
    Ok(render(live_page("Settlement", &admin, Section::Settlement, body)))
}

/// The days again every tick, for as long as the page stays open.
pub async fn days_stream(
    State(state): State<AppState>,
    _admin: ConsoleAdmin,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    every_tick("settlement", move || {
        let state = state.clone();
        async move { days_part(&state).await }
    })
}

/// The counters by status and the latest days as they are now.
async fn days_part(state: &AppState) -> Result<Markup, ConsoleError> {
    let days = settlement::days(&state.pool, DAYS_SHOWN).await?;
    Ok(html! {
        section.counters aria-label={ "The latest " (DAYS_SHOWN) " days by status" } {
            @for status in STATUSES {
                div.counter data-status=(status) {
                    span.count { (days.iter().filter(|day| day.status == status).count()) }
                    span.label { (status_label(status)) }
                }
            }
        }
        @if days.is_empty() {
            p.empty { "No day was settled yet: settle-batch settle-sales --date D settles one." }
        } @else {
            table.days {
                thead { tr {
                    th { "day" } th { "status" } th.num { "sales" } th.num { "reversals" } th.num { "paid" }
                    th.num { "fee" } th.num { "net" } th.num { "payment mismatches" }
                } }
                tbody { @for day in &days { (day_row(day)) } }
            }
        }
    })
}

fn status_label(status: &str) -> &'static str {
    match status {
        "CLOSED" => "closed",
        "FAILED" => "failed gate",
        _ => "open",
    }
}

fn day_row(day: &Day) -> Markup {
    html! {
        tr data-day=(day.business_date) {
            td { a href={ "/console/settlement/" (day.business_date) } { (day.business_date) } }
            td { span.status data-status=(day.status) { (status_label(&day.status)) } }
            td.num { (day.sales) } td.num { (day.reversals) } td.num { (won(day.amounts.paid)) }
            td.num { (won(day.amounts.fee)) } td.num { (won(day.amounts.net)) } td.num { (day.mismatches) }
        }
    }
}

fn parse_day(text: &str) -> Result<NaiveDate, ConsoleError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ConsoleError::refused(StatusCode::BAD_REQUEST, format!("{text:?} is not a day (YYYY-MM-DD)")))
}

fn unknown_day(date: NaiveDate) -> ConsoleError {
    ConsoleError::refused(StatusCode::NOT_FOUND, format!("no settle-sales run reached {date}"))
}

pub async fn day_page(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(date): Path<String>,
) -> Result<Response, ConsoleError> {
    let date = parse_day(&date)?;
    let pool = &state.pool;
    let (day, methods, options, gates, mismatches) = tokio::try_join!(
        settlement::day(pool, date),
        settlement::by_method(pool, date),
        settlement::by_option(pool, date, OPTIONS_SHOWN),
        settlement::gates(pool, date),
        settlement::mismatches(pool, date, MISMATCHES_SHOWN),
    )?;
    let day = day.ok_or_else(|| unknown_day(date))?;
    let body = html! {
        section.counters {
            div.counter data-status=(day.status) { span.count { (status_label(&day.status)) } span.label { "status" } }
            div.counter { span.count { (won(day.amounts.paid)) } span.label { "paid" } }
            div.counter { span.count { (won(day.amounts.fee)) } span.label { "fee" } }
            div.counter { span.count { (won(day.amounts.net)) } span.label { "net" } }
            div.counter { span.count { (day.sales) " / " (day.reversals) } span.label { "sales / reversals" } }
        }
        p { a.download href={ "/console/settlement/" (date) "/lines.csv" } download { "Download the day's lines (CSV)" } }
        h2 { "By payment method" }
        (totals_table("method", "lines", &methods))
        h2 { "By product option (most paid first)" }
        (totals_table("option", "units", &options))
        h2 { "Gates" }
        @if gates.is_empty() { p.empty { "Not checked yet." } } @else {
            table.gates {
                thead { tr { th { "gate" } th { "result" } th.num { "expected" } th.num { "found" } th { "detail" } } }
                tbody { @for gate in &gates {
                    tr data-gate=(gate.gate) {
                        td { (gate.gate) }
                        td { span.status data-status=(if gate.passed { "COMPLETED" } else { "FAILED" }) {
                            (if gate.passed { "held" } else { "failed" }) } }
                        td.num { (gate.expected) } td.num { (gate.actual) }
                        td.message { (gate.detail.as_deref().unwrap_or("")) }
                    }
                } }
            }
        }
        h2 { "Payment reconciliation mismatches" }
        @if mismatches.is_empty() { p.empty { "None at the latest reconciliation." } } @else {
            table.mismatches {
                thead { tr { th { "kind" } th { "event" } th { "payment key" } th { "order" }
                             th.num { "ours" } th.num { "theirs" } th.num { "fee expected" } th.num { "their fee" } } }
                tbody { @for m in &mismatches {
                    tr { td { (m.kind) } td { (m.event) } td { (m.payment_key) }
                         td { (optional(m.order_id)) } td.num { (optional(m.our_amount)) }
                         td.num { (optional(m.their_amount)) } td.num { (optional(m.expected_fee)) }
                         td.num { (optional(m.their_fee)) } }
                } }
            }
        }
    };
    let title = format!("Settlement of {date}");
    Ok(render(page(&title, Some(&admin), Some(Section::Settlement), body)))
}

fn totals_table(key: &str, count: &str, rows: &[Totals]) -> Markup {
    html! {
        @if rows.is_empty() { p.empty { "No line." } } @else {
            table.totals {
                thead { tr { th { (key) } th.num { (count) } th.num { "gross" } th.num { "coupons" }
                             th.num { "points" } th.num { "paid" } th.num { "fee" } th.num { "net" } } }
                tbody { @for row in rows {
                    tr { td { (row.key) } td.num { (row.count) } td.num { (won(row.amounts.gross)) }
                         td.num { (won(row.amounts.coupon_discount)) } td.num { (won(row.amounts.points)) } td.num { (won(row.amounts.paid)) }
                         td.num { (won(row.amounts.fee)) } td.num { (won(row.amounts.net)) } }
                } }
            }
        }
    }
}

fn optional(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// Won with thousands separators: `-1,234,567`.
fn won(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if amount < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// The day's lines as CSV, streamed from the database as they are read.
pub async fn lines_csv(
    State(state): State<AppState>,
    _admin: ConsoleAdmin,
    Path(date): Path<String>,
) -> Result<Response, ConsoleError> {
    let date = parse_day(&date)?;
    settlement::day(&state.pool, date).await?.ok_or_else(|| unknown_day(date))?;
    let chunks = settlement::lines_csv(state.pool.clone(), date);
    let stream = futures::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (chunk.map_err(std::io::Error::other), chunks))
    });
    let disposition = format!("attachment; filename=\"settlement-{date}.csv\"");
    let headers =
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)];
    Ok((headers, Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn won_groups_thousands_in_integers() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (-1_234_567, "-1,234,567"),
            (i64::MIN, "-9,223,372,036,854,775,808"),
        ];
        for (amount, shown) in cases {
            assert_eq!(super::won(amount), shown);
        }
    }
}

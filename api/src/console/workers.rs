//! Workers: each consumer group's lag first (its total, a chart of it while the page is open, then each
//! partition's committed position against its end), then the outbox the relay drains (rows waiting, the
//! oldest one's age, rows parked), the V3 requests the issuance worker dead-lettered by reason, then the
//! parked rows, each re-driven through the function `settle-batch outbox retry` uses, and the latest
//! re-drives with who did them; all of it live, on one SSE stream per open page.

use super::{
    actions::{confirm, ConfirmedAction},
    lag::LagReading,
    live::{chart_data, every_tick, ChartPoint},
    page::{live_page, render, ConsoleError, Section},
    session::ConsoleAdmin,
};
use crate::AppState;
use axum::{
    extract::{Path, State},
    response::{
        sse::{Event, Sse},
        Response,
    },
};
use chrono::Utc;
use futures::Stream;
use infra::{
    accounts::console::{recent_actions, ActionOutcome, ConsoleAction},
    coupons::repo::dead_letter_counts,
    kafka::ConsumerGroup,
    outbox::parked,
};
use maud::{html, Markup};
use std::convert::Infallible;

const PARKED_SHOWN: i64 = 100;
const ACTIONS_SHOWN: i64 = 10;

pub async fn workers_page(State(state): State<AppState>, admin: ConsoleAdmin) -> Result<Response, ConsoleError> {
    let live = live_part(&state).await?;
    let body = html! {
        div #workers-live hx-ext="sse" sse-connect="/console/workers/stream" sse-swap="workers" { (live) }
        h2 { "Consumer lag over time" }
        div #lag-chart .live-chart data-chart-from="lag-data"
            aria-label="Records each consumer group has yet to commit, over the time this page is open" {}
    };
    Ok(render(live_page("Workers", &admin, Section::Workers, body)))
}

/// The whole page again every tick, for as long as it stays open.
pub async fn workers_stream(
    State(state): State<AppState>,
    _admin: ConsoleAdmin,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    every_tick("workers", move || {
        let state = state.clone();
        async move { live_part(&state).await }
    })
}

/// The lag, the outbox, the dead letters, the parked rows and the latest re-drives as they are now.
async fn live_part(state: &AppState) -> Result<Markup, ConsoleError> {
    let pool = &state.pool;
    let (lag, outbox) = tokio::join!(state.console.lag.reading(), outbox_part(pool));
    Ok(html! { (lag_part(&lag)) (outbox?) })
}

/// Each group's total lag as counters and chart numbers, then every partition's position.
fn lag_part(reading: &LagReading) -> Markup {
    let lags = match reading {
        Ok(lags) => lags,
        Err(why) => return html! { p.error data-lag="unknown" { "Consumer lag unknown: " (why) } },
    };
    let totals: Vec<(ConsumerGroup, i64)> = ConsumerGroup::ALL
        .into_iter()
        .map(|group| (group, lags.iter().filter(|lag| lag.group == group).map(|lag| lag.lag).sum()))
        .collect();
    let series: Vec<ChartPoint> =
        totals.iter().map(|(group, lag)| ChartPoint { key: group.name(), label: group.name(), value: *lag }).collect();
    html! {
        section.counters aria-label="Consumer lag now" {
            @for (group, lag) in &totals {
                div.counter data-counter={ "lag-" (group.name()) } { span.count { (lag) } span.label { (group.name()) " lag" } }
            }
        }
        (chart_data("lag-data", &series))
        @if lags.is_empty() { p.empty { "No consumer group's topic exists yet." } } @else {
            table.lag {
                thead { tr { th { "group" } th.num { "partition" } th.num { "committed" } th.num { "end" } th.num { "lag" } } }
                tbody { @for lag in lags.iter() {
                    tr data-lag-group=(lag.group.name()) data-partition=(lag.partition) {
                        td { (lag.group.name()) } td.num { (lag.partition) }
                        td.num { @match lag.committed { Some(offset) => (offset), None => "none" } }
                        td.num { (lag.end) } td.num.lag { (lag.lag) }
                    }
                } }
            }
        }
    }
}

/// The outbox, its parked rows and their re-drives, and the dead-lettered issue requests.
async fn outbox_part(pool: &sqlx::PgPool) -> Result<Markup, ConsoleError> {
    let ((waiting, oldest), parked_count, rows, actions, dead_letters) = tokio::try_join!(
        parked::backlog(pool),
        parked::count(pool),
        parked::list(pool, PARKED_SHOWN),
        recent_actions(pool, &[ConsoleAction::RedriveOutboxRow], ACTIONS_SHOWN),
        dead_letter_counts(pool),
    )?;
    let oldest_secs = oldest.map_or(0, |oldest| (Utc::now() - oldest).num_seconds().max(0));
    Ok(html! {
        section.counters aria-label="The outbox now" {
            div.counter data-counter="outbox-waiting" { span.count { (waiting) } span.label { "outbox rows waiting" } }
            div.counter data-counter="outbox-oldest" { span.count { (oldest_secs) " s" } span.label { "oldest waiting" } }
            div.counter data-counter="outbox-parked" data-status=(if parked_count > 0 { "FAILED" } else { "COMPLETED" }) {
                span.count { (parked_count) } span.label { "parked" }
            }
        }
        h2 { "V3 issue requests dead-lettered by the issuance worker" }
        @if dead_letters.is_empty() { p.empty { "None." } } @else {
            table.dead-letters {
                thead { tr { th { "reason" } th.num { "in all" } th.num { "last 24 h" } } }
                tbody { @for (reason, all, day) in &dead_letters {
                    tr data-dead-letters=(reason) { td { (reason) } td.num { (all) } td.num { (day) } }
                } }
            }
        }
        h2 { "Parked outbox rows" }
        @if rows.is_empty() { p.empty { "None: every event is delivered or on its way." } } @else {
            table.parked {
                thead { tr { th { "id" } th { "aggregate" } th { "event" } th.num { "attempts" } th { "parked (UTC)" }
                             th.num { "waiting behind" } th { "last error" } th { "" } } }
                tbody { @for row in &rows {
                    tr data-outbox-row=(row.id) {
                        td { (row.id) } td { (row.aggregate_type) "/" (row.aggregate_id) } td { (row.event_type) }
                        td.num { (row.attempts) } td { (row.parked_at.format("%Y-%m-%d %H:%M:%S")) }
                        td.num { (row.waiting) } td.message { (row.last_error.as_deref().unwrap_or("")) }
                        td { a.action href={ "/console/workers/outbox/" (row.id) "/redrive" } { "Re-drive" } }
                    }
                } }
            }
        }
        h2 { "Latest re-drives" }
        @if actions.is_empty() { p.empty { "None yet." } } @else {
            table.actions {
                thead { tr { th { "when (UTC)" } th { "who" } th { "row" } th { "outcome" } } }
                tbody { @for action in &actions {
                    tr { td { (action.at.format("%Y-%m-%d %H:%M:%S")) } td { (action.email) } td { (action.target) }
                         td { (action.outcome) @if let Some(detail) = &action.detail { ": " (detail) } } }
                } }
            }
        }
    })
}

/// Asks before re-driving parked row `id`.
pub async fn confirm_redrive(admin: ConsoleAdmin, Path(id): Path<i64>) -> Result<Response, ConsoleError> {
    let question = format!("Re-drive parked outbox row {id}?");
    let consequence = "The relay sends it again with a fresh attempt count, then the rows of its aggregate behind it.";
    let path = format!("/console/workers/outbox/{id}/redrive");
    Ok(render(confirm(&admin, Section::Workers, &question, consequence, &path, "Re-drive it")))
}

/// Re-drives parked row `id` through `parked::retry`, recorded with who and when.
pub async fn redrive(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    confirmed: ConfirmedAction,
) -> Result<Response, ConsoleError> {
    let outcome = if parked::retry(&state.pool, id).await? {
        ActionOutcome::Done
    } else {
        ActionOutcome::Refused(format!("outbox row {id} is not parked (re-driven already, or no such row)"))
    };
    let done = format!("Outbox row {id} is queued again.");
    let target = (ConsoleAction::RedriveOutboxRow, format!("outbox row {id}"));
    confirmed.conclude(&state, target, outcome, &done).await
}

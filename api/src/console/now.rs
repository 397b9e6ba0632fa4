//! Now: what a promotion's operators watch during a rush. Counters first (orders and coupons of the last
//! minute, V3 issue requests per second), this process's V3 answers by status, then the coupon policies open for issuance with the stock they have left and a chart of it,
//! then this process's circuit breakers and bulkheads and where Redis is. The live part is re-rendered
//! every second on one Server-Sent Events stream per page (htmx swaps it in; console.js feeds the chart
//! from the numbers it carries); without JavaScript the page shows the same as of its loading.

use super::{
    live::{chart_data, every_tick, ChartPoint},
    page::{live_page, render, ConsoleError, Section},
    session::ConsoleAdmin,
};
use crate::AppState;
use axum::{
    extract::State,
    response::{
        sse::{Event, Sse},
        Response,
    },
};
use futures::Stream;
use maud::{html, Markup};
use std::{
    collections::{BTreeMap, VecDeque},
    convert::Infallible,
    sync::Arc,
    time::Instant,
};

/// The policies shown: those open for issuance, latest window first.
const POLICIES_SHOWN: i64 = 8;

/// A coupon policy's stock as the database has it (issued counts what the issuance workers committed).
#[derive(Debug, Clone)]
struct PolicyStock {
    id: i64,
    name: String,
    total: i64,
    issued: i64,
}

/// One reading of everything the live part shows, shared by every open Now page.
pub struct Reading {
    at: Instant,
    orders_last_minute: i64,
    /// Coupons the policies counted as issued, in all, at the readings of the last minute (this one
    /// last): a count of the coupons table's last minute cost a query proportional to a rush.
    issued_totals: VecDeque<(Instant, i64)>,
    policies: Vec<PolicyStock>,
    /// V3 issue requests this process answered since it started, by status.
    v3_answers: BTreeMap<u16, u64>,
    /// And per second since the previous reading (none for the first one).
    v3_per_second: Option<u64>,
}

/// The window of the coupons-per-minute rate.
const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);

/// The previous readings' issued totals still within a minute, then this one's.
fn issued_totals(previous: Option<&Reading>, at: Instant, issued: i64) -> VecDeque<(Instant, i64)> {
    let mut totals = previous.map(|previous| previous.issued_totals.clone()).unwrap_or_default();
    while totals.front().is_some_and(|(then, _)| at.duration_since(*then) > MINUTE) {
        totals.pop_front();
    }
    totals.push_back((at, issued));
    totals
}

impl Reading {
    /// Coupons issued per minute over the readings of the last minute (exact once the console has been
    /// watched for a minute; until then the rate of the time it has); none before a second reading.
    fn coupons_per_minute(&self) -> Option<i64> {
        let ((first, from), (last, to)) = (self.issued_totals.front()?, self.issued_totals.back()?);
        let millis = last.duration_since(*first).as_millis() as i64;
        (millis > 0).then(|| (to - from).max(0) * MINUTE.as_millis() as i64 / millis)
    }
}

/// The V3 issue route as the request metrics label it.
const V3_ISSUE: (&str, &str) = ("POST", "/api/v3/coupons");

/// This process's answers to V3 issue requests so far, by status, from its own request metrics (the
/// histogram's `_count` series in the Prometheus text `/metrics` serves).
fn v3_answers() -> BTreeMap<u16, u64> {
    let Ok(metrics) = infra::metrics::install() else { return BTreeMap::new() };
    let mut answers = BTreeMap::new();
    for line in metrics.render().lines() {
        let Some(rest) = line.strip_prefix("http_server_request_duration_seconds_count{") else { continue };
        let Some((labels, value)) = rest.split_once("} ") else { continue };
        let label = |name: &str| {
            labels.split(',').find_map(|pair| pair.strip_prefix(name)?.strip_prefix("=\"")?.strip_suffix('"'))
        };
        if (label("method"), label("route")) != (Some(V3_ISSUE.0), Some(V3_ISSUE.1)) {
            continue;
        }
        if let (Some(status), Ok(count)) = (label("status").and_then(|s| s.parse().ok()), value.trim().parse::<f64>()) {
            *answers.entry(status).or_insert(0) += count as u64;
        }
    }
    answers
}

/// The shared reading: made now if the last one is stale, with the V3 rate since the one before.
async fn reading(state: &AppState) -> sqlx::Result<Arc<Reading>> {
    state.console.now.get(|previous| async move { read(state, previous.as_deref()).await.map(Arc::new) }).await
}

async fn read(state: &AppState, previous: Option<&Reading>) -> sqlx::Result<Reading> {
    let pool = &state.pool;
    let counts = sqlx::query!(
        r#"SELECT (SELECT count(*) FROM orders WHERE created_at > now() - interval '1 minute') AS "orders!",
                  (SELECT coalesce(sum(issued_quantity), 0) FROM coupon_policies)::bigint AS "issued!""#
    )
    .fetch_one(pool);
    let policies = sqlx::query_as!(
        PolicyStock,
        r#"SELECT id, name, total_quantity::bigint AS "total!", issued_quantity::bigint AS "issued!"
           FROM coupon_policies WHERE now() BETWEEN issue_starts_at AND issue_ends_at
           ORDER BY issue_starts_at DESC, id DESC LIMIT $1"#,
        POLICIES_SHOWN
    )
    .fetch_all(pool);
    let (counts, policies) = tokio::try_join!(counts, policies)?;
    let (at, v3_answers) = (Instant::now(), v3_answers());
    let v3_per_second = previous.map(|previous| {
        let answered = |reading: &BTreeMap<u16, u64>| reading.values().sum::<u64>();
        let millis = at.duration_since(previous.at).as_millis().max(1) as u64;
        answered(&v3_answers).saturating_sub(answered(&previous.v3_answers)) * 1_000 / millis
    });
    Ok(Reading {
        at,
        orders_last_minute: counts.orders,
        issued_totals: issued_totals(previous, at, counts.issued),
        policies,
        v3_answers,
        v3_per_second,
    })
}

/// The live part: the counters, the policies, the process's protections, and the chart's numbers.
fn live(state: &AppState, reading: &Reading) -> Markup {
    let keys: Vec<String> = reading.policies.iter().map(|policy| format!("policy-{}", policy.id)).collect();
    let chart: Vec<ChartPoint> = reading
        .policies
        .iter()
        .zip(&keys)
        .map(|(policy, key)| ChartPoint { key, label: &policy.name, value: policy.total - policy.issued })
        .collect();
    html! {
        section.counters aria-label="The last minute" {
            div.counter data-counter="orders-per-minute" { span.count { (reading.orders_last_minute) } span.label { "orders / min" } }
            div.counter data-counter="coupons-per-minute" {
                span.count { @match reading.coupons_per_minute() { Some(rate) => (rate), None => "–" } }
                span.label { "coupons issued / min" }
            }
            div.counter data-counter="v3-per-second" {
                span.count { @match reading.v3_per_second { Some(rate) => (rate), None => "–" } }
                span.label { "V3 issue requests / s" }
            }
        }
        h2 { "V3 issue answers by status (this process, since it started)" }
        @if reading.v3_answers.is_empty() { p.empty { "None yet." } } @else {
            table.answers {
                thead { tr { @for status in reading.v3_answers.keys() { th.num { (status) } } } }
                tbody { tr { @for (status, count) in &reading.v3_answers { td.num data-status-code=(status) { (count) } } } }
            }
        }
        h2 { "Coupon policies open for issuance" }
        @if reading.policies.is_empty() { p.empty { "None open now." } } @else {
            table.policies {
                thead { tr { th { "policy" } th.num { "quantity" } th.num { "issued" } th.num { "left" } } }
                tbody { @for policy in &reading.policies {
                    tr data-policy=(policy.id) {
                        td { (policy.name) } td.num { (policy.total) } td.num { (policy.issued) }
                        td.num.left { (policy.total - policy.issued) }
                    }
                } }
            }
        }
        (chart_data("stock-data", &chart))
        h2 { "This process" }
        table.protections {
            thead { tr { th { "" } th { "name" } th { "state" } } }
            tbody {
                @for breaker in [state.redis.breaker(), &state.broker, state.payments.breaker()] {
                    tr data-breaker=(breaker.name()) { td { "circuit breaker" } td { (breaker.name()) }
                        td { span.status data-status=(breaker.state()) { (breaker.state()) } } }
                }
                @for bulkhead in state.protection.bulkheads.all() {
                    @let (inside, capacity) = bulkhead.occupancy();
                    tr data-bulkhead=(bulkhead.name()) { td { "bulkhead" } td { (bulkhead.name()) }
                        td { (inside) " of " (capacity) " inside" } }
                }
                tr { td { "Redis" } td { "master" } td { (state.redis.master().unwrap_or_else(|| "single server".to_owned())) } }
            }
        }
    }
}

pub async fn now_page(State(state): State<AppState>, admin: ConsoleAdmin) -> Result<Response, ConsoleError> {
    let reading = reading(&state).await?;
    let body = html! {
        div #now-live hx-ext="sse" sse-connect="/console/now/stream" sse-swap="now" { (live(&state, &reading)) }
        h2 { "Stock left" }
        div #stock-chart .live-chart data-chart-from="stock-data" aria-label="Coupons left per policy over the time this page is open" {}
    };
    Ok(render(live_page("Now", &admin, Section::Now, body)))
}

/// The live part again every tick.
pub async fn now_stream(
    State(state): State<AppState>,
    _admin: ConsoleAdmin,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    every_tick("now", move || {
        let state = state.clone();
        async move { Ok(live(&state, &*reading(&state).await?)) }
    })
}

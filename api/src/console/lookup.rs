//! Orders and users, for support: an order by its id (its amounts, payment and history), or a user by
//! e-mail address or id (profile, balance, point lots, login history, latest orders). Read-only: support
//! changes nothing from here.

use super::{
    page::{page, render, ConsoleError, Section},
    session::ConsoleAdmin,
};
use crate::AppState;
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use domain::{account::Email, OrderId, UserId};
use infra::{
    accounts::{history, users},
    points::{ledger, lots},
    shop::orders,
};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};

const ROWS_SHOWN: i64 = 20;

#[derive(Debug, Default, Deserialize)]
pub struct LookupQuery {
    /// An order id, or a user's e-mail address.
    #[serde(default)]
    q: String,
    /// A user's id (the order page links its buyer so).
    #[serde(default)]
    user: Option<i64>,
}

/// How a stored enum reads in the database and the API (`PENDING_PAYMENT`).
fn stored(value: &impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default()
}

fn search_form(q: &str) -> Markup {
    html! {
        form.filters method="get" action="/console/lookup" {
            label { "Order id or e-mail " input type="search" name="q" value=(q) required; }
            button type="submit" { "Look up" }
        }
    }
}

pub async fn lookup_page(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Query(query): Query<LookupQuery>,
) -> Result<Response, ConsoleError> {
    let q = query.q.trim();
    let found = match (query.user, q) {
        (Some(id), _) => Some(user_view(&state, UserId::parse(id).map_err(|_| bad_lookup())?).await?),
        (None, "") => None,
        (None, q) if q.contains('@') => {
            let email = Email::parse(q).map_err(|_| bad_lookup())?;
            let account =
                users::credentials(&state.pool, &email).await?.ok_or_else(|| not_found("no user has this address"))?;
            Some(user_view(&state, UserId::parse(account.id).map_err(anyhow::Error::from)?).await?)
        }
        (None, q) => {
            let id = q.parse::<i64>().ok().and_then(|id| OrderId::parse(id).ok()).ok_or_else(bad_lookup)?;
            Some(order_view(&state, id).await?)
        }
    };
    let body = html! { (search_form(q)) @if let Some(found) = found { (found) } };
    Ok(render(page("Orders and users", Some(&admin), Some(Section::Lookup), body)))
}

fn bad_lookup() -> ConsoleError {
    ConsoleError::refused(
        StatusCode::BAD_REQUEST,
        "look up an order by its id (a positive number) or a user by e-mail address",
    )
}

fn not_found(what: &str) -> ConsoleError {
    ConsoleError::refused(StatusCode::NOT_FOUND, what)
}

async fn order_view(state: &AppState, id: OrderId) -> Result<Markup, ConsoleError> {
    let placed = orders::order(&state.pool, id).await?.ok_or_else(|| not_found("no such order"))?;
    let (history, payment) =
        tokio::try_join!(orders::history_of(&state.pool, id.get()), orders::latest_attempt(&state.pool, id.get()))?;
    let order = &placed.order;
    Ok(html! {
        h2 data-order=(order.id) { "Order " (order.id) " · " (stored(&order.status)) }
        table.facts { tbody {
            tr { th { "buyer" } td { a href={ "/console/lookup?user=" (order.user_id) } { "user " (order.user_id) } } }
            tr { th { "subtotal" } td.num { (order.subtotal) } }
            tr { th { "coupon" } td.num { (order.coupon_discount) } }
            tr { th { "points" } td.num { (order.points_used) } }
            tr { th { "to pay" } td.num { (order.amount_to_pay) } }
            tr { th { "payment method" } td { (stored(&order.payment_method)) } }
            tr { th { "provider's order id" } td { (order.payment_order_id()) } }
            tr { th { "placed (UTC)" } td { (order.created_at.format("%Y-%m-%d %H:%M:%S")) } }
        } }
        h2 { "Payment" }
        @match &payment {
            None => p.empty { "No payment attempt." },
            Some(attempt) => table.facts { tbody {
                tr { th { "status" } td data-payment=(stored(&attempt.status)) { (stored(&attempt.status)) } }
                tr { th { "amount" } td.num { (attempt.amount) } }
                tr { th { "method" } td { (attempt.method.as_deref().unwrap_or("-")) } }
                tr { th { "failure" } td { (attempt.failure_code.as_deref().unwrap_or("-")) } }
            } },
        }
        h2 { "History" }
        table.history {
            thead { tr { th { "when (UTC)" } th { "from" } th { "to" } th { "by" } th { "why" } th { "trace id" } } }
            tbody { @for row in &history {
                tr { td { (row.changed_at.format("%Y-%m-%d %H:%M:%S")) }
                     td { (row.from_status.as_ref().map(stored).unwrap_or_default()) } td { (stored(&row.to_status)) }
                     td { (row.actor) } td { (row.reason.as_deref().unwrap_or("")) } td { (row.trace_id.as_deref().unwrap_or("")) } }
            } }
        }
    })
}

async fn user_view(state: &AppState, user: UserId) -> Result<Markup, ConsoleError> {
    let pool = &state.pool;
    let (profile, balance, lots, logins, orders) = tokio::try_join!(
        users::profile(pool, user),
        ledger::balance(pool, user),
        lots::lots_of(pool, user, ROWS_SHOWN),
        history::page(pool, user, None, ROWS_SHOWN),
        orders::orders_of(pool, user, i64::MAX, ROWS_SHOWN, None),
    )?;
    let profile = profile.ok_or_else(|| not_found("no such user"))?;
    Ok(html! {
        h2 data-user=(profile.id) { (profile.name) " · " (profile.email) }
        table.facts { tbody {
            tr { th { "id" } td { (profile.id) } }
            tr { th { "role" } td { (profile.role.as_str()) } }
            tr { th { "since (UTC)" } td { (profile.created_at.format("%Y-%m-%d %H:%M:%S")) } }
            @let balance = balance.map_or(0, |(balance, _)| balance);
            tr { th { "point balance" } td.num data-balance=(balance) { (balance) } }
        } }
        h2 { "Point lots (newest first)" }
        @if lots.is_empty() { p.empty { "None." } } @else {
            table.lots {
                thead { tr { th { "lot" } th { "source" } th.num { "amount" } th.num { "remaining" } th { "expires (UTC)" } th { "closed" } } }
                tbody { @for lot in &lots {
                    tr { td { (lot.id) } td { (stored(&lot.source)) } td.num { (lot.amount) } td.num { (lot.remaining) }
                         td { (lot.expires_at.format("%Y-%m-%d")) }
                         td { (lot.closed_at.map(|at| at.format("%Y-%m-%d").to_string()).unwrap_or_default()) } }
                } }
            }
        }
        h2 { "Sign-ins (newest first)" }
        @if logins.is_empty() { p.empty { "None." } } @else {
            table.logins {
                thead { tr { th { "when (UTC)" } th { "outcome" } th { "address" } th { "agent" } } }
                tbody { @for login in &logins {
                    tr data-login=(stored(&login.reason)) { td { (login.logged_in_at.format("%Y-%m-%d %H:%M:%S")) } td { (stored(&login.reason)) }
                         td { (login.ip_address.as_deref().unwrap_or("")) } td.message { (login.user_agent.as_deref().unwrap_or("")) } }
                } }
            }
        }
        h2 { "Latest orders" }
        @if orders.is_empty() { p.empty { "None." } } @else {
            table.orders {
                thead { tr { th { "order" } th { "status" } th.num { "to pay" } th { "placed (UTC)" } } }
                tbody { @for order in &orders {
                    tr { td { a href={ "/console/lookup?q=" (order.id) } { (order.id) } } td { (stored(&order.status)) }
                         td.num { (order.amount_to_pay) } td { (order.created_at.format("%Y-%m-%d %H:%M:%S")) } }
                } }
            }
        }
    })
}

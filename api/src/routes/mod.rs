use crate::{
    http::protect::{bulkhead, Protection},
    AppState,
};
use axum::{middleware::from_fn_with_state, Router};
use infra::bulkhead::Bulkhead;

mod coupons;
mod points;
mod points_history;
mod shop;
mod users;

/// The API's routes, by area, each area behind its own bulkhead.
pub fn router(protection: &Protection) -> Router<AppState> {
    let groups = &protection.bulkheads;
    let guarded = |routes: Router<AppState>, group: &Bulkhead| {
        let group = protection.enabled.then(|| group.clone());
        routes.route_layer(from_fn_with_state(group, bulkhead))
    };
    Router::new()
        .merge(guarded(users::router(), &groups.accounts))
        .merge(guarded(coupons::router(), &groups.issuance))
        .merge(guarded(points::router(), &groups.points))
        .merge(guarded(shop::router(), &groups.shop))
}

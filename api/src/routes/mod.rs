use crate::{
    http::protect::{bulkhead, Protection},
    AppState,
};
use axum::middleware::from_fn_with_state;
use infra::bulkhead::Bulkhead;
use utoipa_axum::router::OpenApiRouter;

mod coupons;
mod points;
mod points_expiring;
mod points_history;
mod shop;
pub(crate) mod users;

/// The API's routes, by area, each area behind its own bulkhead, with the OpenAPI document of every
/// route (each is registered through `routes!`, which reads its `#[utoipa::path]`).
pub fn router(protection: &Protection) -> OpenApiRouter<AppState> {
    let groups = &protection.bulkheads;
    let guarded = |routes: OpenApiRouter<AppState>, group: &Bulkhead| {
        let group = protection.enabled.then(|| group.clone());
        routes.route_layer(from_fn_with_state(group, bulkhead))
    };
    OpenApiRouter::new()
        .merge(guarded(users::router(), &groups.accounts))
        .merge(guarded(coupons::router(), &groups.issuance))
        .merge(guarded(points::router(), &groups.points))
        .merge(guarded(shop::router(), &groups.shop))
}

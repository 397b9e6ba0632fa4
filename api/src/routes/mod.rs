use crate::{
    config::RouteGroup,
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

/// The API's routes of the groups `served`, each group behind its own bulkhead, with the OpenAPI
/// document of every route served (each is registered through `routes!`, which reads its
/// `#[utoipa::path]`).
pub fn router(protection: &Protection, served: &[RouteGroup]) -> OpenApiRouter<AppState> {
    let bulkheads = &protection.bulkheads;
    let guarded = |routes: OpenApiRouter<AppState>, bulkhead_of_group: &Bulkhead| {
        let group = protection.enabled.then(|| bulkhead_of_group.clone());
        routes.route_layer(from_fn_with_state(group, bulkhead))
    };
    let mut router = OpenApiRouter::new();
    for group in RouteGroup::ALL.into_iter().filter(|group| served.contains(group)) {
        router = match group {
            RouteGroup::Accounts => router.merge(guarded(users::router(), &bulkheads.accounts)),
            RouteGroup::Issuance => router.merge(guarded(coupons::router(), &bulkheads.issuance)),
            RouteGroup::Points => router.merge(guarded(points::router(), &bulkheads.points)),
            RouteGroup::Shop => router.merge(guarded(shop::router(), &bulkheads.shop)),
            RouteGroup::Console => router, // not part of the API document: see `console::router`
        };
    }
    router
}

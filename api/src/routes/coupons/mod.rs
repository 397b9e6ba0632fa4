//! Coupons: policies (admin), the three issuing stages side by side, and the caller's coupons.

mod enqueue;
mod issue;
mod mine;
mod policies;
mod usage;
pub(crate) mod views;

use crate::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(policies::create, policies::list))
        .routes(routes!(policies::show))
        .routes(routes!(issue::v1_row_lock))
        .routes(routes!(issue::v2_redis_then_insert))
        .routes(routes!(issue::v3_redis_then_kafka, mine::list))
        .routes(routes!(mine::request_status))
        .routes(routes!(usage::use_for_order))
        .routes(routes!(usage::cancel_use))
}

//! Coupons: policies (admin), the three issuing stages side by side, and the caller's coupons.

mod issue;
mod mine;
mod policies;
mod usage;
pub(crate) mod views;

use crate::AppState;
use axum::{
    routing::{get, post},
    Router,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v3/coupon-policies", post(policies::create).get(policies::list))
        .route("/api/v3/coupon-policies/{id}", get(policies::show))
        .route("/api/v1/coupons", post(issue::v1_row_lock))
        .route("/api/v2/coupons", post(issue::v2_redis_then_insert))
        .route("/api/v3/coupons", post(issue::v3_redis_then_kafka).get(mine::list))
        .route("/api/v3/coupons/requests/{id}", get(mine::request_status))
        .route("/api/v3/coupons/{id}/use", post(usage::use_for_order))
        .route("/api/v3/coupons/{id}/cancel", post(usage::cancel_use))
}

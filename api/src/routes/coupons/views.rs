use crate::http::ErrorCode;
use chrono::{DateTime, Utc};
use domain::coupon::{CouponStatus, DiscountType};
use domain::whole_number;
use infra::coupons::repo::{CouponRow, PolicyRow};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    id: i64,
    name: String,
    discount_type: DiscountType,
    discount_value: i64,
    minimum_order_amount: i64,
    maximum_discount_amount: Option<i64>,
    total_quantity: i32,
    issued_quantity: i32,
    remaining_quantity: i32,
    start_time: DateTime<Utc>,
    end_time: DateTime<Utc>,
    coupon_valid_days: i32,
    created_at: DateTime<Utc>,
}

impl From<PolicyRow> for PolicyView {
    fn from(row: PolicyRow) -> Self {
        Self {
            remaining_quantity: row.total_quantity - row.issued_quantity,
            id: row.id,
            name: row.name,
            discount_type: row.discount_type,
            discount_value: row.discount_value,
            minimum_order_amount: row.minimum_order_amount,
            maximum_discount_amount: row.maximum_discount_amount,
            total_quantity: row.total_quantity,
            issued_quantity: row.issued_quantity,
            start_time: row.start_time,
            end_time: row.end_time,
            coupon_valid_days: row.coupon_valid_days,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CouponView {
    id: i64,
    policy_id: i64,
    user_id: i64,
    status: CouponStatus,
    order_id: Option<i64>,
    issued_at: DateTime<Utc>,
    valid_until: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
}

impl From<CouponRow> for CouponView {
    fn from(row: CouponRow) -> Self {
        Self {
            id: row.id,
            policy_id: row.policy_id,
            user_id: row.user_id,
            status: row.status,
            order_id: row.order_id,
            issued_at: row.issued_at,
            valid_until: row.valid_until,
            used_at: row.used_at,
        }
    }
}

/// `?after=<last id seen>&limit=<1..=100>`: keyset pagination, stable under concurrent inserts.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The last id of the previous page (`nextAfter`); 0 for the first page.
    #[serde(default, deserialize_with = "whole_number::int")]
    #[param(minimum = 0, default = 0)]
    pub after: i64,
    #[serde(default = "default_limit", deserialize_with = "whole_number::int")]
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: i64,
}

fn default_limit() -> i64 {
    20
}

impl PageQuery {
    pub fn checked_limit(&self) -> Result<i64, crate::http::ApiError> {
        if (1..=100).contains(&self.limit) && self.after >= 0 {
            Ok(self.limit)
        } else {
            Err(crate::http::ApiError::new(ErrorCode::InvalidQuery, "limit must be 1 to 100 and after not negative"))
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

impl<T> Page<T> {
    /// A page of views made from `rows`; a full page points at its last row's id for the next one.
    pub fn from_rows<R>(rows: Vec<R>, limit: i64, id_of: impl Fn(&R) -> i64, view: impl Fn(R) -> T) -> Self {
        let next_after = if rows.len() as i64 == limit { rows.last().map(&id_of) } else { None };
        Self { items: rows.into_iter().map(view).collect(), next_after }
    }
}

//! Policy and coupon rows. Quantity and one-per-user are enforced by the schema (see the migration);
//! these functions translate its verdicts into [`IssueRejection`]s.

use chrono::{DateTime, Utc};
use domain::{
    coupon::{
        decide_issue, CouponStatus, DiscountType, IssueContext, IssueRejection, NewPolicy, PolicyStock, RequestStatus,
    },
    PolicyId, UserId,
};
use sqlx::{PgConnection, PgExecutor, PgPool};

#[derive(Debug, Clone)]
pub struct PolicyRow {
    pub id: i64,
    pub name: String,
    pub discount_type: DiscountType,
    pub discount_value: i64,
    pub minimum_order_amount: i64,
    pub maximum_discount_amount: Option<i64>,
    pub total_quantity: i32,
    pub issued_quantity: i32,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub coupon_valid_days: i32,
    pub created_at: DateTime<Utc>,
}

impl PolicyRow {
    pub fn policy_id(&self) -> anyhow::Result<PolicyId> {
        Ok(PolicyId::parse(self.id)?)
    }

    /// What a batch decision needs to know of the policy (the issued count as read).
    pub fn stock(&self) -> PolicyStock {
        PolicyStock {
            starts_at: self.start_time,
            ends_at: self.end_time,
            total_quantity: i64::from(self.total_quantity),
            issued: i64::from(self.issued_quantity),
        }
    }

    pub fn issue_context(&self, issued: i64, already_issued_to_user: bool) -> IssueContext {
        let stock = self.stock();
        IssueContext {
            starts_at: stock.starts_at,
            ends_at: stock.ends_at,
            total_quantity: stock.total_quantity,
            issued,
            already_issued_to_user,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CouponRow {
    pub id: i64,
    pub policy_id: i64,
    pub user_id: i64,
    pub request_id: Option<uuid::Uuid>,
    pub status: CouponStatus,
    pub order_id: Option<i64>,
    pub issued_at: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub cancelled_order_id: Option<i64>,
}

pub async fn insert_policy(pool: &PgPool, policy: &NewPolicy) -> sqlx::Result<PolicyRow> {
    sqlx::query_as!(
        PolicyRow,
        r#"INSERT INTO coupon_policies (name, discount_type, discount_value, minimum_order_amount,
             maximum_discount_amount, total_quantity, issue_starts_at, issue_ends_at, coupon_valid_days)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           RETURNING id, name, discount_type AS "discount_type: DiscountType", discount_value, minimum_order_amount,
             maximum_discount_amount, total_quantity, issued_quantity, issue_starts_at AS start_time,
             issue_ends_at AS end_time, coupon_valid_days, created_at"#,
        policy.name,
        policy.discount_type as DiscountType,
        policy.discount_value,
        policy.minimum_order_amount,
        policy.maximum_discount_amount,
        policy.total_quantity,
        policy.start_time,
        policy.end_time,
        policy.coupon_valid_days,
    )
    .fetch_one(pool)
    .await
}

pub async fn find_policy<'e>(executor: impl PgExecutor<'e>, id: PolicyId) -> sqlx::Result<Option<PolicyRow>> {
    sqlx::query_as!(
        PolicyRow,
        r#"SELECT id, name, discount_type AS "discount_type: DiscountType", discount_value, minimum_order_amount,
             maximum_discount_amount, total_quantity, issued_quantity, issue_starts_at AS start_time,
             issue_ends_at AS end_time, coupon_valid_days, created_at
           FROM coupon_policies WHERE id = $1"#,
        id.get()
    )
    .fetch_optional(executor)
    .await
}

/// Reads a policy and locks it against other issuers until the transaction ends. NO KEY UPDATE, not
/// UPDATE: an issuing transaction already holds KEY SHARE on the row (the foreign key of its request
/// rows), and so may another worker's; with FOR UPDATE each would wait for the other's KEY SHARE, a
/// deadlock whenever two workers meet on a policy.
pub async fn lock_policy_for_issue(connection: &mut PgConnection, id: PolicyId) -> sqlx::Result<Option<PolicyRow>> {
    let locked = sqlx::query_scalar!("SELECT id FROM coupon_policies WHERE id = $1 FOR NO KEY UPDATE", id.get())
        .fetch_optional(&mut *connection)
        .await?;
    // Read after the lock: under READ COMMITTED the read sees every issuer that committed before it.
    match locked {
        Some(_) => find_policy(connection, id).await,
        None => Ok(None),
    }
}

/// One page of policies in id order, after the id `after` (keyset pagination).
pub async fn list_policies(pool: &PgPool, after: i64, limit: i64) -> sqlx::Result<Vec<PolicyRow>> {
    sqlx::query_as!(
        PolicyRow,
        r#"SELECT id, name, discount_type AS "discount_type: DiscountType", discount_value, minimum_order_amount,
             maximum_discount_amount, total_quantity, issued_quantity, issue_starts_at AS start_time,
             issue_ends_at AS end_time, coupon_valid_days, created_at
           FROM coupon_policies WHERE id > $1 ORDER BY id LIMIT $2"#,
        after,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Every user who holds a coupon of `policy`: the seed of the Redis user set.
pub async fn policy_holders(pool: &PgPool, policy: PolicyId) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar!("SELECT user_id FROM coupons WHERE policy_id = $1", policy.get()).fetch_all(pool).await
}

/// V1, the origin's method kept as the baseline: lock the policy row, count its coupons, check, insert.
pub async fn issue_with_row_lock(
    pool: &PgPool,
    policy: PolicyId,
    user: UserId,
) -> anyhow::Result<Result<CouponRow, IssueRejection>> {
    let mut tx = pool.begin().await?;
    // FOR UPDATE, the origin's lock (V1 is kept as it was, to be measured against).
    let locked = sqlx::query_as!(
        PolicyRow,
        r#"SELECT id, name, discount_type AS "discount_type: DiscountType", discount_value, minimum_order_amount,
             maximum_discount_amount, total_quantity, issued_quantity, issue_starts_at AS start_time,
             issue_ends_at AS end_time, coupon_valid_days, created_at
           FROM coupon_policies WHERE id = $1 FOR UPDATE"#,
        policy.get()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = locked else {
        return Ok(Err(IssueRejection::UnknownPolicy));
    };
    let counted = sqlx::query!(
        r#"SELECT count(*) AS "issued!", coalesce(bool_or(user_id = $2), false) AS "already!"
           FROM coupons WHERE policy_id = $1"#,
        policy.get(),
        user.get()
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Err(rejection) = decide_issue(&row.issue_context(counted.issued, counted.already), Utc::now()) {
        return Ok(Err(rejection));
    }
    let coupon = insert_coupon(&mut *tx, policy, user).await?;
    tx.commit().await?;
    Ok(coupon)
}

/// Whether `user` holds a coupon of `policy`.
pub async fn holds_coupon(pool: &PgPool, policy: PolicyId, user: UserId) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT FROM coupons WHERE policy_id = $1 AND user_id = $2) AS "held!""#,
        policy.get(),
        user.get()
    )
    .fetch_one(pool)
    .await
}

/// V2's synchronous insert after a Redis reservation. The schema has the last word.
pub async fn insert_coupon<'e>(
    executor: impl PgExecutor<'e>,
    policy: PolicyId,
    user: UserId,
) -> anyhow::Result<Result<CouponRow, IssueRejection>> {
    let inserted = sqlx::query_as!(
        CouponRow,
        r#"INSERT INTO coupons (policy_id, user_id, valid_until)
           SELECT id, $2, now() + make_interval(days => coupon_valid_days) FROM coupon_policies WHERE id = $1
           RETURNING id, policy_id, user_id, request_id, status AS "status: CouponStatus", order_id, issued_at,
             valid_until, used_at, cancelled_order_id"#,
        policy.get(),
        user.get()
    )
    .fetch_optional(executor)
    .await;
    match inserted {
        Ok(Some(coupon)) => Ok(Ok(coupon)),
        Ok(None) => Ok(Err(IssueRejection::UnknownPolicy)),
        Err(error) => match rejection_for(&error) {
            Some(rejection) => Ok(Err(rejection)),
            None => Err(error.into()),
        },
    }
}

/// The rejection a constraint violation stands for, if it is one of the issuance guards.
pub fn rejection_for(error: &sqlx::Error) -> Option<IssueRejection> {
    match crate::db::violated_constraint(error)? {
        ONE_COUPON_PER_USER => Some(IssueRejection::AlreadyIssued),
        ISSUED_WITHIN_QUANTITY => Some(IssueRejection::SoldOut),
        COUPON_OF_A_KNOWN_POLICY => Some(IssueRejection::UnknownPolicy),
        _ => None,
    }
}

/// The schema's guards of issuance, named once (the migration defines them).
pub const ONE_COUPON_PER_USER: &str = "coupons_policy_user_key";
pub const ISSUED_WITHIN_QUANTITY: &str = "coupon_policies_issued_within_quantity";
const COUPON_OF_A_KNOWN_POLICY: &str = "coupons_policy_id_fkey";

/// One page of a user's coupons, newest id last seen first excluded (keyset on id).
pub async fn coupons_of(pool: &PgPool, user: UserId, after: i64, limit: i64) -> sqlx::Result<Vec<CouponRow>> {
    sqlx::query_as!(
        CouponRow,
        r#"SELECT id, policy_id, user_id, request_id, status AS "status: CouponStatus", order_id, issued_at,
             valid_until, used_at, cancelled_order_id
           FROM coupons WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3"#,
        user.get(),
        after,
        limit
    )
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone)]
pub struct RequestRow {
    pub id: uuid::Uuid,
    pub policy_id: i64,
    pub user_id: i64,
    pub status: RequestStatus,
    pub reason: Option<String>,
    pub coupon_id: Option<i64>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A request's verdict, or its rejection when it was dead-lettered (a verdict wins if a replay made one).
pub async fn find_request(pool: &PgPool, id: uuid::Uuid) -> sqlx::Result<Option<RequestRow>> {
    sqlx::query_as!(
        RequestRow,
        r#"SELECT r.id AS "id!", r.policy_id AS "policy_id!", r.user_id AS "user_id!",
             r.status AS "status!: RequestStatus", r.reason, c.id AS "coupon_id?", r.resolved_at
           FROM coupon_issue_requests r LEFT JOIN coupons c ON c.request_id = r.id WHERE r.id = $1
           UNION ALL
           SELECT d.request_id, d.policy_id, d.user_id, 'REJECTED', d.reason, NULL, d.dead_lettered_at
           FROM coupon_issue_dead_letters d
           WHERE d.request_id = $1 AND NOT EXISTS (SELECT FROM coupon_issue_requests WHERE id = $1)
           LIMIT 1"#,
        id
    )
    .fetch_optional(pool)
    .await
}

/// V3 requests dead-lettered by the issuance worker, by reason: (reason, in all, in the last 24 hours).
pub async fn dead_letter_counts(pool: &PgPool) -> sqlx::Result<Vec<(String, i64, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT reason, count(*) AS "all!", count(*) FILTER (WHERE dead_lettered_at > now() - interval '1 day') AS "day!"
           FROM coupon_issue_dead_letters GROUP BY reason ORDER BY reason"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|row| (row.reason, row.all, row.day)).collect())
}

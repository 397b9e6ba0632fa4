//! The issuance worker's database step: a batch of V3 requests persisted, one transaction per policy.
//! The database is the final guard: each policy row is locked while its coupons are inserted, at most the
//! remaining quantity is inserted, `UNIQUE (policy_id, user_id)` and the quantity CHECK back that up,
//! and a request id seen before is skipped, so redelivered records change nothing.

use domain::coupon::{IssueRejection, IssueRequested};
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// The verdict on one request that this call persisted for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub request: IssueRequested,
    pub outcome: Result<(), IssueRejection>,
}

/// What a batch did: verdicts for new requests, ids already persisted before (redelivery), and requests
/// naming a user or policy the database does not know (poison: they can never succeed).
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub verdicts: Vec<Verdict>,
    pub duplicates: Vec<Uuid>,
    pub unknown: Vec<IssueRequested>,
}

/// Locks a policy row against other issuers. NO KEY UPDATE, not UPDATE: the issuing transaction already
/// holds KEY SHARE on the row (the foreign key of its request rows), and so may another worker's; with
/// FOR UPDATE each would wait for the other's KEY SHARE: a deadlock whenever two workers meet on a policy.
pub const LOCK_POLICY_FOR_ISSUE: &str = "SELECT total_quantity, issued_quantity, issue_starts_at, issue_ends_at \
    FROM coupon_policies WHERE id = $1 FOR NO KEY UPDATE";

/// Persists a batch as one transaction per policy, run concurrently: policies share no rows, so their
/// transactions never wait on each other and the database spreads them over its cores. Each one is
/// idempotent by request id, so a crash between two of them only means the rest is redone on redelivery.
pub async fn persist_batch(pool: &PgPool, requests: &[IssueRequested]) -> sqlx::Result<BatchOutcome> {
    let mut seen_in_batch = HashSet::new();
    let mut by_policy: BTreeMap<i64, Vec<&IssueRequested>> = BTreeMap::new();
    for request in requests.iter().filter(|r| seen_in_batch.insert(r.request_id)) {
        by_policy.entry(request.policy_id.get()).or_default().push(request);
    }
    let per_policy = by_policy.into_iter().map(|(policy, batch)| persist_policy(pool, policy, batch));
    let mut outcome = BatchOutcome::default();
    for part in futures::future::try_join_all(per_policy).await? {
        outcome.verdicts.extend(part.verdicts);
        outcome.duplicates.extend(part.duplicates);
        outcome.unknown.extend(part.unknown);
    }
    Ok(outcome)
}

async fn persist_policy(pool: &PgPool, policy: i64, requests: Vec<&IssueRequested>) -> sqlx::Result<BatchOutcome> {
    let mut tx = pool.begin().await?;
    let mut outcome = BatchOutcome::default();
    let fresh = record_new_requests(&mut tx, &requests, &mut outcome).await?;
    if !fresh.is_empty() {
        outcome.verdicts = issue_for_policy(&mut tx, policy, &fresh).await?;
        record_verdicts(&mut tx, &outcome.verdicts).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Inserts PENDING rows for requests never seen; returns those, sorting the rest into the outcome.
async fn record_new_requests<'r>(
    tx: &mut Transaction<'_, Postgres>,
    requests: &[&'r IssueRequested],
    outcome: &mut BatchOutcome,
) -> sqlx::Result<Vec<&'r IssueRequested>> {
    let ids: Vec<Uuid> = requests.iter().map(|r| r.request_id).collect();
    let policies: Vec<i64> = requests.iter().map(|r| r.policy_id.get()).collect();
    let users: Vec<i64> = requests.iter().map(|r| r.user_id.get()).collect();
    let times: Vec<_> = requests.iter().map(|r| r.requested_at).collect();
    let seen: HashSet<Uuid> = sqlx::query_scalar("SELECT id FROM coupon_issue_requests WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    let inserted: HashSet<Uuid> = sqlx::query_scalar(
        "INSERT INTO coupon_issue_requests (id, policy_id, user_id, status, created_at) \
         SELECT r.id, r.policy_id, r.user_id, 'PENDING', r.requested_at \
         FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::timestamptz[]) AS r(id, policy_id, user_id, requested_at) \
         WHERE EXISTS (SELECT 1 FROM coupon_policies p WHERE p.id = r.policy_id) \
           AND EXISTS (SELECT 1 FROM users u WHERE u.id = r.user_id) \
         ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(&ids)
    .bind(&policies)
    .bind(&users)
    .bind(&times)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect();
    let mut fresh = Vec::new();
    for &request in requests {
        if inserted.contains(&request.request_id) {
            fresh.push(request);
        } else if seen.contains(&request.request_id) {
            outcome.duplicates.push(request.request_id);
        } else {
            outcome.unknown.push(request.clone());
        }
    }
    Ok(fresh)
}

/// Issues to the first requests (in arrival order) of users who hold no coupon of `policy`, up to its
/// remaining quantity, with the policy row locked; every other request gets its reason.
async fn issue_for_policy(
    tx: &mut Transaction<'_, Postgres>,
    policy: i64,
    requests: &[&IssueRequested],
) -> sqlx::Result<Vec<Verdict>> {
    let (total, issued, starts_at, ends_at): (i32, i32, chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as(LOCK_POLICY_FOR_ISSUE).bind(policy).fetch_one(&mut **tx).await?;
    let in_window: Vec<&&IssueRequested> =
        requests.iter().filter(|r| r.requested_at >= starts_at && r.requested_at < ends_at).collect();
    let ids: Vec<Uuid> = in_window.iter().map(|r| r.request_id).collect();
    let users: Vec<i64> = in_window.iter().map(|r| r.user_id.get()).collect();
    let order: Vec<i32> = (0..in_window.len() as i32).collect();
    let issued_now: HashSet<Uuid> = sqlx::query_scalar::<_, Option<Uuid>>(
        "WITH req AS (SELECT * FROM unnest($2::uuid[], $3::bigint[], $4::int[]) AS r(id, user_id, ord)), \
         fresh AS (SELECT DISTINCT ON (user_id) id, user_id, ord FROM req \
                   WHERE NOT EXISTS (SELECT 1 FROM coupons c WHERE c.policy_id = $1 AND c.user_id = req.user_id) \
                   ORDER BY user_id, ord), \
         chosen AS (SELECT id, user_id FROM fresh ORDER BY ord LIMIT $5) \
         INSERT INTO coupons (policy_id, user_id, request_id, valid_until) \
         SELECT $1, chosen.user_id, chosen.id, now() + make_interval(days => p.coupon_valid_days) \
         FROM chosen CROSS JOIN coupon_policies p WHERE p.id = $1 \
         RETURNING request_id",
    )
    .bind(policy)
    .bind(&ids)
    .bind(&users)
    .bind(&order)
    .bind(i64::from((total - issued).max(0)))
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .flatten()
    .collect();
    let holders: HashSet<i64> =
        sqlx::query_scalar("SELECT user_id FROM coupons WHERE policy_id = $1 AND user_id = ANY($2)")
            .bind(policy)
            .bind(&users)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
    Ok(requests
        .iter()
        .map(|request| {
            let outcome = if issued_now.contains(&request.request_id) {
                Ok(())
            } else if request.requested_at < starts_at || request.requested_at >= ends_at {
                Err(IssueRejection::OutsideIssueWindow)
            } else if holders.contains(&request.user_id.get()) {
                Err(IssueRejection::AlreadyIssued)
            } else {
                Err(IssueRejection::SoldOut)
            };
            Verdict { request: (*request).clone(), outcome }
        })
        .collect())
}

async fn record_verdicts(tx: &mut Transaction<'_, Postgres>, verdicts: &[Verdict]) -> sqlx::Result<()> {
    let ids: Vec<Uuid> = verdicts.iter().map(|v| v.request.request_id).collect();
    let statuses: Vec<&str> = verdicts.iter().map(|v| if v.outcome.is_ok() { "ISSUED" } else { "REJECTED" }).collect();
    let reasons: Vec<Option<&str>> = verdicts.iter().map(|v| v.outcome.err().map(IssueRejection::code)).collect();
    sqlx::query(
        "UPDATE coupon_issue_requests r SET status = v.status, reason = v.reason, resolved_at = now() \
         FROM unnest($1::uuid[], $2::text[], $3::text[]) AS v(id, status, reason) WHERE r.id = v.id",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&reasons)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

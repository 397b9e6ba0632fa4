//! The issuance worker's database step: a batch of V3 requests persisted, one transaction per policy.
//! The database is the final guard: at most the remaining quantity is inserted, `UNIQUE (policy_id,
//! user_id)` and the quantity CHECK back that up, and a request id seen before is skipped, so redelivered
//! records change nothing.
//!
//! A policy's transaction first decides from what it reads without locking the policy row, so workers
//! sharing a policy overlap until their coupon inserts (whose count update locks the row only until
//! commit). Redis admitted each request, so normally nothing changed in between; if something did, the
//! quantity CHECK or the unique key stops the insert, and the batch is decided again with the policy row
//! locked first, which cannot lose that race.

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

/// The columns of [`PolicyRow`], for both reads of a policy.
macro_rules! read_policy {
    () => {
        "SELECT total_quantity, issued_quantity, issue_starts_at, issue_ends_at FROM coupon_policies WHERE id = $1"
    };
}

/// Locks a policy row against other issuers. NO KEY UPDATE, not UPDATE: the issuing transaction already
/// holds KEY SHARE on the row (the foreign key of its request rows), and so may another worker's; with
/// FOR UPDATE each would wait for the other's KEY SHARE: a deadlock whenever two workers meet on a policy.
pub const LOCK_POLICY_FOR_ISSUE: &str = concat!(read_policy!(), " FOR NO KEY UPDATE");
const READ_POLICY: &str = read_policy!();

/// How a policy's transaction guards its decision against other issuers of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// Decide from an unlocked read; a race shows up as a constraint violation at insert.
    Optimistic,
    /// Lock the policy row before reading anything: nobody else decides for it until commit.
    PolicyLock,
}

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
    match persist_policy_guarded(pool, policy, &requests, Guard::Optimistic).await {
        Err(error) if lost_issue_race(&error) => {
            tracing::debug!(policy, %error, "another issuer changed the policy meanwhile; deciding again under its lock");
            persist_policy_guarded(pool, policy, &requests, Guard::PolicyLock).await
        }
        decided => decided,
    }
}

/// The quantity CHECK (more issued than the unlocked read allowed) or the one-coupon-per-user key (a
/// coupon given to the user since that read): the optimistic decision is stale, not wrong data.
fn lost_issue_race(error: &sqlx::Error) -> bool {
    error.as_database_error().and_then(|db| db.constraint()).is_some_and(|constraint| {
        matches!(constraint, "coupon_policies_issued_within_quantity" | "coupons_policy_user_key")
    })
}

async fn persist_policy_guarded(
    pool: &PgPool,
    policy: i64,
    requests: &[&IssueRequested],
    guard: Guard,
) -> sqlx::Result<BatchOutcome> {
    let mut tx = pool.begin().await?;
    let mut outcome = BatchOutcome::default();
    // Under PolicyLock the lock comes first: from then on no other issuer can decide for this policy, so
    // what the reads below see (requests already persisted, coupons already held) stays true until commit.
    let read = if guard == Guard::PolicyLock { LOCK_POLICY_FOR_ISSUE } else { READ_POLICY };
    let Some(policy_row) = sqlx::query_as::<_, PolicyRow>(read).bind(policy).fetch_optional(&mut *tx).await? else {
        outcome.unknown = requests.iter().map(|&request| request.clone()).collect();
        tx.commit().await?;
        return Ok(outcome);
    };
    let fresh = sort_out_known(&mut tx, requests, &mut outcome).await?;
    if !fresh.is_empty() {
        let holders = holders(&mut tx, policy, &fresh).await?;
        let verdicts = decide(&policy_row, &holders, &fresh);
        outcome.verdicts = record(&mut tx, policy, verdicts, &mut outcome.duplicates).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    total_quantity: i32,
    issued_quantity: i32,
    issue_starts_at: chrono::DateTime<chrono::Utc>,
    issue_ends_at: chrono::DateTime<chrono::Utc>,
}

/// Returns the requests to decide: not persisted before (else a duplicate) and naming a known user
/// (else unknown: it can never succeed).
async fn sort_out_known<'r>(
    tx: &mut Transaction<'_, Postgres>,
    requests: &[&'r IssueRequested],
    outcome: &mut BatchOutcome,
) -> sqlx::Result<Vec<&'r IssueRequested>> {
    let ids: Vec<Uuid> = requests.iter().map(|r| r.request_id).collect();
    let users: Vec<i64> = requests.iter().map(|r| r.user_id.get()).collect();
    let seen: HashSet<Uuid> = sqlx::query_scalar("SELECT id FROM coupon_issue_requests WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    let known_users: HashSet<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = ANY($1)")
        .bind(&users)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    let mut fresh = Vec::new();
    for &request in requests {
        if seen.contains(&request.request_id) {
            outcome.duplicates.push(request.request_id);
        } else if known_users.contains(&request.user_id.get()) {
            fresh.push(request);
        } else {
            outcome.unknown.push(request.clone());
        }
    }
    Ok(fresh)
}

/// Users of `requests` who already hold a coupon of `policy`.
async fn holders(
    tx: &mut Transaction<'_, Postgres>,
    policy: i64,
    requests: &[&IssueRequested],
) -> sqlx::Result<HashSet<i64>> {
    let users: Vec<i64> = requests.iter().map(|r| r.user_id.get()).collect();
    // One index probe per user (LATERAL ... LIMIT 1): with `user_id = ANY($2)` the planner scans every
    // coupon of the policy and filters, a cost that grows with each coupon issued during a rush.
    Ok(sqlx::query_scalar(
        "SELECT u.id FROM unnest($2::bigint[]) AS u(id) \
         CROSS JOIN LATERAL (SELECT FROM coupons c WHERE c.policy_id = $1 AND c.user_id = u.id LIMIT 1) held",
    )
    .bind(policy)
    .bind(&users)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect())
}

/// First come, first served, in arrival order: a request in the window from a user without a coupon of
/// the policy gets one while any remain; the rest get their reason.
fn decide(policy: &PolicyRow, holders: &HashSet<i64>, requests: &[&IssueRequested]) -> Vec<Verdict> {
    let mut remaining = (policy.total_quantity - policy.issued_quantity).max(0);
    let mut issued_to: HashSet<i64> = HashSet::new();
    requests
        .iter()
        .map(|request| {
            let user = request.user_id.get();
            let outcome =
                if request.requested_at < policy.issue_starts_at || request.requested_at >= policy.issue_ends_at {
                    Err(IssueRejection::OutsideIssueWindow)
                } else if holders.contains(&user) || issued_to.contains(&user) {
                    Err(IssueRejection::AlreadyIssued)
                } else if remaining > 0 {
                    remaining -= 1;
                    issued_to.insert(user);
                    Ok(())
                } else {
                    Err(IssueRejection::SoldOut)
                };
            Verdict { request: (*request).clone(), outcome }
        })
        .collect()
}

/// Writes each request once, with its verdict, then the coupons of the issued ones. A request id that
/// appeared meanwhile (another worker's redelivery) is a duplicate and issues nothing here; the quantity
/// CHECK and `UNIQUE (policy_id, user_id)` still stand behind every coupon.
async fn record(
    tx: &mut Transaction<'_, Postgres>,
    policy: i64,
    verdicts: Vec<Verdict>,
    duplicates: &mut Vec<Uuid>,
) -> sqlx::Result<Vec<Verdict>> {
    let ids: Vec<Uuid> = verdicts.iter().map(|v| v.request.request_id).collect();
    let users: Vec<i64> = verdicts.iter().map(|v| v.request.user_id.get()).collect();
    let times: Vec<_> = verdicts.iter().map(|v| v.request.requested_at).collect();
    let statuses: Vec<&str> = verdicts.iter().map(|v| if v.outcome.is_ok() { "ISSUED" } else { "REJECTED" }).collect();
    let reasons: Vec<Option<&str>> = verdicts.iter().map(|v| v.outcome.err().map(IssueRejection::code)).collect();
    let inserted: HashSet<Uuid> = sqlx::query_scalar(
        "INSERT INTO coupon_issue_requests (id, policy_id, user_id, status, reason, created_at, resolved_at) \
         SELECT r.id, $1, r.user_id, r.status, r.reason, r.requested_at, now() \
         FROM unnest($2::uuid[], $3::bigint[], $4::timestamptz[], $5::text[], $6::text[]) \
              AS r(id, user_id, requested_at, status, reason) \
         ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(policy)
    .bind(&ids)
    .bind(&users)
    .bind(&times)
    .bind(&statuses)
    .bind(&reasons)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect();
    let (recorded, raced): (Vec<Verdict>, Vec<Verdict>) =
        verdicts.into_iter().partition(|v| inserted.contains(&v.request.request_id));
    duplicates.extend(raced.iter().map(|v| v.request.request_id));
    // In user order: two issuers inserting coupons of one policy meet on its unique key in the same order,
    // so one waits for the other instead of each waiting for the other.
    let mut issued: Vec<(i64, Uuid)> = recorded
        .iter()
        .filter(|v| v.outcome.is_ok())
        .map(|v| (v.request.user_id.get(), v.request.request_id))
        .collect();
    issued.sort_unstable();
    let (issue_users, issue_ids): (Vec<i64>, Vec<Uuid>) = issued.into_iter().unzip();
    if !issue_ids.is_empty() {
        sqlx::query(
            "INSERT INTO coupons (policy_id, user_id, request_id, valid_until) \
             SELECT $1, c.user_id, c.request_id, now() + make_interval(days => p.coupon_valid_days) \
             FROM unnest($2::uuid[], $3::bigint[]) AS c(request_id, user_id) CROSS JOIN coupon_policies p \
             WHERE p.id = $1",
        )
        .bind(policy)
        .bind(&issue_ids)
        .bind(&issue_users)
        .execute(&mut **tx)
        .await?;
    }
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use domain::{PolicyId, UserId};

    fn request(user: i64, minutes_from_now: i64) -> IssueRequested {
        IssueRequested {
            request_id: Uuid::new_v4(),
            policy_id: PolicyId::parse(1).expect("id"),
            user_id: UserId::parse(user).expect("id"),
            requested_at: Utc::now() + Duration::minutes(minutes_from_now),
        }
    }

    #[test]
    fn the_first_requests_in_the_window_get_the_remaining_coupons_once_per_user() {
        let now = Utc::now();
        let policy = PolicyRow {
            total_quantity: 10,
            issued_quantity: 8,
            issue_starts_at: now - Duration::hours(1),
            issue_ends_at: now + Duration::hours(1),
        };
        let holder = 7;
        let requests = [
            request(1, 0),      // issued (1 of 2 left)
            request(1, 0),      // the same user again
            request(holder, 0), // already held a coupon before this batch
            request(2, 120),    // after the window closed
            request(3, 0),      // issued (the last one)
            request(4, 0),      // none left
        ];
        let refs: Vec<&IssueRequested> = requests.iter().collect();
        let outcomes: Vec<_> =
            decide(&policy, &HashSet::from([holder]), &refs).into_iter().map(|v| v.outcome).collect();
        assert_eq!(
            outcomes,
            [
                Ok(()),
                Err(IssueRejection::AlreadyIssued),
                Err(IssueRejection::AlreadyIssued),
                Err(IssueRejection::OutsideIssueWindow),
                Ok(()),
                Err(IssueRejection::SoldOut),
            ]
        );
    }
}

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

use super::{repo, Settlement};
use domain::{
    coupon::{decide_in_arrival_order, IssueDeadLetter, IssueRejection, IssueRequested, RequestStatus},
    PolicyId, UserId,
};
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// The verdict on one request that this call persisted for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub request: IssueRequested,
    pub outcome: Result<(), IssueRejection>,
    /// The user holds a coupon of the policy now (this one, or one from before): their reservation stays.
    pub holds_coupon: bool,
}

/// A request persisted by an earlier delivery; whether its user holds a coupon of the policy now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redelivered {
    pub request: IssueRequested,
    pub holds_coupon: bool,
}

/// What a batch did: verdicts for new requests, requests persisted by an earlier delivery, requests
/// another issuer persisted while this one decided (it settles them), and requests that can never be
/// decided (poison: an unknown user or policy).
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub verdicts: Vec<Verdict>,
    pub redelivered: Vec<Redelivered>,
    pub raced: Vec<Uuid>,
    pub unknown: Vec<(IssueRequested, IssueDeadLetter)>,
}

impl BatchOutcome {
    /// What Redis must be told: every request this batch decided, saw decided before, or found poison
    /// (an unknown user or policy holds no coupon, so its place is returned).
    pub fn settlements(&self) -> Vec<Settlement> {
        let settle = Settlement::of_request;
        self.verdicts
            .iter()
            .map(|v| settle(&v.request, v.holds_coupon))
            .chain(self.redelivered.iter().map(|r| settle(&r.request, r.holds_coupon)))
            .chain(self.unknown.iter().map(|(request, _)| settle(request, false)))
            .collect()
    }

    fn absorb(&mut self, part: BatchOutcome) {
        self.verdicts.extend(part.verdicts);
        self.redelivered.extend(part.redelivered);
        self.raced.extend(part.raced);
        self.unknown.extend(part.unknown);
    }
}

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
    let mut by_policy: BTreeMap<PolicyId, Vec<&IssueRequested>> = BTreeMap::new();
    for request in requests.iter().filter(|r| seen_in_batch.insert(r.request_id)) {
        by_policy.entry(request.policy_id).or_default().push(request);
    }
    let per_policy = by_policy.into_iter().map(|(policy, batch)| persist_policy(pool, policy, batch));
    let mut outcome = BatchOutcome::default();
    for part in futures::future::try_join_all(per_policy).await? {
        outcome.absorb(part);
    }
    Ok(outcome)
}

async fn persist_policy(pool: &PgPool, policy: PolicyId, requests: Vec<&IssueRequested>) -> sqlx::Result<BatchOutcome> {
    match persist_policy_guarded(pool, policy, &requests, Guard::Optimistic).await {
        Err(error) if lost_issue_race(&error) => {
            tracing::debug!(%policy, %error, "another issuer changed the policy meanwhile; deciding again under its lock");
            persist_policy_guarded(pool, policy, &requests, Guard::PolicyLock).await
        }
        decided => decided,
    }
}

/// The quantity CHECK (more issued than the unlocked read allowed) or the one-coupon-per-user key (a
/// coupon given to the user since that read): the optimistic decision is stale, not wrong data.
fn lost_issue_race(error: &sqlx::Error) -> bool {
    crate::db::violated_constraint(error)
        .is_some_and(|constraint| [repo::ISSUED_WITHIN_QUANTITY, repo::ONE_COUPON_PER_USER].contains(&constraint))
}

async fn persist_policy_guarded(
    pool: &PgPool,
    policy: PolicyId,
    requests: &[&IssueRequested],
    guard: Guard,
) -> sqlx::Result<BatchOutcome> {
    let mut tx = pool.begin().await?;
    let mut outcome = BatchOutcome::default();
    // Under PolicyLock the lock comes first: from then on no other issuer can decide for this policy, so
    // what the reads below see (requests already persisted, coupons already held) stays true until commit.
    let read = match guard {
        Guard::PolicyLock => repo::lock_policy_for_issue(&mut tx, policy).await?,
        Guard::Optimistic => repo::find_policy(&mut *tx, policy).await?,
    };
    let Some(policy_row) = read else {
        outcome.unknown = requests.iter().map(|&request| (request.clone(), IssueDeadLetter::UnknownPolicy)).collect();
        tx.commit().await?;
        return Ok(outcome);
    };
    let (fresh, seen) = sort_out_known(&mut tx, requests, &mut outcome).await?;
    let holders = holders(&mut tx, policy, fresh.iter().chain(&seen)).await?;
    outcome.redelivered = seen
        .iter()
        .map(|&request| Redelivered { request: request.clone(), holds_coupon: holders.contains(&request.user_id) })
        .collect();
    if !fresh.is_empty() {
        let outcomes = decide_in_arrival_order(policy_row.stock(), &holders, &fresh);
        // A user's place stays if they hold a coupon once this batch commits: from before, or issued by
        // this batch (to this request or to an earlier one of theirs in it).
        let issued_now: HashSet<UserId> =
            fresh.iter().zip(&outcomes).filter(|(_, outcome)| outcome.is_ok()).map(|(r, _)| r.user_id).collect();
        let verdicts = outcomes
            .into_iter()
            .zip(&fresh)
            .map(|(outcome, &request)| Verdict {
                request: request.clone(),
                holds_coupon: holders.contains(&request.user_id) || issued_now.contains(&request.user_id),
                outcome,
            })
            .collect();
        outcome.verdicts = record(&mut tx, policy, verdicts, &mut outcome.raced).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Splits the requests into those to decide and those persisted before (redelivery); a request naming
/// an unknown user goes to `outcome.unknown` (it can never succeed).
async fn sort_out_known<'r>(
    tx: &mut Transaction<'_, Postgres>,
    requests: &[&'r IssueRequested],
    outcome: &mut BatchOutcome,
) -> sqlx::Result<(Vec<&'r IssueRequested>, Vec<&'r IssueRequested>)> {
    let ids: Vec<Uuid> = requests.iter().map(|r| r.request_id).collect();
    let users: Vec<i64> = requests.iter().map(|r| r.user_id.get()).collect();
    let persisted: HashSet<Uuid> = sqlx::query_scalar!("SELECT id FROM coupon_issue_requests WHERE id = ANY($1)", &ids)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    let known_users: HashSet<i64> = sqlx::query_scalar!("SELECT id FROM users WHERE id = ANY($1)", &users)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    let (mut fresh, mut seen) = (Vec::new(), Vec::new());
    for &request in requests {
        if persisted.contains(&request.request_id) {
            seen.push(request);
        } else if known_users.contains(&request.user_id.get()) {
            fresh.push(request);
        } else {
            outcome.unknown.push((request.clone(), IssueDeadLetter::UnknownUser));
        }
    }
    Ok((fresh, seen))
}

/// Users of `requests` who already hold a coupon of `policy`.
async fn holders<'r>(
    tx: &mut Transaction<'_, Postgres>,
    policy: PolicyId,
    requests: impl Iterator<Item = &'r &'r IssueRequested>,
) -> sqlx::Result<HashSet<UserId>> {
    let users: Vec<i64> = requests.map(|r| r.user_id.get()).collect();
    // One index probe per user (LATERAL ... LIMIT 1): with `user_id = ANY($2)` the planner scans every
    // coupon of the policy and filters, a cost that grows with each coupon issued during a rush.
    let held: Vec<i64> = sqlx::query_scalar!(
        r#"SELECT u.id AS "id!" FROM unnest($2::bigint[]) AS u(id)
           CROSS JOIN LATERAL (SELECT FROM coupons c WHERE c.policy_id = $1 AND c.user_id = u.id LIMIT 1) held"#,
        policy.get(),
        &users
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(held.into_iter().filter_map(|user| UserId::parse(user).ok()).collect())
}

/// Writes each request once, with its verdict, then the coupons of the issued ones. A request id that
/// appeared meanwhile (another worker's redelivery) is a duplicate and issues nothing here; the quantity
/// CHECK and `UNIQUE (policy_id, user_id)` still stand behind every coupon.
async fn record(
    tx: &mut Transaction<'_, Postgres>,
    policy: PolicyId,
    verdicts: Vec<Verdict>,
    raced: &mut Vec<Uuid>,
) -> sqlx::Result<Vec<Verdict>> {
    let ids: Vec<Uuid> = verdicts.iter().map(|v| v.request.request_id).collect();
    let users: Vec<i64> = verdicts.iter().map(|v| v.request.user_id.get()).collect();
    let times: Vec<_> = verdicts.iter().map(|v| v.request.requested_at).collect();
    let statuses: Vec<RequestStatus> = verdicts
        .iter()
        .map(|v| if v.outcome.is_ok() { RequestStatus::Issued } else { RequestStatus::Rejected })
        .collect();
    let reasons: Vec<Option<&str>> = verdicts.iter().map(|v| v.outcome.err().map(IssueRejection::code)).collect();
    let inserted: HashSet<Uuid> = sqlx::query_scalar!(
        "INSERT INTO coupon_issue_requests (id, policy_id, user_id, status, reason, created_at, resolved_at)
         SELECT r.id, $1, r.user_id, r.status, r.reason, r.requested_at, now()
         FROM unnest($2::uuid[], $3::bigint[], $4::timestamptz[], $5::text[], $6::text[])
              AS r(id, user_id, requested_at, status, reason)
         ON CONFLICT (id) DO NOTHING RETURNING id",
        policy.get(),
        &ids,
        &users,
        &times,
        &statuses as &[RequestStatus],
        &reasons as &[Option<&str>],
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect();
    let (recorded, lost): (Vec<Verdict>, Vec<Verdict>) =
        verdicts.into_iter().partition(|v| inserted.contains(&v.request.request_id));
    raced.extend(lost.iter().map(|v| v.request.request_id));
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
        sqlx::query!(
            "INSERT INTO coupons (policy_id, user_id, request_id, valid_until)
             SELECT $1, c.user_id, c.request_id, now() + make_interval(days => p.coupon_valid_days)
             FROM unnest($2::uuid[], $3::bigint[]) AS c(request_id, user_id) CROSS JOIN coupon_policies p
             WHERE p.id = $1",
            policy.get(),
            &issue_ids,
            &issue_users,
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(recorded)
}

/// Records requests that went to the dead-letter topic, so their status reads REJECTED with the reason
/// (they cannot be `coupon_issue_requests` rows: their user or policy may not exist). Redelivery is a no-op.
pub async fn record_dead_letters(pool: &PgPool, dead: &[(&IssueRequested, IssueDeadLetter)]) -> sqlx::Result<()> {
    if dead.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = dead.iter().map(|(r, _)| r.request_id).collect();
    let policies: Vec<i64> = dead.iter().map(|(r, _)| r.policy_id.get()).collect();
    let users: Vec<i64> = dead.iter().map(|(r, _)| r.user_id.get()).collect();
    let times: Vec<_> = dead.iter().map(|(r, _)| r.requested_at).collect();
    let reasons: Vec<&str> = dead.iter().map(|(_, reason)| reason.code()).collect();
    sqlx::query!(
        "INSERT INTO coupon_issue_dead_letters (request_id, policy_id, user_id, requested_at, reason)
         SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::text[])
         ON CONFLICT (request_id) DO NOTHING",
        &ids,
        &policies,
        &users,
        &times,
        &reasons as &[&str],
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether `request`'s user holds a coupon of its policy: decides whether a request that could not be
/// persisted keeps its reservation.
pub async fn holds_coupon(pool: &PgPool, request: &IssueRequested) -> sqlx::Result<bool> {
    super::repo::holds_coupon(pool, request.policy_id, request.user_id).await
}

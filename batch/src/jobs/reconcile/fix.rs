//! `--fix`: corrects each balance that differs from its ledger as a delta, only if the very same
//! difference is still there, under the balance row's lock (ledger writers take that lock first, so the
//! ledger of the user cannot move meanwhile). A concurrent earn or use moved both sides by the same
//! amount, so the difference, and the delta, are unchanged: the fix never undoes a concurrent write. A
//! balance that agrees with its ledger and differs only from its lots is reported, never changed.

use infra::points::cache::BalanceCache;
use sqlx::PgPool;

#[derive(Debug, Default, Clone, Copy)]
pub struct Fixed {
    pub fixed: i64,
    pub skipped: i64,
}

pub async fn apply(pool: &PgPool, execution: i64, cache: Option<&BalanceCache>) -> anyhow::Result<Fixed> {
    let pending = sqlx::query!(
        "SELECT id, user_id, stored_balance, ledger_balance FROM reconciliation_discrepancies
         WHERE execution_id = $1 AND fixed_at IS NULL ORDER BY user_id",
        execution
    )
    .fetch_all(pool)
    .await?;
    let mut outcome = Fixed::default();
    for row in pending {
        let (id, user, stored, ledger) = (row.id, row.user_id, row.stored_balance, row.ledger_balance);
        if stored == ledger {
            // Only the lots differ: which lot is wrong takes a person with the allocations in front of them.
            tracing::warn!(
                user,
                stored,
                "the balance agrees with its ledger but not with its lots; left for an operator"
            );
            outcome.skipped += 1;
            continue;
        }
        match fix_one(pool, id, user, stored, ledger).await {
            Ok(true) => {
                outcome.fixed += 1;
                if let (Some(cache), Ok(user)) = (cache, domain::UserId::parse(user)) {
                    cache.evict(user).await;
                }
            }
            Ok(false) => {
                tracing::warn!(user, stored, ledger, "the difference changed since the snapshot; not fixed");
                outcome.skipped += 1;
            }
            Err(error) => {
                tracing::warn!(user, %error, "fixing the balance failed; left for an operator");
                outcome.skipped += 1;
            }
        }
    }
    Ok(outcome)
}

async fn fix_one(pool: &PgPool, id: i64, user: i64, stored: i64, ledger: i64) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let balance = sqlx::query_scalar!("SELECT balance FROM point_balances WHERE user_id = $1 FOR UPDATE", user)
        .fetch_optional(&mut *tx)
        .await?;
    let now = sqlx::query_scalar!(
        r#"SELECT coalesce(sum(amount), 0)::bigint AS "sum!" FROM points WHERE user_id = $1"#,
        user
    )
    .fetch_one(&mut *tx)
    .await?;
    if balance.unwrap_or(0) - now != stored - ledger {
        return Ok(false);
    }
    let delta = ledger - stored;
    // An UPDATE when the row exists: an INSERT ... ON CONFLICT would check its own (delta) row first.
    if balance.is_some() {
        sqlx::query!(
            "UPDATE point_balances SET balance = balance + $2, version = version + 1, updated_at = now()
             WHERE user_id = $1",
            user,
            delta
        )
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query!("INSERT INTO point_balances (user_id, balance, version) VALUES ($1, $2, 1)", user, delta)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query!("UPDATE reconciliation_discrepancies SET fixed_at = now() WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(user, stored, ledger, delta, "balance corrected");
    Ok(true)
}

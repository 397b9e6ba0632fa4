//! `--fix`: corrects each discrepancy of the execution as a delta, only if the very same difference is
//! still there, under the balance row's lock (ledger writers take that lock first, so the ledger of the
//! user cannot move meanwhile). A concurrent earn or use moved both sides by the same amount, so the
//! difference, and the delta, are unchanged: the fix never undoes a concurrent write.

use infra::points::cache::BalanceCache;
use sqlx::PgPool;

#[derive(Debug, Default, Clone, Copy)]
pub struct Fixed {
    pub fixed: i64,
    pub skipped: i64,
}

pub async fn apply(pool: &PgPool, execution: i64, cache: Option<&BalanceCache>) -> anyhow::Result<Fixed> {
    let pending: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT id, user_id, stored_balance, ledger_balance FROM reconciliation_discrepancies \
         WHERE execution_id = $1 AND fixed_at IS NULL ORDER BY user_id",
    )
    .bind(execution)
    .fetch_all(pool)
    .await?;
    let mut outcome = Fixed::default();
    for (id, user, stored, ledger) in pending {
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
    let balance: Option<i64> = sqlx::query_scalar("SELECT balance FROM point_balances WHERE user_id = $1 FOR UPDATE")
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
    let now: i64 = sqlx::query_scalar("SELECT coalesce(sum(amount), 0)::bigint FROM points WHERE user_id = $1")
        .bind(user)
        .fetch_one(&mut *tx)
        .await?;
    if balance.unwrap_or(0) - now != stored - ledger {
        return Ok(false);
    }
    let delta = ledger - stored;
    // An UPDATE when the row exists: an INSERT ... ON CONFLICT would check its own (delta) row first.
    let statement = if balance.is_some() {
        "UPDATE point_balances SET balance = balance + $2, version = version + 1, updated_at = now() WHERE user_id = $1"
    } else {
        "INSERT INTO point_balances (user_id, balance, version) VALUES ($1, $2, 1)"
    };
    sqlx::query(statement).bind(user).bind(delta).execute(&mut *tx).await?;
    sqlx::query("UPDATE reconciliation_discrepancies SET fixed_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(user, stored, ledger, delta, "balance corrected");
    Ok(true)
}

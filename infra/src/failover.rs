//! After the Redis connection followed a failover: the new master was a replica, and replication is
//! asynchronous, so it may lack the last writes the old master acknowledged. What Redis holds here is
//! derived from PostgreSQL, so each part is rebuilt from the database (or dropped, to be loaded again
//! on its next use). The database's constraints keep everything correct in the meantime.

use crate::{coupons::CouponStock, redis_client::Redis};
use sqlx::PgPool;

/// Runs [`rebuild`] after every failover the connection follows, until the connection is dropped.
pub fn rebuild_after_each_failover(redis: Redis, pool: PgPool) -> tokio::task::JoinHandle<()> {
    let mut switches = redis.switches();
    tokio::spawn(async move {
        while switches.changed().await.is_ok() {
            match rebuild(&redis, &pool).await {
                Ok(policies) => tracing::info!(policies, "rebuilt Redis state from the database after a failover"),
                Err(error) => tracing::error!(error = format!("{error:#}"), "rebuilding Redis state after a failover"),
            }
        }
    })
}

/// Coupon holders known to the database are added back to each policy's reservations (reservations
/// still in flight that the new master has are kept); cached balances and the shop's stock gate are
/// dropped (a lost cache write would leave a stale balance; the gate reloads committed stock). Returns
/// how many policies were rebuilt.
pub async fn rebuild(redis: &Redis, pool: &PgPool) -> anyhow::Result<usize> {
    for pattern in ["points:balance:*", "shop:stock:*"] {
        redis.delete_matching(pattern).await?;
    }
    CouponStock::new(redis.clone()).restore_holders(pool).await
}

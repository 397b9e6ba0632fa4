//! The relay's claim against real PostgreSQL: whole lanes, oldest rows first, disjoint between relays,
//! and never more rows locked than returned.

use settle_workers::outbox_relay::claim;
use std::collections::{HashMap, HashSet};
use testkit::TestEnv;

async fn lane_of(pool: &sqlx::PgPool, ids: &[i64]) -> HashMap<i64, i32> {
    sqlx::query_as("SELECT id, hashtext(aggregate_id) & $2 FROM outbox_events WHERE id = ANY($1)")
        .bind(ids)
        .bind(claim::LANES - 1)
        .fetch_all(pool)
        .await
        .expect("lanes")
        .into_iter()
        .collect()
}

#[tokio::test]
async fn two_claims_take_the_oldest_rows_of_disjoint_lanes_and_lock_only_what_they_return() {
    let env = TestEnv::new().await;
    sqlx::query(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload) \
         SELECT gen_random_uuid(), 'points', (g % 500)::text, 'PointsEarned', '{}' FROM generate_series(1, 5000) g",
    )
    .execute(&env.pool)
    .await
    .expect("backlog");

    let mut first = env.pool.begin().await.expect("tx");
    let mut second = env.pool.begin().await.expect("tx");
    let a = claim::claim(&mut first, 300).await.expect("first claim");
    let b = claim::claim(&mut second, 300).await.expect("second claim");
    assert!(!a.is_empty() && a.len() <= 300 && !b.is_empty() && b.len() <= 300, "{} and {}", a.len(), b.len());

    let ids = |rows: &[claim::Claimed]| rows.iter().map(|row| row.id).collect::<Vec<_>>();
    let (a_ids, b_ids) = (ids(&a), ids(&b));
    assert!(a_ids.windows(2).all(|w| w[0] < w[1]), "a claim is returned in id order");
    let lanes = lane_of(&env.pool, &[a_ids.clone(), b_ids.clone()].concat()).await;
    let a_lanes: HashSet<i32> = a_ids.iter().map(|id| lanes[id]).collect();
    let b_lanes: HashSet<i32> = b_ids.iter().map(|id| lanes[id]).collect();
    assert!(a_lanes.is_disjoint(&b_lanes), "two relays hold the same lane: {a_lanes:?} / {b_lanes:?}");

    // Within each lane a claim holds that lane's oldest rows: no older row of it is left out.
    for (claimed, lanes_held) in [(&a_ids, &a_lanes), (&b_ids, &b_lanes)] {
        for lane in lanes_held {
            let newest_claimed = claimed.iter().filter(|id| lanes[id] == *lane).max().expect("a row of the lane");
            let skipped: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM outbox_events WHERE hashtext(aggregate_id) & $1 = $2 AND id < $3 \
                 AND NOT (id = ANY($4))",
            )
            .bind(claim::LANES - 1)
            .bind(lane)
            .bind(newest_claimed)
            .bind(claimed)
            .fetch_one(&env.pool)
            .await
            .expect("older rows");
            assert_eq!(skipped, 0, "lane {lane}: an older row was not claimed");
        }
    }

    // Everything not returned to a claim is still free for others.
    let free: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT id FROM outbox_events WHERE sent_at IS NULL FOR UPDATE SKIP LOCKED) r",
    )
    .fetch_one(&env.pool)
    .await
    .expect("free rows");
    assert_eq!(free, 5000 - (a.len() + b.len()) as i64, "a claim locked rows it did not return");
    first.rollback().await.expect("rollback");
    second.rollback().await.expect("rollback");
}

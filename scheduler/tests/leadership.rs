mod common;

use settle_scheduler::LeaderLock;
use std::time::Duration;
use testkit::{process, TestEnv};

/// A schedule that never fires during a test: these tests are about the lock alone.
const YEARLY: &str = "[[entry]]\nname = \"yearly\"\ncron = \"0 0 0 1 Jan *\"\nprogram = \"/bin/true\"\nmissed = \"skip\"\ntimeout = \"1m\"\n";

#[tokio::test]
async fn only_one_replica_holds_the_leader_lock_until_it_lets_go() {
    let env = TestEnv::new().await;
    let mut first = LeaderLock::new(env.pool.clone(), "first".into());
    let mut second = LeaderLock::new(env.pool.clone(), "second".into());
    assert!(first.try_acquire().await.expect("first attempt"));
    assert!(!second.try_acquire().await.expect("second attempt"), "two leaders at once");
    first.release().await;
    assert!(second.try_acquire().await.expect("after release"), "the lock passes on");
    second.release().await;
}

#[tokio::test]
async fn a_dead_leaders_lock_passes_to_another_replica() {
    let env = TestEnv::new().await;
    let dir = common::Workdir::new();
    dir.schedule(YEARLY);
    let mut child = common::start(&env, &dir, "leader").await;

    let mut standby = LeaderLock::new(env.pool.clone(), "standby".into());
    let advisory_locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
    let led_by_child = process::eventually(Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, i64>(advisory_locks).fetch_one(&env.pool).await.expect("pg_locks") == 1
    })
    .await;
    assert!(led_by_child, "the scheduler never took the leader lock");
    assert!(!standby.try_acquire().await.expect("attempt"), "the standby must not lead while the scheduler lives");

    child.kill();
    let mut took_over = false;
    for _ in 0..100 {
        if standby.try_acquire().await.expect("attempt") {
            took_over = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(took_over, "the standby did not take over within 10 s of the leader's death");
    standby.release().await;
}

#[tokio::test]
async fn settle_scheduler_stops_cleanly_on_sigterm() {
    let env = TestEnv::new().await;
    let dir = common::Workdir::new();
    dir.schedule(YEARLY);
    let mut child = common::start(&env, &dir, "leader").await;
    let status = child.terminate(Duration::from_secs(20)).await.expect("stopping");
    assert!(status.success(), "exit status {status:?}");
}

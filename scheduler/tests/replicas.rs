//! Several replicas, one leader: each slot fires exactly once, and a dead leader's successor carries on.

mod common;

use common::{await_firings, rfc3339, start, Workdir};
use std::{collections::HashSet, time::Duration};
use testkit::TestEnv;

/// Every second; the job appends its slot to a file, so runs are counted outside the firing records.
const EVERY_SECOND: &str = r#"
[[entry]]
name = "tick"
cron = "* * * * * *"
timezone = "UTC"
program = "/bin/sh"
args = ["-c", "echo {slot} >> {dir}/ticks"]
missed = "skip"
timeout = "30s"
"#;

#[tokio::test]
async fn two_replicas_fire_each_slot_once_and_the_survivor_fires_the_next_slots_after_the_leader_dies() {
    let env = TestEnv::new().await;
    let dir = Workdir::new();
    dir.schedule(EVERY_SECOND);
    let mut a = start(&env, &dir, "replica-a").await;
    let mut b = start(&env, &dir, "replica-b").await;

    await_firings(&env, Duration::from_secs(20), "four successful firings", |f| {
        f.iter().filter(|f| f.status.as_str() == "SUCCEEDED").count() >= 4
    })
    .await;
    let before = common::firings(&env).await;
    let leaders: HashSet<&str> = before.iter().map(|f| f.leader.as_str()).collect();
    assert_eq!(leaders.len(), 1, "both replicas fired while both were alive: {before:#?}");
    let leader = before.last().expect("firings").leader.clone();
    let killed_at = chrono::Utc::now();
    let survivor = if leader == "replica-a" {
        a.kill();
        "replica-b"
    } else {
        b.kill();
        "replica-a"
    };

    await_firings(&env, Duration::from_secs(15), "the survivor firing two later slots", |f| {
        f.iter().filter(|f| f.leader == survivor && f.slot_time > killed_at && f.status.as_str() == "SUCCEEDED").count()
            >= 2
    })
    .await;
    let takeover = common::firings(&env)
        .await
        .into_iter()
        .find(|f| f.leader == survivor)
        .expect("a firing by the survivor")
        .started_at;
    assert!(takeover - killed_at < chrono::Duration::seconds(5), "took over {:?} after the kill", takeover - killed_at);
    for replica in [&mut a, &mut b] {
        replica.terminate(Duration::from_secs(20)).await.ok();
    }

    let firings = common::firings(&env).await;
    let runs = dir.lines("ticks");
    let distinct: HashSet<&String> = runs.iter().collect();
    assert_eq!(distinct.len(), runs.len(), "a slot ran twice: {runs:?}");
    let recorded: HashSet<String> = firings.iter().map(|f| rfc3339(f.slot_time)).collect();
    for run in &runs {
        assert!(recorded.contains(run), "slot {run} ran without a firing record");
    }
    for firing in firings.iter().filter(|f| f.status.as_str() == "SUCCEEDED") {
        assert!(distinct.contains(&rfc3339(firing.slot_time)), "firing {} succeeded but never ran", firing.id);
    }
    // While one leader led, no slot was left out: the slots it fired are consecutive seconds.
    let led: Vec<_> = firings.iter().filter(|f| f.leader == leader).map(|f| f.slot_time).collect();
    for pair in led.windows(2) {
        assert_eq!(pair[1] - pair[0], chrono::Duration::seconds(1), "a slot was left out: {led:?}");
    }
}

//! The scheduler's life: follow until this replica wins the leader lock, then fire entries on time
//! until shutdown or until it loses the lock (and then follow again).
//!
//! Firing times are computed from the schedule, never from "now + interval", so a leader that takes over
//! fires the same slots its predecessor would have, and the unique (entry, slot) record keeps a slot
//! both might claim (around a failover) from running twice.

use crate::{
    firer::{Fired, Firer},
    leader_lock::LeaderLock,
    requests::{self, Request},
    schedule::{Missed, Schedule},
};
use chrono::{DateTime, Utc};
use std::{sync::Arc, time::Duration};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// At most this many passed slots of one entry are recorded as skipped after a stall (the most recent);
/// a per-second entry on a host suspended for hours would otherwise write a row per second of it.
const MAX_STALLED_RECORDS: usize = 1_000;

pub async fn run(
    firer: Arc<Firer>,
    schedule: Arc<Schedule>,
    mut lock: LeaderLock,
    poll: Duration,
    shutdown: CancellationToken,
) {
    let mut firings = JoinSet::new();
    while !shutdown.is_cancelled() {
        match lock.try_acquire().await {
            Ok(true) => {
                metrics::gauge!("scheduler_leader").set(1.0);
                lead(&firer, &schedule, &mut lock, poll, &shutdown, &mut firings).await;
                metrics::gauge!("scheduler_leader").set(0.0);
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(error = ?error, "leader lock attempt failed; retrying"),
        }
        reap(&mut firings);
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
    // Shutdown: `firer.stop` is the same token, so running jobs are being stopped; wait for their records.
    while firings.join_next().await.is_some() {}
    lock.release().await;
}

async fn lead(
    firer: &Arc<Firer>,
    schedule: &Arc<Schedule>,
    lock: &mut LeaderLock,
    poll: Duration,
    shutdown: &CancellationToken,
    firings: &mut JoinSet<()>,
) {
    let took_over = Utc::now();
    if let Err(error) = requests::close_abandoned(&firer.pool, &firer.identity).await {
        tracing::warn!(error = ?error, "could not close abandoned console requests");
    }
    for (index, entry) in schedule.entries.iter().enumerate() {
        if let Err(error) = firer.close_abandoned(entry).await {
            tracing::warn!(entry = %entry.name, error = ?error, "could not check for abandoned firings");
        }
        if let Some(missed) = entry.when.latest_at_or_before(took_over) {
            let action = match entry.missed {
                Missed::RunOnce => SlotAction::Fire,
                Missed::Skip => SlotAction::Skip("missed: no scheduler was leading at the slot"),
            };
            spawn_slot(firer, schedule, index, missed, action, firings);
        }
    }
    let mut next: Vec<Option<DateTime<Utc>>> =
        schedule.entries.iter().map(|entry| entry.when.after(took_over).next()).collect();
    let mut published = false;
    loop {
        if !published {
            published = requests::publish(&firer.pool, schedule, &firer.identity, Utc::now())
                .await
                .inspect_err(|error| tracing::warn!(error = ?error, "could not publish the schedule"))
                .is_ok();
        }
        match requests::take(&firer.pool, &firer.identity).await {
            Ok(taken) => taken.into_iter().for_each(|request| spawn_request(firer, schedule, request, firings)),
            Err(error) => tracing::warn!(error = ?error, "could not take run-now requests"),
        }
        let soonest = next.iter().flatten().min().copied();
        let until_soonest = soonest.map_or(poll, |at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(until_soonest.min(poll)) => {}
        }
        if !lock.still_leads().await {
            return;
        }
        let now = Utc::now();
        for (index, entry) in schedule.entries.iter().enumerate() {
            let Some(due) = next[index].filter(|due| *due <= now) else { continue };
            // Normally just `due`. After a stall (an overloaded or suspended host, a clock jump) several
            // slots have passed: the latest fires and the others are recorded as skipped, so every slot
            // still has exactly one record.
            let mut passed: Vec<DateTime<Utc>> =
                std::iter::successors(Some(due), |slot| entry.when.after(*slot).next())
                    .take_while(|slot| *slot <= now)
                    .collect();
            let slot = passed.pop().unwrap_or(due);
            if !passed.is_empty() {
                tracing::warn!(entry = %entry.name, passed = passed.len(), latest = %slot, "slots passed while stalled");
            }
            for missed in passed.into_iter().rev().take(MAX_STALLED_RECORDS) {
                let action = SlotAction::Skip("missed: the scheduler was stalled past the slot");
                spawn_slot(firer, schedule, index, missed, action, firings);
            }
            spawn_slot(firer, schedule, index, slot, SlotAction::Fire, firings);
            next[index] = entry.when.after(now).next();
            // The entry's next firing moved on: the console shows the new one.
            published = false;
        }
        reap(firings);
    }
}

/// What becomes of a slot. A slot that passed before this leadership began is fired once (`run-once`)
/// or recorded as skipped; if the previous leader recorded it, either is a no-op.
#[derive(Debug, Clone, Copy)]
enum SlotAction {
    Fire,
    /// Recorded as skipped, for this reason, without running.
    Skip(&'static str),
}

fn spawn_slot(
    firer: &Arc<Firer>,
    schedule: &Arc<Schedule>,
    index: usize,
    slot: DateTime<Utc>,
    action: SlotAction,
    firings: &mut JoinSet<()>,
) {
    let (firer, schedule) = (Arc::clone(firer), Arc::clone(schedule));
    firings.spawn(async move {
        let entry = &schedule.entries[index];
        let handled = match action {
            SlotAction::Fire => firer.fire(entry, slot).await,
            SlotAction::Skip(reason) => firer.skip(entry, slot, reason).await,
        };
        if let Err(error) = handled {
            tracing::error!(entry = %entry.name, slot = %slot, ?action, error = ?error, "handling a slot failed");
        }
    });
}

/// Fires a request's entry at this instant, or restarts its execution, and records what it came to.
fn spawn_request(firer: &Arc<Firer>, schedule: &Arc<Schedule>, request: Request, firings: &mut JoinSet<()>) {
    let (firer, schedule) = (Arc::clone(firer), Arc::clone(schedule));
    firings.spawn(async move {
        let entry = request.entry_name.as_deref().map(|name| schedule.entry(name));
        let (firing, detail) = match (entry, request.execution_id) {
            (Some(Some(entry)), _) => match firer.fire(entry, Utc::now()).await {
                Ok(Fired::Recorded { firing, .. }) => (Some(firing), None),
                Ok(Fired::AlreadyFired) => (None, Some("this instant was fired already; ask again".to_owned())),
                Err(error) => (None, Some(format!("firing failed: {error:#}"))),
            },
            (Some(None), _) => (None, Some("no such entry in the schedule".to_owned())),
            (None, Some(execution)) => (None, Some(firer.restart(execution).await)),
            (None, None) => (None, Some("the request names nothing to run".to_owned())),
        };
        tracing::info!(request = request.id, ?firing, ?detail, "console request handled");
        if let Err(error) = requests::settle(&firer.pool, request.id, firing, detail.as_deref()).await {
            tracing::error!(request = request.id, error = ?error, "could not record a run-now request's outcome");
        }
    });
}

/// Collects finished firing tasks so the set does not grow with every slot.
fn reap(firings: &mut JoinSet<()>) {
    while firings.try_join_next().is_some() {}
}

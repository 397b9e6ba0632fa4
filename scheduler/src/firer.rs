//! One firing of one entry for one slot: the overlap check, the record, the child run and its outcome.

use crate::{
    child::{self, Ending, Launch},
    entry_lock::EntryLock,
    firing_records::{self, Outcome, Slot, Status},
    schedule::{Entry, Job, Overlap},
};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::{path::PathBuf, process::ExitStatus, time::Duration};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The longest a restart asked from the console may run.
const RESTART_TIMEOUT: Duration = Duration::from_secs(6 * 3_600);

/// settle-batch's exit code for "this date has already completed": the job's goal holds.
const BATCH_ALREADY_COMPLETED: i32 = 3;

/// What every firing of this process shares.
pub struct Firer {
    pub pool: PgPool,
    /// Recorded as the firing's leader.
    pub identity: String,
    pub batch_bin: PathBuf,
    /// Handed to batch runs, so they use the scheduler's database.
    pub database_url: String,
    pub stop_grace: Duration,
    /// Cancelled on shutdown: running jobs are stopped (SIGTERM, then SIGKILL after the grace).
    pub stop: CancellationToken,
}

/// What became of a firing, for callers that report it (`run-now`, tests).
#[derive(Debug)]
pub enum Fired {
    /// The slot already had a record: another replica (or an earlier leadership) fired it.
    AlreadyFired,
    Recorded {
        firing: i64,
        status: Status,
        exit_status: Option<i32>,
        detail: Option<String>,
    },
}

impl Firer {
    pub async fn fire(&self, entry: &Entry, slot: DateTime<Utc>) -> anyhow::Result<Fired> {
        let trace_id = infra::telemetry::new_trace_id();
        let span = tracing::info_span!("firing", entry = %entry.name, slot = %slot, trace_id = %trace_id);
        self.fire_traced(entry, Slot { entry: &entry.name, time: slot, leader: &self.identity, trace_id: &trace_id })
            .instrument(span)
            .await
    }

    /// Closes firings of `entry` left RUNNING by a process that died (a previous leader), if none of its
    /// runs is alive anywhere; called when leadership starts, so history is right within seconds.
    pub async fn close_abandoned(&self, entry: &Entry) -> anyhow::Result<()> {
        // Only the runs of `skip` entries hold the entry lock; an `allow` entry's are closed by age instead.
        if entry.overlap != Overlap::Skip {
            return Ok(());
        }
        if let Some(lock) = EntryLock::try_acquire(&self.pool, &entry.name).await? {
            let closed = firing_records::close_abandoned(&self.pool, &entry.name, None).await;
            lock.release().await;
            if closed? > 0 {
                tracing::warn!(entry = %entry.name, "closed firings abandoned by a process that stopped");
            }
        }
        Ok(())
    }

    /// Records `slot` as skipped without running it (a missed slot under `missed = "skip"`).
    pub async fn skip(&self, entry: &Entry, slot: DateTime<Utc>, reason: &str) -> anyhow::Result<Fired> {
        let trace_id = infra::telemetry::new_trace_id();
        let record = Slot { entry: &entry.name, time: slot, leader: &self.identity, trace_id: &trace_id };
        Ok(self.record_skip(&record, reason).await?)
    }

    async fn fire_traced(&self, entry: &Entry, slot: Slot<'_>) -> anyhow::Result<Fired> {
        let lock = match entry.overlap {
            Overlap::Skip => match EntryLock::try_acquire(&self.pool, &entry.name).await? {
                Some(lock) => {
                    firing_records::close_abandoned(&self.pool, &entry.name, None).await?;
                    Some(lock)
                }
                None => return Ok(self.record_skip(&slot, "skipped: the previous run is still going").await?),
            },
            Overlap::Allow => {
                let longest_live_run = entry.timeout + self.stop_grace + Duration::from_secs(60);
                firing_records::close_abandoned(&self.pool, &entry.name, Some(longest_live_run)).await?;
                None
            }
        };
        let fired = self.claim_and_run(entry, &slot).await;
        if let Some(lock) = lock {
            lock.release().await;
        }
        fired
    }

    async fn claim_and_run(&self, entry: &Entry, slot: &Slot<'_>) -> anyhow::Result<Fired> {
        let Some(firing) = firing_records::claim(&self.pool, slot).await? else {
            tracing::debug!("the slot already has a record; not firing it again");
            return Ok(Fired::AlreadyFired);
        };
        tracing::info!(firing, command = %entry.describe(), "firing");
        let outcome = self.run(entry, slot, firing).await;
        // The record is written even when shutting down: the pool is still open until `run` returns.
        firing_records::finish(&self.pool, firing, &outcome).await?;
        metrics::counter!("scheduler_firings_total", "entry" => entry.name.clone(), "status" => outcome.status.as_str())
            .increment(1);
        tracing::info!(firing, status = outcome.status.as_str(), exit_status = ?outcome.exit_status,
                       batch_execution = ?outcome.batch_execution, detail = ?outcome.detail, "firing ended");
        Ok(Fired::Recorded { firing, status: outcome.status, exit_status: outcome.exit_status, detail: outcome.detail })
    }

    async fn run(&self, entry: &Entry, slot: &Slot<'_>, firing: i64) -> Outcome {
        let started = child::spawn(self.launch(entry, slot));
        let finished = match started {
            Ok(running) => {
                if let Some(pid) = running.pid() {
                    let running_as = format!("running as pid {pid} on {}", self.identity);
                    if let Err(error) = firing_records::note(&self.pool, firing, &running_as).await {
                        tracing::warn!(error = ?error, "could not record the job's process id");
                    }
                }
                running.finish(entry.timeout, self.stop_grace, &self.stop).await
            }
            Err(error) => Err(error),
        };
        let finished = match finished {
            Ok(finished) => finished,
            Err(error) => {
                let detail = format!("could not run {}: {error}", entry.describe());
                tracing::error!(%detail, "firing failed");
                return Outcome {
                    status: Status::Failed,
                    exit_status: None,
                    batch_execution: None,
                    detail: Some(detail),
                };
            }
        };
        let batch_execution = match entry.job {
            Job::Batch(_) => {
                firing_records::execution_for_trace(&self.pool, slot.trace_id).await.unwrap_or_else(|error| {
                    tracing::warn!(error = ?error, "could not look up the batch execution of this firing");
                    None
                })
            }
            Job::Program(_) => None,
        };
        let (status, exit, detail) = match finished.ending {
            Ending::Exited(exit) if exit.success() => (Status::Succeeded, exit, None),
            Ending::Exited(exit)
                if matches!(entry.job, Job::Batch(_)) && exit.code() == Some(BATCH_ALREADY_COMPLETED) =>
            {
                (Status::Succeeded, exit, Some("already completed earlier; nothing to do".to_owned()))
            }
            Ending::Exited(exit) => (Status::Failed, exit, finished.last_error_line),
            Ending::TimedOut(exit) => {
                (Status::TimedOut, exit, Some(format!("stopped after its timeout of {:?}", entry.timeout)))
            }
            Ending::Stopped(exit) => (Status::Failed, exit, Some("stopped: the scheduler shut down".to_owned())),
        };
        Outcome { status, exit_status: exit_code(exit), batch_execution, detail }
    }

    fn launch(&self, entry: &Entry, slot: &Slot<'_>) -> Launch {
        let mut args = entry.args_for(slot.time);
        let program = match &entry.job {
            Job::Batch(command) => {
                args.insert(0, command.clone());
                self.batch_bin.clone()
            }
            Job::Program(path) => PathBuf::from(path),
        };
        let mut env = self.env(slot.trace_id);
        if matches!(entry.job, Job::Batch(_)) {
            env.push(Self::stop_with_me());
        }
        Launch { program, args, env }
    }

    fn env(&self, trace_id: &str) -> Vec<(&'static str, String)> {
        vec![
            (infra::telemetry::TRACE_ID_VAR, trace_id.to_owned()),
            ("DATABASE_URL", self.database_url.clone()),
            // JSON lines are forwarded at their own level; anything else as plain output.
            ("LOG_JSON", "true".to_owned()),
        ]
    }

    /// A settle binary stops when this scheduler dies, even by SIGKILL (see infra::binary).
    fn stop_with_me() -> (&'static str, String) {
        (infra::binary::STOP_WITH_PARENT_VAR, std::process::id().to_string())
    }

    /// Runs `settle-batch restart EXECUTION` (asked from the console) to its end: how it ended, to record.
    pub async fn restart(&self, execution: i64) -> String {
        let trace_id = infra::telemetry::new_trace_id();
        let mut env = self.env(&trace_id);
        env.push(Self::stop_with_me());
        let args = vec!["restart".to_owned(), execution.to_string()];
        let launch = Launch { program: self.batch_bin.clone(), args, env };
        let span = tracing::info_span!("restart", execution, trace_id = %trace_id);
        let finished = match child::spawn(launch) {
            Ok(running) => running.finish(RESTART_TIMEOUT, self.stop_grace, &self.stop).instrument(span).await,
            Err(error) => Err(error),
        };
        let ending = match finished {
            Ok(finished) => finished,
            Err(error) => return format!("could not run settle-batch restart: {error}"),
        };
        let exit = |exit: ExitStatus| exit_code(exit).map_or("?".to_owned(), |code| code.to_string());
        let error = ending.last_error_line.map(|line| format!(": {line}")).unwrap_or_default();
        match ending.ending {
            Ending::Exited(status) => {
                format!("settle-batch restart {execution} exited {}{error} (trace {trace_id})", exit(status))
            }
            Ending::TimedOut(_) => format!("settle-batch restart {execution} stopped after {RESTART_TIMEOUT:?}"),
            Ending::Stopped(_) => format!("settle-batch restart {execution} stopped: the scheduler shut down"),
        }
    }

    async fn record_skip(&self, slot: &Slot<'_>, reason: &str) -> sqlx::Result<Fired> {
        let Some(firing) = firing_records::skip(&self.pool, slot, reason).await? else {
            return Ok(Fired::AlreadyFired);
        };
        tracing::info!(firing, entry = slot.entry, slot = %slot.time, reason, "slot skipped");
        metrics::counter!("scheduler_firings_total", "entry" => slot.entry.to_owned(), "status" => "SKIPPED")
            .increment(1);
        Ok(Fired::Recorded { firing, status: Status::Skipped, exit_status: None, detail: Some(reason.to_owned()) })
    }
}

/// The exit code, or 128 + the signal for a job killed by one (the shell's convention).
fn exit_code(status: ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|signal| 128 + signal))
}

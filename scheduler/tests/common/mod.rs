//! Starting settle-scheduler processes against a test's database with a schedule written for the test.
#![allow(dead_code)] // each test binary uses its own subset

use chrono::{DateTime, Utc};
use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};
use testkit::{process, TestEnv};

pub const SCHEDULER: &str = env!("CARGO_BIN_EXE_settle-scheduler");

/// A private directory for a test's schedule file and the marks its jobs leave; removed on drop.
pub struct Workdir(pub PathBuf);

impl Workdir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("settle-scheduler-test-{}", testkit::unique_suffix()));
        std::fs::create_dir_all(&dir).expect("creating the test's directory");
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `schedule.toml`; `{dir}` in it stands for this directory.
    pub fn schedule(&self, text: &str) -> PathBuf {
        let path = self.path("schedule.toml");
        std::fs::write(&path, text.replace("{dir}", &self.0.display().to_string())).expect("writing the schedule");
        path
    }

    /// The lines a job appended to `name` (none if it never wrote).
    pub fn lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(name)).unwrap_or_default().lines().map(str::to_owned).collect()
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// settle-scheduler preloaded for `env`, `schedule` and a fast leader poll.
pub fn command(env: &TestEnv, schedule: &Path, identity: &str) -> Command {
    let mut command = process::command_for(SCHEDULER.as_ref(), env);
    command
        .env("SCHEDULE_FILE", schedule)
        .env("SCHEDULER_IDENTITY", identity)
        .env("SCHEDULER_LEADER_POLL_MS", "200")
        .env("SCHEDULER_STOP_GRACE_SECS", "3")
        .env("LOG_JSON", "true");
    command
}

/// A scheduler replica, ready (its ops endpoint answers), logging to `log` in the workdir.
pub async fn start(env: &TestEnv, dir: &Workdir, identity: &str) -> process::Running {
    start_with_port(env, dir, identity).await.0
}

/// [`start`], and the port of its ops endpoints.
pub async fn start_with_port(env: &TestEnv, dir: &Workdir, identity: &str) -> (process::Running, u16) {
    let port = testkit::broker::free_port();
    let log = std::fs::File::create(dir.path(&format!("{identity}.log"))).expect("log file");
    let mut command = command(env, &dir.path("schedule.toml"), identity);
    command.env("SCHEDULER_OPS_ADDR", format!("127.0.0.1:{port}")).stdout(log).stderr(Stdio::inherit());
    let mut child = process::Running::spawn(&mut command).expect("starting settle-scheduler");
    let ready =
        process::wait_until(Duration::from_secs(30), || process::http_status(port, "/health/ready") == Some(200)).await;
    if !ready {
        child.kill();
        panic!("settle-scheduler {identity} did not become ready");
    }
    (child, port)
}

/// Runs a settle-scheduler subcommand to completion.
pub fn run(env: &TestEnv, schedule: &Path, args: &[&str]) -> Output {
    command(env, schedule, "operator").args(args).output().expect("running settle-scheduler")
}

pub use settle_scheduler::FiringRow as Firing;

pub async fn firings(env: &TestEnv) -> Vec<Firing> {
    sqlx::query_as(
        "SELECT id, entry_name, slot_time, leader, status, started_at, ended_at, exit_status, batch_execution_id, \
                detail, trace_id FROM scheduler_firings ORDER BY slot_time, id",
    )
    .fetch_all(&env.pool)
    .await
    .expect("reading firings")
}

/// Waits until `condition` holds for the recorded firings; panics with them if it never does.
pub async fn await_firings(env: &TestEnv, within: Duration, what: &str, condition: impl Fn(&[Firing]) -> bool) {
    let held = process::eventually(within, || async { condition(&firings(env).await) }).await;
    assert!(held, "{what} did not happen within {within:?}; firings: {:#?}", firings(env).await);
}

/// True once no process with `pid` exists (a zombie counts as gone: it no longer runs).
pub fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

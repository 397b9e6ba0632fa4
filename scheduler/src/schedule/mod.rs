//! The schedule file (TOML): one `[[entry]]` per job. Everything is checked when the file is read, and
//! the first problem is reported with its line, so a typo stops the scheduler at start-up rather than
//! at 00:30 on the night the job should have run. `scheduler/schedule.toml` is the annotated example.

mod file;
mod placeholders;
mod timeout;
mod when;

pub use file::{load, parse};
pub use when::When;

use chrono::{DateTime, Utc};
use std::{fmt, time::Duration};

#[derive(Debug, Clone)]
pub struct Schedule {
    pub entries: Vec<Entry>,
}

impl Schedule {
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    /// The expression as written, for listings.
    pub cron: String,
    pub when: When,
    pub job: Job,
    /// Arguments, with `{date}`, `{yesterday}` and `{slot}` filled in per firing.
    pub args: Vec<String>,
    pub overlap: Overlap,
    pub missed: Missed,
    pub timeout: Duration,
}

/// What a firing starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// A `settle-batch` subcommand (the usual case).
    Batch(String),
    /// Any other program, by absolute path.
    Program(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overlap {
    /// A slot that comes while the entry's previous run is still going is recorded as skipped.
    #[default]
    Skip,
    /// Runs may overlap (for jobs that guard themselves).
    Allow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    /// If the latest slot passed while no scheduler led (down, deploying, failing over), fire it once
    /// when leadership starts, however many slots were missed.
    #[default]
    RunOnce,
    /// Missed slots are recorded as skipped and not run.
    Skip,
}

impl Entry {
    /// The arguments for the firing of `slot`.
    pub fn args_for(&self, slot: DateTime<Utc>) -> Vec<String> {
        self.args.iter().map(|arg| placeholders::expand(arg, slot, self.when.zone)).collect()
    }

    /// The command line a firing runs, for listings and logs.
    pub fn describe(&self) -> String {
        let program = match &self.job {
            Job::Batch(command) => format!("settle-batch {command}"),
            Job::Program(path) => path.clone(),
        };
        std::iter::once(program).chain(self.args.iter().cloned()).collect::<Vec<_>>().join(" ")
    }
}

/// A problem in the schedule file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    pub path: String,
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.reason)
    }
}

impl std::error::Error for ScheduleError {}

//! The life of every settle binary's `main`: logging first, a root span whose trace id marks every line
//! of the run, the real work, and one place that turns an error into a logged cause and an exit code.

use crate::config::TelemetryArgs;
use std::{
    future::Future,
    process::{ExitCode, Termination},
};

/// How every settle binary exits: the codes are part of the interface (Jenkins and the scheduler read
/// them). Bad arguments exit 2, as clap's own argument errors do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    Failure,
    /// Arguments or a file that parse but cannot be used (a time zone PostgreSQL does not know, a schedule
    /// entry that does not exist, an outbox row that is not parked).
    BadArguments,
    /// Nothing was done because it already was: this job and date completed before (rerun with `--force`).
    AlreadyCompleted,
    /// Nothing was done because it is being done: the entry's previous run still runs.
    StillRunning,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::BadArguments => 2,
            Exit::AlreadyCompleted | Exit::StillRunning => 3,
        }
    }
}

impl Termination for Exit {
    fn report(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}
use tracing::Instrument;

pub async fn run<F, T>(name: &'static str, telemetry: &TelemetryArgs, work: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<T>>,
    T: Termination,
{
    if !stop_with_parent() {
        eprintln!("{name}: the process that started this run has already exited; not starting");
        return ExitCode::FAILURE;
    }
    if let Err(error) = crate::telemetry::init(name, telemetry) {
        eprintln!("{name}: {error:#}");
        return ExitCode::FAILURE;
    }
    let root = tracing::info_span!("run", binary = name, trace_id = %crate::telemetry::run_trace_id());
    match work.instrument(root).await {
        Ok(status) => status.report(),
        Err(error) => {
            tracing::error!(error = ?error, "{name} stopped with an error");
            eprintln!("{name}: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Set by a supervising parent (the scheduler) to its process id: the run then gets SIGTERM when that
/// parent dies, even by SIGKILL, instead of running on unsupervised with nobody to record its end.
pub const STOP_WITH_PARENT_VAR: &str = "SETTLE_STOP_WITH_PARENT";

/// Asks Linux for SIGTERM on the parent's death if [`STOP_WITH_PARENT_VAR`] is set; false if the parent
/// is already gone (it died between starting this process and this call, so the signal would never come).
/// The signal follows the parent *thread* that started the process: the scheduler starts jobs from its
/// runtime's worker threads, which live as long as it does.
fn stop_with_parent() -> bool {
    let Some(parent) = std::env::var(STOP_WITH_PARENT_VAR).ok().and_then(|pid| pid.parse::<i32>().ok()) else {
        return true;
    };
    if let Err(error) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM) {
        eprintln!("cannot ask to be stopped with the parent ({error}); running without that guard");
        return true;
    }
    nix::unistd::getppid().as_raw() == parent
}

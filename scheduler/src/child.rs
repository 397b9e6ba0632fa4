//! A job runs as a child process, so a crashing job cannot take the scheduler down. It gets its own
//! process group, so a timeout or shutdown stops everything it started (a shell's children too): SIGTERM
//! first, SIGKILL after the grace period. Its output is forwarded line by line into the scheduler's log,
//! inside the firing's span, so every forwarded line carries the firing's trace id.

use nix::{sys::signal::Signal, unistd::Pid};
use std::{path::PathBuf, process::ExitStatus, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::Command,
    sync::watch,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(&'static str, String)>,
}

/// How a run ended.
#[derive(Debug)]
pub enum Ending {
    Exited(ExitStatus),
    /// Ran past its timeout and was stopped.
    TimedOut(ExitStatus),
    /// Stopped because the scheduler is shutting down.
    Stopped(ExitStatus),
}

pub struct Finished {
    pub ending: Ending,
    /// The last line the job wrote to stderr that is not a JSON log line (its error message, usually).
    pub last_error_line: Option<String>,
}

/// A started job: its process, its group and the tasks forwarding its output.
pub struct Running {
    child: tokio::process::Child,
    group: Option<Pid>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    last_error: watch::Receiver<Option<String>>,
}

pub fn spawn(launch: Launch) -> std::io::Result<Running> {
    let mut command = Command::new(&launch.program);
    command
        .args(&launch.args)
        .envs(launch.env.iter().map(|(key, value)| (*key, value.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let group = child.id().map(|id| Pid::from_raw(id as i32));
    let (last_error_tx, last_error) = watch::channel(None);
    let readers = [
        child.stdout.take().map(|out| tokio::spawn(forward(out, "stdout", None).in_current_span())),
        child.stderr.take().map(|err| tokio::spawn(forward(err, "stderr", Some(last_error_tx)).in_current_span())),
    ];
    Ok(Running { child, group, readers: readers.into_iter().flatten().collect(), last_error })
}

impl Running {
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the job to end, stopping it on timeout or when `stop` is cancelled.
    pub async fn finish(
        mut self,
        timeout: Duration,
        grace: Duration,
        stop: &CancellationToken,
    ) -> std::io::Result<Finished> {
        let ending = tokio::select! {
            status = self.child.wait() => Ending::Exited(status?),
            _ = tokio::time::sleep(timeout) => {
                tracing::warn!(timeout = ?timeout, "the job ran past its timeout; stopping it");
                Ending::TimedOut(stop_group(&mut self.child, self.group, grace).await?)
            }
            _ = stop.cancelled() => {
                tracing::warn!("the scheduler is shutting down; stopping the job");
                Ending::Stopped(stop_group(&mut self.child, self.group, grace).await?)
            }
        };
        // Output still in the pipes is forwarded; a grandchild that kept them open is not waited for.
        for reader in self.readers {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        let last_error_line = self.last_error.borrow().clone();
        Ok(Finished { ending, last_error_line })
    }
}

/// SIGTERM to the whole group, SIGKILL if it is still there after `grace`.
async fn stop_group(
    child: &mut tokio::process::Child,
    group: Option<Pid>,
    grace: Duration,
) -> std::io::Result<ExitStatus> {
    if let Some(group) = group {
        let _ = nix::sys::signal::killpg(group, Signal::SIGTERM);
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => {
            // The leader may have exited on SIGTERM while something it started ignored it.
            if let Some(group) = group {
                let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
            }
            status
        }
        Err(_) => {
            tracing::warn!(grace = ?grace, "the job ignored SIGTERM; killing it");
            if let Some(group) = group {
                let _ = nix::sys::signal::killpg(group, Signal::SIGKILL);
            }
            child.wait().await
        }
    }
}

async fn forward(
    pipe: impl AsyncRead + Unpin,
    stream: &'static str,
    last_error: Option<watch::Sender<Option<String>>>,
) {
    let mut lines = BufReader::new(pipe).lines();
    // The detail of a failed run is its last plain stderr line, except that an `error: ...` line (clap's
    // and most tools' form) is not replaced by the hints that follow it ("For more information, ...").
    let mut holds_error_line = false;
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        if !log_line(&line) {
            tracing::info!(stream, output = %line, "job output");
            let is_error_line = line.trim_start().to_ascii_lowercase().starts_with("error");
            if let Some(last_error) = last_error.as_ref().filter(|_| is_error_line || !holds_error_line) {
                last_error.send_replace(Some(line));
                holds_error_line |= is_error_line;
            }
        }
    }
}

/// Re-emits a JSON (ECS) log line of the job at its level; false if the line is not one. The job's own
/// fields go along; what the scheduler's line says anew (time, level, service) does not.
fn log_line(line: &str) -> bool {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str::<serde_json::Value>(line) else {
        return false;
    };
    let Some(level) = fields.remove("log.level").and_then(|level| level.as_str().map(str::to_owned)) else {
        return false;
    };
    let message = fields.remove("message").and_then(|m| m.as_str().map(str::to_owned)).unwrap_or_default();
    for restated in ["@timestamp", "ecs.version", "log.logger"] {
        fields.remove(restated);
    }
    let job_fields = serde_json::Value::Object(fields);
    match level.as_str() {
        "error" => tracing::error!(job_fields = %job_fields, "job: {message}"),
        "warn" => tracing::warn!(job_fields = %job_fields, "job: {message}"),
        "debug" => tracing::debug!(job_fields = %job_fields, "job: {message}"),
        "trace" => tracing::trace!(job_fields = %job_fields, "job: {message}"),
        _ => tracing::info!(job_fields = %job_fields, "job: {message}"),
    }
    true
}

//! Runs a settle binary as a child process against a test's services, as an operator would.

use crate::TestEnv;
use anyhow::{bail, Context};
use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

/// A command preloaded with the environment variables that point a binary at `env`'s services.
pub fn command_for(binary: &Path, env: &TestEnv) -> Command {
    let mut command = Command::new(binary);
    command
        .env("DATABASE_URL", &env.postgres.url)
        .env("REDIS_URL", &env.redis.url)
        .env("REDIS_KEY_PREFIX", &env.redis.key_prefix)
        .env("KAFKA_BROKERS", &env.kafka.brokers)
        .env("KAFKA_TOPIC_PREFIX", &env.kafka.topic_prefix)
        .env("KAFKA_PARTITIONS", env.kafka.partitions.to_string())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    command
}

/// A child process that is killed when dropped, so a failing test never leaves a binary running.
pub struct Running(pub Child);

impl Running {
    pub fn spawn(command: &mut Command) -> anyhow::Result<Self> {
        Ok(Self(command.spawn().with_context(|| format!("starting {:?}", command.get_program()))?))
    }

    /// Kills the process at once, as a crash (or SIGKILL) would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Sends SIGTERM (what an orchestrator sends) and waits for the process to exit.
    pub async fn terminate(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        terminate(&mut self.0, within).await
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// Starts `binary` against `env` with its ops endpoints on a free port (set through `ops_addr_var`) and
/// waits until `/health/ready` answers 200. Returns the process and the port.
pub async fn start_ready(binary: &str, env: &TestEnv, ops_addr_var: &str) -> anyhow::Result<(Running, u16)> {
    let port = crate::broker::free_port();
    let mut child = Running::spawn(command_for(binary.as_ref(), env).env(ops_addr_var, format!("127.0.0.1:{port}")))?;
    if !wait_until(Duration::from_secs(30), || http_status(port, "/health/ready") == Some(200)).await {
        child.kill();
        bail!("{binary} did not report ready within 30 s");
    }
    Ok((child, port))
}

/// The HTTP status of `GET path` on 127.0.0.1:`port`, or None if nothing answered.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path).map(|(status, _)| status)
}

/// The status and body of `GET path` on 127.0.0.1:`port` (the body as sent: ops endpoints do not chunk).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// Polls the quick, synchronous `condition` every 100 ms until it holds or `within` passes, without
/// blocking the runtime (the app under test may run on it).
pub async fn wait_until(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    eventually(within, || std::future::ready(condition())).await
}

async fn terminate(child: &mut Child, within: Duration) -> anyhow::Result<ExitStatus> {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().context("running kill")?;
    if !status.success() {
        bail!("kill -TERM {} failed", child.id());
    }
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("the process did not exit within {within:?} of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the async `condition` every 100 ms until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the async `count` every 100 ms until it reaches `target`; false only once it has not moved for
/// `stall`. For work whose speed is the machine's (a loaded CI runner is slower, not wrong): the bound is
/// on a lack of progress, not on the total time.
pub async fn progresses_to<F, Fut>(target: i64, stall: Duration, mut count: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let (mut last, mut moved_at) = (i64::MIN, Instant::now());
    loop {
        let now = count().await;
        if now >= target {
            return true;
        }
        if now != last {
            (last, moved_at) = (now, Instant::now());
        } else if moved_at.elapsed() > stall {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

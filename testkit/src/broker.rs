//! A private tansu broker for tests that must stop and restart a broker without touching the shared one.

use anyhow::{bail, Context};
use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The tansu binary `scripts/stack` builds (`TANSU_BIN` overrides).
pub fn tansu_binary() -> PathBuf {
    if let Ok(path) = std::env::var("TANSU_BIN") {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".to_owned());
    let version = std::env::var("TANSU_VERSION").unwrap_or_else(|_| "0.6.0".to_owned());
    PathBuf::from(format!("{home}/.cache/settle/tansu-{version}/bin/tansu"))
}

/// Ports handed out for servers the tests start: below Linux's ephemeral range (32768 and up), where the
/// kernel never picks the local port of an outgoing connection. A port from `bind(0)` comes from that
/// range, so one of the suite's hundreds of client sockets could take it before the server bound it (seen:
/// a settle-workers that could not bind its ops port while another process answered there).
const SERVER_PORTS: std::ops::Range<u32> = 20_000..32_000;

/// A free loopback port, released for the caller to bind.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let draw = (uuid::Uuid::new_v4().as_u128() % u128::from(SERVER_PORTS.len() as u32)) as u32;
        let port = (SERVER_PORTS.start + draw) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding a free loopback port")
}

/// A tansu process with its own port and SQLite file; killed (and its files removed) on drop.
pub struct OwnBroker {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnBroker {
    pub async fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("settle-broker-{}", crate::unique_suffix()));
        std::fs::create_dir_all(&dir)?;
        let mut broker = Self { port: free_port(), dir, child: None };
        broker.restart().await?;
        Ok(broker)
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the process at once, as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts (again) on the same port and storage and waits until it accepts connections.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let binary = tansu_binary();
        if !binary.exists() {
            bail!("no tansu at {} (run scripts/stack up once to build it)", binary.display());
        }
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::File::create(self.dir.join("tansu.log"))?;
        let child = Command::new(&binary)
            .arg("broker")
            .args(["--listener-url", &listener, "--advertised-listener-url", &listener])
            // tansu reads the SQLite path relative to its working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        self.child = Some(child);
        let port = self.port;
        let listening = crate::process::wait_until(Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        if !listening {
            bail!("tansu did not listen on {port} within 30 s");
        }
        Ok(())
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

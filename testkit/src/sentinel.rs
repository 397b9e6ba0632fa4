//! A Redis Sentinel topology of a test's own on free ports: one master, one replica, three sentinels
//! (quorum 2), the master refusing writes unless a replica follows it. The test may SIGKILL the master.

use crate::{broker::free_port, process::Running};
use anyhow::{bail, Context};
use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "settle";

pub struct SentinelTopology {
    master: Running,
    pub master_port: u16,
    _replica: Running,
    pub replica_port: u16,
    _sentinels: Vec<Running>,
    pub sentinel_ports: Vec<u16>,
    dir: PathBuf,
}

impl SentinelTopology {
    /// Starts the five processes and waits until the sentinels could authorise a failover.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("settle-sentinel-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).context("a directory for the sentinels' files")?;
        let (master_port, replica_port) = (free_port(), free_port());
        let master = redis_server(master_port, &["--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"])?;
        let replica_of = master_port.to_string();
        let replica = redis_server(replica_port, &["--replicaof", "127.0.0.1", &replica_of])?;
        let sentinel_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let sentinels =
            sentinel_ports.iter().map(|port| sentinel(&dir, *port, master_port)).collect::<anyhow::Result<Vec<_>>>()?;
        let topology =
            Self { master, master_port, _replica: replica, replica_port, _sentinels: sentinels, sentinel_ports, dir };
        topology.until_failover_is_possible().await?;
        Ok(topology)
    }

    /// `host:port` of each sentinel, as `REDIS_SENTINELS` lists them.
    pub fn sentinel_addresses(&self) -> Vec<String> {
        self.sentinel_ports.iter().map(|port| format!("127.0.0.1:{port}")).collect()
    }

    /// SIGKILL to the master, as a crash would.
    pub fn kill_master(&mut self) {
        self.master.kill();
    }

    /// The master's address as the first sentinel names it.
    pub async fn named_master(&self) -> anyhow::Result<String> {
        let mut sentinel = connect(self.sentinel_ports[0]).await?;
        let (host, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(MASTER_NAME)
            .query_async(&mut sentinel)
            .await
            .context("asking a sentinel")?;
        Ok(format!("{host}:{port}"))
    }

    /// The replica is in sync and every sentinel sees a quorum (they found each other and the replica).
    async fn until_failover_is_possible(&self) -> anyhow::Result<()> {
        let ready = crate::process::eventually(Duration::from_secs(30), || async {
            let mut ok = true;
            for port in &self.sentinel_ports {
                ok &= self.sentinel_ready(*port).await.unwrap_or(false);
            }
            ok
        })
        .await;
        if !ready {
            bail!("the sentinel topology did not become able to fail over within 30 s");
        }
        Ok(())
    }

    async fn sentinel_ready(&self, port: u16) -> anyhow::Result<bool> {
        let mut sentinel = connect(port).await?;
        let quorum: String = redis::cmd("SENTINEL").arg("CKQUORUM").arg(MASTER_NAME).query_async(&mut sentinel).await?;
        let replicas: Vec<redis::Value> =
            redis::cmd("SENTINEL").arg("REPLICAS").arg(MASTER_NAME).query_async(&mut sentinel).await?;
        let peers: Vec<redis::Value> =
            redis::cmd("SENTINEL").arg("SENTINELS").arg(MASTER_NAME).query_async(&mut sentinel).await?;
        Ok(quorum.starts_with("OK") && replicas.len() == 1 && peers.len() == 2)
    }
}

impl Drop for SentinelTopology {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn connect(port: u16) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)));
    Ok(client.get_multiplexed_async_connection_with_config(&config).await?)
}

fn redis_server(port: u16, extra: &[&str]) -> anyhow::Result<Running> {
    Running::spawn(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null()),
    )
}

/// Fails over one second after the master stops answering; the config file is the sentinel's to rewrite.
fn sentinel(dir: &std::path::Path, port: u16, master_port: u16) -> anyhow::Result<Running> {
    let config = dir.join(format!("sentinel-{port}.conf"));
    std::fs::write(
        &config,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 10000\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            dir = dir.display()
        ),
    )
    .context("writing a sentinel's config")?;
    Running::spawn(Command::new("redis-server").arg(&config).arg("--sentinel").stdout(Stdio::null()))
}

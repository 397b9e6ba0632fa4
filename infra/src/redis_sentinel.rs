//! Finding the Redis master through Sentinel, and following it when it moves.
//!
//! redis-rs' `ConnectionManager` reconnects to the address it was given, so after a failover it keeps
//! talking to the old master (redis-rs #1438), which is dead or, once back, a read-only replica. The
//! client therefore asks the sentinels again whenever Redis fails (an outage, `READONLY`, an open
//! breaker), connects to the master they name if it moved, and announces the switch so that state
//! replication may have lost is rebuilt (see `infra::failover`).

use anyhow::{bail, Context};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// How often a failing process may ask the sentinels again: often enough to follow a failover within a
/// few hundred milliseconds of the sentinels deciding it, rarely enough not to flood them.
const ASK_AT_MOST_EVERY: Duration = Duration::from_millis(250);

/// The sentinels of one master, and where this process believes the master is.
pub struct Sentinels {
    addresses: Vec<String>,
    master_name: String,
    timeout: Duration,
    /// `url` with its host and port replaced by the master's; credentials and database kept.
    url: String,
    master: Mutex<String>,
    last_asked: Mutex<Option<Instant>>,
}

impl Sentinels {
    pub fn new(addresses: Vec<String>, master_name: String, url: String, timeout: Duration) -> Self {
        Self { addresses, master_name, timeout, url, master: Mutex::default(), last_asked: Mutex::default() }
    }

    /// The master's address as the first sentinel that answers names it.
    pub async fn master_address(&self) -> anyhow::Result<String> {
        let mut failures = Vec::new();
        for sentinel in &self.addresses {
            match self.ask(sentinel).await {
                Ok(address) => return Ok(address),
                Err(error) => failures.push(format!("{sentinel}: {error:#}")),
            }
        }
        bail!("no sentinel named the master {:?}: {}", self.master_name, failures.join("; "))
    }

    async fn ask(&self, sentinel: &str) -> anyhow::Result<String> {
        let client = redis::Client::open(format!("redis://{sentinel}")).context("a sentinel address")?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let mut connection = client.get_multiplexed_async_connection_with_config(&config).await?;
        let answer: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.master_name)
            .query_async(&mut connection)
            .await?;
        let (host, port) = answer.context("this sentinel does not monitor that master")?;
        Ok(format!("{host}:{port}"))
    }

    /// Connects to the master the sentinels name, after checking it says it is one.
    pub async fn connect(&self, config: &ConnectionManagerConfig) -> anyhow::Result<(String, ConnectionManager)> {
        let address = self.master_address().await?;
        let url = with_address(&self.url, &address);
        let client = redis::Client::open(url.as_str()).context("the master's URL")?;
        let mut connection = ConnectionManager::new_with_config(client, config.clone())
            .await
            .with_context(|| format!("connecting to the Redis master at {address}"))?;
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut connection).await.context("ROLE")?;
        let is_master = matches!(role.first(), Some(redis::Value::BulkString(role)) if role == b"master");
        if !is_master {
            bail!("{address}, named master by the sentinels, is not (yet) a master");
        }
        *self.master.lock().expect("master lock") = address.clone();
        Ok((address, connection))
    }

    /// The address connected to last.
    pub fn current(&self) -> String {
        self.master.lock().expect("master lock").clone()
    }

    /// True at most once per [`ASK_AT_MOST_EVERY`]: whether a failing caller should ask again now.
    pub fn time_to_ask(&self) -> bool {
        let mut last = self.last_asked.lock().expect("last-asked lock");
        if last.is_some_and(|at| at.elapsed() < ASK_AT_MOST_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// `url` (`redis://[user:password@]host:port[/db]`) pointing at `address` instead.
pub fn with_address(url: &str, address: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("redis", url));
    let (credentials, host_and_path) = match rest.rsplit_once('@') {
        Some((credentials, host)) => (format!("{credentials}@"), host),
        None => (String::new(), rest),
    };
    let path = host_and_path.find('/').map_or("", |at| &host_and_path[at..]);
    format!("{scheme}://{credentials}{address}{path}")
}

#[cfg(test)]
mod tests {
    use super::with_address;

    #[test]
    fn the_master_address_replaces_only_host_and_port() {
        assert_eq!(with_address("redis://127.0.0.1:6379", "10.0.0.2:6380"), "redis://10.0.0.2:6380");
        assert_eq!(with_address("redis://:pw@old:1/3", "new:2"), "redis://:pw@new:2/3");
        assert_eq!(with_address("rediss://u:p@old:1", "new:2"), "rediss://u:p@new:2");
    }
}

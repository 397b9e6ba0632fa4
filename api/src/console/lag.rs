//! The consumer groups' lag as the Workers page shows it: read from the broker at most once per tick
//! however many pages are open (the readings are shared), and never for longer than `READ_LIMIT`, so a
//! broker that does not answer costs a page one line, not its other parts.

use infra::kafka::{Kafka, LagReader, PartitionLag};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::Mutex;

/// A reading younger than this is shared instead of asking the broker again.
const FRESH: Duration = Duration::from_millis(900);
/// How long a page waits for the broker's answers before it says the lag is unknown.
const READ_LIMIT: Duration = Duration::from_secs(3);

/// Every group's lag by partition, or why it could not be read.
pub type LagReading = Result<Arc<Vec<PartitionLag>>, String>;

/// The process's one lag reader and its latest reading.
pub struct ConsumerLag {
    reader: Arc<LagReader>,
    latest: Mutex<Option<(Instant, LagReading)>>,
}

impl ConsumerLag {
    pub fn new(kafka: &Kafka) -> anyhow::Result<Self> {
        Ok(Self { reader: Arc::new(kafka.lag_reader()?), latest: Mutex::new(None) })
    }

    /// The latest reading, made now when the last one is stale. Pages that ask at once wait for one read.
    pub async fn reading(&self) -> LagReading {
        let mut latest = self.latest.lock().await;
        if let Some((at, reading)) = latest.as_ref() {
            if at.elapsed() < FRESH {
                return reading.clone();
            }
        }
        let reader = Arc::clone(&self.reader);
        let read = tokio::task::spawn_blocking(move || reader.read());
        let reading = match tokio::time::timeout(READ_LIMIT, read).await {
            Ok(Ok(Ok(lags))) => Ok(Arc::new(lags)),
            Ok(Ok(Err(error))) => Err(format!("{error:#}")),
            Ok(Err(error)) => Err(format!("the lag reading failed: {error}")),
            Err(_) => Err(format!("the broker did not answer within {} s", READ_LIMIT.as_secs())),
        };
        *latest = Some((Instant::now(), reading.clone()));
        reading
    }
}

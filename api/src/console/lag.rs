//! The consumer groups' lag as the Workers page shows it: read from the broker at most once per tick
//! however many pages are open (the readings are shared), and never for longer than `READ_LIMIT`, so a
//! broker that does not answer costs a page one line, not its other parts.

use super::live::SharedReading;
use infra::kafka::{Kafka, LagReader, PartitionLag};
use std::{convert::Infallible, sync::Arc, time::Duration};

/// How long a page waits for the broker's answers before it says the lag is unknown.
const READ_LIMIT: Duration = Duration::from_secs(3);

/// Every group's lag by partition, or why it could not be read.
pub type LagReading = Result<Arc<Vec<PartitionLag>>, String>;

/// The process's one lag reader and its latest reading.
pub struct ConsumerLag {
    reader: Arc<LagReader>,
    latest: SharedReading<LagReading>,
}

impl ConsumerLag {
    pub fn new(kafka: &Kafka) -> anyhow::Result<Self> {
        Ok(Self { reader: Arc::new(kafka.lag_reader()?), latest: SharedReading::new() })
    }

    /// The latest reading, made now when the last one is stale; a failure to read is a reading too.
    pub async fn reading(&self) -> LagReading {
        let read = self.latest.get(|_| async {
            let reader = Arc::clone(&self.reader);
            let read = tokio::task::spawn_blocking(move || reader.read());
            Ok::<_, Infallible>(match tokio::time::timeout(READ_LIMIT, read).await {
                Ok(Ok(Ok(lags))) => Ok(Arc::new(lags)),
                Ok(Ok(Err(error))) => Err(format!("{error:#}")),
                Ok(Err(error)) => Err(format!("the lag reading failed: {error}")),
                Err(_) => Err(format!("the broker did not answer within {} s", READ_LIMIT.as_secs())),
            })
        });
        let Ok(reading) = read.await;
        reading
    }
}

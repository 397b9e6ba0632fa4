//! Jobs whose work units are the ledger's hash partitions: `workers` at a time, each partition's counts
//! checkpointed once it is done, the partitions an interrupted attempt checkpointed skipped, and no new
//! partition begun once a stop is asked (a partition's own work checks between its chunks).

use crate::{
    jobs::{self, Counts, Execution},
    progress::Progress,
    reconcile::LEDGER_PARTITIONS,
    stop::StopSignal,
};
use futures::future::try_join_all;
use sqlx::PgPool;
use std::{future::Future, sync::Mutex};

/// The partitions `execution` has still to do.
pub fn pending(execution: &Execution) -> Vec<i32> {
    (0..LEDGER_PARTITIONS).filter(|p| !execution.completed.contains(p)).collect()
}

/// Runs `work` on each pending partition, `workers` at a time, and checkpoints what it returns; `work`
/// returns None when it stopped midway (on `stop`), and that partition stays for a restart.
pub async fn each_pending<F, Fut>(
    pool: &PgPool,
    execution: &Execution,
    workers: u16,
    progress: &Progress,
    stop: &StopSignal,
    work: F,
) -> anyhow::Result<()>
where
    F: Fn(i32) -> Fut,
    Fut: Future<Output = anyhow::Result<Option<Counts>>>,
{
    let queue = Mutex::new(pending(execution).into_iter().rev().collect::<Vec<_>>());
    let worker = || async {
        while !stop.requested() {
            let next = queue.lock().map_err(|_| anyhow::anyhow!("a worker panicked"))?.pop();
            let Some(partition) = next else { break };
            let Some(counts) = work(partition).await? else { break };
            let mut tx = pool.begin().await?;
            jobs::complete_partition(&mut tx, execution.id, partition, counts).await?;
            tx.commit().await?;
            progress.partition_done(partition, counts.rows_read as u64);
        }
        anyhow::Ok(())
    };
    try_join_all((0..workers).map(|_| worker())).await.map(|_| ())
}

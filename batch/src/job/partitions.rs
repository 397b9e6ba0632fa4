//! Running a job's partitions: `workers` at a time, the ones an interrupted attempt checkpointed
//! skipped, each checkpointed once done, and no new partition begun once a stop is asked (a partition's
//! own work checks between its chunks).

use super::{repository::Execution, Context, PartitionEnd};
use futures::future::try_join_all;
use std::{future::Future, sync::Mutex};

/// The partitions of `0..count` that `execution` has still to do.
pub fn pending(execution: &Execution, count: i32) -> Vec<i32> {
    (0..count).filter(|p| !execution.completed.contains(p)).collect()
}

/// Runs `work` on each of `partitions`, `workers` at a time, and checkpoints what it returns.
pub async fn each<F, Fut>(ctx: &Context<'_>, partitions: Vec<i32>, workers: u16, work: F) -> anyhow::Result<()>
where
    F: Fn(i32) -> Fut,
    Fut: Future<Output = anyhow::Result<PartitionEnd>>,
{
    let queue = Mutex::new(partitions.into_iter().rev().collect::<Vec<_>>());
    let worker = || async {
        while !ctx.stop.requested() {
            let next = queue.lock().map_err(|_| anyhow::anyhow!("a worker panicked"))?.pop();
            let Some(partition) = next else { break };
            let counts = match work(partition).await? {
                PartitionEnd::Stopped => break,
                PartitionEnd::Committed(counts) => counts,
                PartitionEnd::Done(counts) => {
                    let mut tx = ctx.pool.begin().await?;
                    ctx.checkpoint_in(&mut tx, partition, counts).await?;
                    tx.commit().await?;
                    counts
                }
            };
            ctx.progress.partition_done(partition, counts.rows_read as u64);
        }
        anyhow::Ok(())
    };
    try_join_all((0..workers).map(|_| worker())).await.map(|_| ())
}

//! Streams a `COPY ... TO STDOUT` and aggregates it with rayon while the next blocks are still arriving:
//! memory holds the users of the partition plus two rounds of blocks, never the rows themselves.

use super::aggregate::{merge, Totals};
use anyhow::Context;
use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use rayon::prelude::*;
use sqlx::PgConnection;
use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

/// A block handed to one rayon task: large enough to amortise the hand-off, small enough to spread.
const BLOCK_BYTES: usize = 1 << 20;

pub type Parser = fn(&[u8]) -> Result<Totals, String>;

/// Reads the whole COPY output of `statement` and folds it into `totals`; returns them with the number of
/// rows read, which are also added to the shared `rows` counter as they are parsed (for progress).
pub async fn aggregate(
    connection: &mut PgConnection,
    statement: &str,
    parse: Parser,
    totals: Totals,
    pool: &Arc<rayon::ThreadPool>,
    rows: &Arc<AtomicU64>,
) -> anyhow::Result<(Totals, u64)> {
    let round_blocks = pool.current_num_threads() * 2;
    let mut stream = connection.copy_out_raw(statement).await.context("starting COPY OUT")?;
    let mut buffer = BytesMut::with_capacity(BLOCK_BYTES * 2);
    let mut round = Vec::with_capacity(round_blocks);
    // The previous round is parsed on the rayon pool while this task reads the next one.
    let mut in_flight = tokio::task::spawn_blocking(move || Ok((totals, 0)));
    while let Some(chunk) = stream.try_next().await.context("reading COPY OUT")? {
        buffer.extend_from_slice(&chunk);
        if buffer.len() >= BLOCK_BYTES {
            let cut = buffer.iter().rposition(|&b| b == b'\n').map_or(0, |at| at + 1);
            round.push(buffer.split_to(cut).freeze());
        }
        if round.len() == round_blocks {
            let done = in_flight.await??;
            in_flight = spawn_round(done, std::mem::take(&mut round), parse, pool.clone(), rows.clone());
        }
    }
    round.push(buffer.freeze());
    let done = in_flight.await??;
    spawn_round(done, round, parse, pool.clone(), rows.clone()).await?
}

fn spawn_round(
    (totals, read): (Totals, u64),
    blocks: Vec<Bytes>,
    parse: Parser,
    pool: Arc<rayon::ThreadPool>,
    rows: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<anyhow::Result<(Totals, u64)>> {
    tokio::task::spawn_blocking(move || {
        let parsed = pool.install(|| {
            blocks
                .par_iter()
                .map(|block| {
                    let lines = block.iter().filter(|&&b| b == b'\n').count() as u64;
                    rows.fetch_add(lines, Ordering::Relaxed);
                    parse(block).map(|totals| (totals, lines))
                })
                .try_reduce(|| (Totals::new(), 0), |a, b| Ok((merge(a.0, b.0), a.1 + b.1)))
        });
        let (parsed, lines) = parsed.map_err(anyhow::Error::msg)?;
        Ok((merge(totals, parsed), read + lines))
    })
}

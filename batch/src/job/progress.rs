//! Progress of a batch run: an indicatif bar (rows/s, ETA by partitions) on a terminal, and a structured
//! log line every few seconds otherwise (Jenkins, the scheduler), so both show the job is alive.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::{
    io::IsTerminal,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;

const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    pub rows: Arc<AtomicU64>,
    bar: Option<ProgressBar>,
    started: Instant,
    stop: CancellationToken,
}

impl Progress {
    /// Tracks `partitions` units of work; `rows` counts rows read as they stream.
    pub fn start(job: &'static str, partitions: u64) -> Self {
        let rows = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let started = Instant::now();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(partitions), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} partitions {msg} ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(job);
            bar
        });
        let (ticker_rows, ticker_bar, ticker_stop) = (rows.clone(), bar.clone(), stop.clone());
        tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval(if ticker_bar.is_some() { Duration::from_millis(200) } else { LOG_EVERY });
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = ticker_stop.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let read = ticker_rows.load(Ordering::Relaxed);
                let rate = read as f64 / started.elapsed().as_secs_f64().max(1e-3);
                match &ticker_bar {
                    Some(bar) => bar.set_message(format!("{read} rows, {rate:.0} rows/s")),
                    None => tracing::info!(job, rows_read = read, rows_per_second = rate as u64, "progress"),
                }
            }
        });
        Self { rows, bar, started, stop }
    }

    pub fn partition_done(&self, partition: i32, rows: u64) {
        match &self.bar {
            Some(bar) => bar.inc(1),
            None => tracing::info!(partition, rows, "partition completed"),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

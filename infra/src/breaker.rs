//! Circuit breakers around the dependencies a request must not wait for (Redis, the broker): after
//! `failures` outages in a row the breaker opens and calls are refused at once for `open` time;
//! then up to `probes` calls go through, and the first to succeed closes it again (a failure re-opens
//! it). The state machine is failsafe's; the probe cap, the metric and the readiness detail are ours.
//!
//! Only outages count as failures (connection refused or dropped, timeouts, I/O): a script error or a
//! refusal is an answer, and the dependency is up.

use failsafe::{backoff, failure_policy, Config, Instrument, StateMachine};
use std::{
    sync::{
        atomic::{AtomicU8, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

/// When breakers open and how they recover; the same for every dependency.
///
/// A breaker opens on consecutive outages rather than a rate over a window: failsafe's windowed policy
/// cannot open before one whole window has passed since start, and a process that starts while its
/// broker is down must fail fast from its first seconds.
#[derive(clap::Args, Debug, Clone)]
pub struct BreakerArgs {
    /// Consecutive failed calls (outages: refused, dropped, timed out) that open a breaker.
    #[arg(long, env = "CIRCUIT_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub failures: u32,
    /// How long an open breaker refuses every call before it lets probes through, in milliseconds.
    #[arg(long, env = "CIRCUIT_OPEN_MS", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub open_ms: u64,
    /// Calls let through at once while half open; the first success closes the breaker.
    #[arg(long, env = "CIRCUIT_HALF_OPEN_PROBES", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub probes: u32,
}

impl Default for BreakerArgs {
    fn default() -> Self {
        Self { failures: 5, open_ms: 2_000, probes: 2 }
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// Keeps our copy of the state (for the metric, readiness and the probe cap) in step with failsafe's.
#[derive(Clone)]
struct Watch {
    name: &'static str,
    state: Arc<AtomicU8>,
}

impl Watch {
    fn set(&self, state: u8) {
        self.state.store(state, Ordering::SeqCst);
        metrics::gauge!("circuit_breaker_state", "dependency" => self.name).set(f64::from(state));
        if state == OPEN {
            tracing::warn!(dependency = self.name, "circuit breaker opened: calls are refused at once");
        } else if state == CLOSED {
            tracing::info!(dependency = self.name, "circuit breaker closed again");
        }
    }
}

impl Instrument for Watch {
    fn on_call_rejected(&self) {
        metrics::counter!("circuit_breaker_rejected_total", "dependency" => self.name).increment(1);
    }
    fn on_open(&self) {
        self.set(OPEN);
    }
    fn on_half_open(&self) {
        self.set(HALF_OPEN);
    }
    fn on_closed(&self) {
        self.set(CLOSED);
    }
}

type Machine = StateMachine<failure_policy::ConsecutiveFailures<backoff::Constant>, Watch>;

/// One dependency's breaker. Cheap to clone; clones share the state.
#[derive(Clone)]
pub struct Breaker {
    machine: Arc<Machine>,
    watch: Watch,
    probes: usize,
    probing: Arc<AtomicUsize>,
    open_for: Duration,
    /// Off: every call goes through and nothing is counted (to measure what breakers cost).
    enabled: bool,
}

/// The breaker refused the call: the dependency was failing moments ago.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {0} circuit breaker is open")]
pub struct Open(pub &'static str);

impl Breaker {
    pub fn new(name: &'static str, args: &BreakerArgs) -> Self {
        let open_for = Duration::from_millis(args.open_ms);
        let policy = failure_policy::consecutive_failures(args.failures, backoff::constant(open_for));
        let watch = Watch { name, state: Arc::new(AtomicU8::new(CLOSED)) };
        watch.set(CLOSED);
        let machine = Config::new().failure_policy(policy).instrument(watch.clone()).build();
        let probes = args.probes as usize;
        Self { machine: Arc::new(machine), watch, probes, probing: Arc::default(), open_for, enabled: true }
    }

    /// The same breaker switched off: it never opens.
    pub fn disabled(self) -> Self {
        Self { enabled: false, ..self }
    }

    pub fn name(&self) -> &'static str {
        self.watch.name
    }

    /// "closed", "open" or "half_open".
    pub fn state(&self) -> &'static str {
        match self.watch.state.load(Ordering::SeqCst) {
            OPEN => "open",
            HALF_OPEN => "half_open",
            _ => "closed",
        }
    }

    /// Closed again, its failures forgotten (the dependency behind it was replaced).
    pub fn reset(&self) {
        self.machine.reset();
        self.probing.store(0, Ordering::SeqCst);
    }

    /// How long a refused caller should wait before trying again.
    pub fn retry_after(&self) -> Duration {
        self.open_for
    }

    /// Permission for one call: hold the ticket while calling and report how it went.
    pub fn admit(&self) -> Result<Ticket<'_>, Open> {
        if !self.enabled {
            return Ok(Ticket { breaker: self, probe: false, reported: true });
        }
        if !self.machine.is_call_permitted() {
            return Err(Open(self.name()));
        }
        let probe = self.watch.state.load(Ordering::SeqCst) == HALF_OPEN;
        if probe && self.probing.fetch_add(1, Ordering::SeqCst) >= self.probes {
            self.probing.fetch_sub(1, Ordering::SeqCst);
            self.watch.on_call_rejected();
            return Err(Open(self.name()));
        }
        Ok(Ticket { breaker: self, probe, reported: false })
    }

    /// Runs `call` behind the breaker; `is_outage` says which errors count as the dependency failing.
    pub async fn call<T, E>(
        &self,
        call: impl std::future::Future<Output = Result<T, E>>,
        is_outage: impl FnOnce(&E) -> bool,
    ) -> Result<Result<T, E>, Open> {
        let ticket = self.admit()?;
        let result = call.await;
        match &result {
            Err(error) if is_outage(error) => ticket.failed(),
            _ => ticket.succeeded(),
        }
        Ok(result)
    }
}

/// One admitted call. Dropped without a report (the caller gave up), it counts as neither.
pub struct Ticket<'b> {
    breaker: &'b Breaker,
    probe: bool,
    reported: bool,
}

impl Ticket<'_> {
    pub fn succeeded(mut self) {
        if !self.reported {
            self.reported = true;
            self.breaker.machine.on_success();
        }
    }

    pub fn failed(mut self) {
        if !self.reported {
            self.reported = true;
            self.breaker.machine.on_error();
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.probing.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> BreakerArgs {
        BreakerArgs { failures: 4, open_ms: 50, probes: 1 }
    }

    async fn outage(breaker: &Breaker) -> Result<Result<(), ()>, Open> {
        breaker.call(async { Err::<(), ()>(()) }, |_| true).await
    }

    #[tokio::test]
    async fn failures_open_the_breaker_and_a_successful_probe_closes_it() {
        let breaker = Breaker::new("test", &args());
        for _ in 0..4 {
            assert_eq!(outage(&breaker).await, Ok(Err(())), "calls go through until four fail in a row");
        }
        assert_eq!(breaker.state(), "open");
        assert_eq!(outage(&breaker).await, Err(Open("test")), "an open breaker refuses at once");
        tokio::time::sleep(Duration::from_millis(60)).await; // the breaker's own open time, not a sync point
        let probe = breaker.admit().expect("half open: a probe may go");
        assert_eq!(breaker.state(), "half_open");
        assert!(breaker.admit().is_err(), "one probe at a time");
        probe.succeeded();
        assert_eq!(breaker.state(), "closed");
        assert!(breaker.call(async { Ok::<_, ()>(()) }, |_| true).await.is_ok());
    }

    #[tokio::test]
    async fn errors_that_are_answers_do_not_open_it() {
        let breaker = Breaker::new("test", &args());
        for _ in 0..20 {
            assert_eq!(breaker.call(async { Err::<(), &str>("refused") }, |_| false).await, Ok(Err("refused")));
        }
        assert_eq!(breaker.state(), "closed");
    }
}

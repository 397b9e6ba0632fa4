//! A bulkhead: at most `concurrency` callers work at once and at most `queue` wait for a turn; beyond
//! that a caller is refused at once ([`Full`]) instead of piling up. Used for password hashing and for
//! each route group of the API, so that one overloaded part gets quick refusals while the rest of the
//! process keeps its latency.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bulkhead and its queue are full: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {0} bulkhead is full")]
pub struct Full(pub &'static str);

#[derive(Clone)]
pub struct Bulkhead {
    name: &'static str,
    permits: Arc<Semaphore>,
    /// Callers inside: working or waiting for a permit.
    inside: Arc<AtomicUsize>,
    /// How many may be inside at once: the workers plus the queue.
    capacity: usize,
}

impl Bulkhead {
    pub fn new(name: &'static str, concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            name,
            permits: Arc::new(Semaphore::new(concurrency)),
            inside: Arc::new(AtomicUsize::new(0)),
            capacity: concurrency + queue,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Callers inside now (working or queued), and how many may be.
    pub fn occupancy(&self) -> (usize, usize) {
        (self.inside.load(Ordering::SeqCst).min(self.capacity), self.capacity)
    }

    /// A place inside, taken before any other work so that a refusal costs nothing but its answer.
    pub fn admit(&self) -> Result<Place, Full> {
        let ahead = self.inside.fetch_add(1, Ordering::SeqCst);
        let place = Place { bulkhead: self.clone() };
        if ahead >= self.capacity {
            metrics::counter!("bulkhead_refused_total", "bulkhead" => self.name).increment(1);
            return Err(Full(self.name));
        }
        Ok(place)
    }
}

/// A caller's place in a bulkhead; it leaves when dropped (done, refused or abandoned).
pub struct Place {
    bulkhead: Bulkhead,
}

impl Place {
    /// Waits for a turn to work; the turn ends when the returned permit is dropped.
    pub async fn turn(&self) -> Result<OwnedSemaphorePermit, Full> {
        let permits = self.bulkhead.permits.clone();
        // The common case, a free permit, without building a future that waits.
        match permits.clone().try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(_) => permits.acquire_owned().await.map_err(|_| Full(self.bulkhead.name)),
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.bulkhead.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn callers_beyond_the_workers_and_the_queue_are_refused_and_places_free_up_when_dropped() {
        let bulkhead = Bulkhead::new("test", 1, 1);
        let working = bulkhead.admit().expect("the first works");
        let _turn = working.turn().await.expect("a turn");
        let waiting = bulkhead.admit().expect("the second waits");
        assert_eq!(bulkhead.admit().err(), Some(Full("test")), "the third is refused at once");
        drop(waiting);
        assert!(bulkhead.admit().is_ok(), "a dropped place is free again");
    }
}

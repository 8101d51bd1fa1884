//! What every metadata request to Orthanc passes: its own bounded concurrency gate, and a memory of recent 404s.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Metadata requests (lineage, listings, UID lookups, pings, /changes) in flight at once, and a
/// bounded queue behind them: a flood of unknown ids cannot open unbounded requests to Orthanc
/// nor hold unbounded memory waiting.
#[derive(Debug, Clone)]
pub struct MetadataGate {
    slots: Arc<Semaphore>,
    max: usize,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

/// Refused without waiting: `max` in flight and `max_waiting` already queued.
#[derive(Debug)]
pub struct GateFull;

/// Holds one place in the queue while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl MetadataGate {
    pub fn new(max: usize, max_waiting: usize) -> Self {
        let max = max.max(1);
        Self { slots: Arc::new(Semaphore::new(max)), max, waiting: Arc::default(), max_waiting }
    }

    /// A slot: at once if free, else after waiting in the bounded queue.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, GateFull> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        let _place = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max_waiting).then_some(n + 1))
            .map(|_| Waiting(&self.waiting))
            .map_err(|_| GateFull)?;
        // The semaphore is never closed.
        self.slots.clone().acquire_owned().await.map_err(|_| GateFull)
    }

    /// Requests holding a slot.
    pub fn in_flight(&self) -> usize {
        self.max.saturating_sub(self.slots.available_permits())
    }

    /// Requests queued for a slot.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

/// Requests Orthanc recently answered 404 for, by request (method, path and body), for the
/// negative TTL; `None` inside when that TTL is zero.
#[derive(Clone)]
pub struct NotFoundMemo(Option<moka::future::Cache<Arc<str>, ()>>);

impl NotFoundMemo {
    pub fn new(ttl: Duration) -> Self {
        Self(
            (!ttl.is_zero())
                .then(|| moka::future::Cache::builder().max_capacity(100_000).time_to_live(ttl).build()),
        )
    }

    pub fn contains(&self, request: &str) -> bool {
        self.0.as_ref().is_some_and(|c| c.contains_key(request))
    }

    pub async fn insert(&self, request: &str) {
        if let Some(c) = &self.0 {
            c.insert(request.into(), ()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_bounds_flight_and_queue() {
        let gate = MetadataGate::new(2, 1);
        let a = gate.acquire().await.unwrap();
        let _b = gate.acquire().await.unwrap();
        assert_eq!(gate.in_flight(), 2);
        let queued = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.acquire().await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(gate.waiting(), 1);
        assert!(gate.acquire().await.is_err(), "queue full: refused at once");
        drop(a);
        assert!(queued.await.unwrap().is_ok());
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test]
    async fn the_memo_remembers_only_when_on() {
        let memo = NotFoundMemo::new(Duration::from_secs(60));
        memo.insert("GET /instances/x").await;
        assert!(memo.contains("GET /instances/x"));
        assert!(!memo.contains("GET /series/x"));
        let off = NotFoundMemo::new(Duration::ZERO);
        off.insert("GET /instances/x").await;
        assert!(!off.contains("GET /instances/x"));
    }
}

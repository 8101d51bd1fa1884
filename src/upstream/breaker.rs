//! Circuit breaker in front of Orthanc: opens after consecutive failures, probes in the background, closes on recovery.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sync::LockExt;

/// Counters of the breaker's life, exported on `/metrics` as `upstream_circuit_*` (see RELIABILITY.md).
#[derive(Debug, Default)]
pub struct BreakerStats {
    /// Times the circuit opened.
    pub opened: AtomicU64,
    /// Times a successful probe closed it.
    pub closed: AtomicU64,
    /// Requests refused at once because the circuit was open.
    pub rejected: AtomicU64,
    /// Background probes sent, and those that failed.
    pub probes: AtomicU64,
    pub probe_failures: AtomicU64,
}

/// Whether requests may go to Orthanc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
        }
    }
}

/// Shared by every clone of the Orthanc client.
#[derive(Debug)]
pub struct Breaker {
    /// Consecutive failures that open the circuit; 0 = never open.
    threshold: u32,
    /// Pause between background probes while open.
    probe_every: Duration,
    consecutive: AtomicU32,
    open: AtomicBool,
    /// When the next probe is due (for Retry-After).
    next_probe: Mutex<Instant>,
    pub stats: BreakerStats,
}

impl Breaker {
    pub fn new(threshold: u32, probe_every: Duration) -> Arc<Self> {
        Arc::new(Self {
            threshold,
            probe_every,
            consecutive: AtomicU32::new(0),
            open: AtomicBool::new(false),
            next_probe: Mutex::new(Instant::now()),
            stats: BreakerStats::default(),
        })
    }

    pub fn state(&self) -> CircuitState {
        if self.open.load(Ordering::Acquire) {
            CircuitState::Open
        } else {
            CircuitState::Closed
        }
    }

    pub fn probe_every(&self) -> Duration {
        self.probe_every
    }

    /// `None` if a request may go; else the seconds a client should wait (at least 1).
    pub fn refuse(&self) -> Option<u64> {
        if !self.open.load(Ordering::Acquire) {
            return None;
        }
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        let due = *self.next_probe.locked();
        let wait = due.saturating_duration_since(Instant::now());
        Some(wait.as_secs_f64().ceil().max(1.0) as u64)
    }

    pub fn success(&self) {
        self.consecutive.store(0, Ordering::Relaxed);
    }

    /// Count a failure; `true` when this one opened the circuit (the caller starts the probe).
    pub fn failure(&self) -> bool {
        if self.threshold == 0 {
            return false;
        }
        let n = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.threshold
            && self.open.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            self.stats.opened.fetch_add(1, Ordering::Relaxed);
            self.schedule_probe();
            tracing::error!(
                failures = n,
                probe_every_ms = self.probe_every.as_millis() as u64,
                "Orthanc keeps failing: circuit open, new misses fail fast until a probe succeeds"
            );
            return true;
        }
        false
    }

    pub(crate) fn schedule_probe(&self) {
        *self.next_probe.locked() = Instant::now() + self.probe_every;
    }

    /// Record a probe's result; closes the circuit on success.
    pub(crate) fn probed(&self, ok: bool) {
        self.stats.probes.fetch_add(1, Ordering::Relaxed);
        if ok {
            self.consecutive.store(0, Ordering::Relaxed);
            if self.open.swap(false, Ordering::AcqRel) {
                self.stats.closed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("Orthanc answers again: circuit closed");
            }
        } else {
            self.stats.probe_failures.fetch_add(1, Ordering::Relaxed);
            self.schedule_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_closes_on_probe() {
        let b = Breaker::new(3, Duration::from_millis(1500));
        assert!(b.refuse().is_none());
        assert!(!b.failure());
        b.success();
        assert!(!b.failure() && !b.failure());
        assert!(b.failure(), "third consecutive failure opens");
        assert!(!b.failure(), "already open");
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.refuse(), Some(2));
        b.probed(false);
        assert_eq!(b.state(), CircuitState::Open);
        b.probed(true);
        assert_eq!(b.state(), CircuitState::Closed);
        assert!(b.refuse().is_none());
        assert_eq!(b.stats.opened.load(Ordering::Relaxed), 1);
        assert_eq!(b.stats.closed.load(Ordering::Relaxed), 1);
        assert_eq!(b.stats.rejected.load(Ordering::Relaxed), 1);
        assert_eq!(b.stats.probe_failures.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn zero_threshold_never_opens() {
        let b = Breaker::new(0, Duration::from_secs(1));
        for _ in 0..100 {
            assert!(!b.failure());
        }
        assert!(b.refuse().is_none());
    }
}

//! Failed authentications rate-limited per client address (governor GCRA); an address over its budget gets 429 until it cools down.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::AuthError;
use crate::budget::KeyedBudget;
use crate::config::RateLimitConfig;
use crate::sync::LockExt as _;

#[derive(Clone, Default)]
pub struct FailureLimiter {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    failures: KeyedBudget<IpAddr>,
    /// Addresses refused until the given instant. While blocked, even a correct credential is
    /// refused, or the 429/200 difference would tell a guesser when they got it right.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    /// Entries in `blocked`: the common case (nobody blocked) takes no lock.
    blocked_count: AtomicUsize,
}

impl FailureLimiter {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        let Some(failures) = KeyedBudget::new(cfg.failures_per_minute, cfg.burst) else {
            return Self { inner: None };
        };
        Self {
            inner: Some(Arc::new(Inner {
                failures,
                blocked: Mutex::new(HashMap::new()),
                blocked_count: AtomicUsize::new(0),
            })),
        }
    }

    /// Refuse an address that is cooling down.
    pub fn check(&self, ip: IpAddr) -> Result<(), AuthError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        if inner.blocked_count.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let mut blocked = inner.blocked.locked();
        let now = Instant::now();
        match blocked.get(&ip) {
            Some(&until) if until > now => Err(limited(until - now)),
            Some(_) => {
                blocked.remove(&ip);
                inner.blocked_count.store(blocked.len(), Ordering::Relaxed);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Count a failed authentication; `Err(RateLimited)` once the address is over its budget.
    pub fn failed(&self, ip: IpAddr) -> Result<(), AuthError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        match inner.failures.spend(&ip) {
            Ok(()) => Ok(()),
            Err(wait) => {
                let wait = wait.max(Duration::from_secs(1));
                let mut blocked = inner.blocked.locked();
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
                blocked.insert(ip, now + wait);
                inner.blocked_count.store(blocked.len(), Ordering::Relaxed);
                drop(blocked);
                tracing::warn!(target: "audit", client = %ip, retry_after_s = wait.as_secs(), "too many failed authentications");
                Err(limited(wait))
            }
        }
    }
}

fn limited(wait: Duration) -> AuthError {
    AuthError::RateLimited { retry_after_s: wait.as_secs_f64().ceil().max(1.0) as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_429_for_that_address_only() {
        let l = FailureLimiter::new(&RateLimitConfig { failures_per_minute: 6, burst: 3 });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
            assert!(l.failed(a).is_ok());
        }
        let Err(AuthError::RateLimited { retry_after_s }) = l.failed(a) else {
            panic!("4th failure must be limited")
        };
        assert!((1..=10).contains(&retry_after_s), "{retry_after_s}");
        assert!(matches!(l.check(a), Err(AuthError::RateLimited { .. })));
        assert!(l.check(b).is_ok() && l.failed(b).is_ok());
        let off = FailureLimiter::new(&RateLimitConfig { failures_per_minute: 0, burst: 0 });
        for _ in 0..100 {
            assert!(off.failed(a).is_ok());
        }
    }

    #[test]
    fn a_poisoned_block_list_still_refuses() {
        let l = FailureLimiter::new(&RateLimitConfig { failures_per_minute: 6, burst: 1 });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(l.failed(a).is_ok());
        assert!(l.failed(a).is_err());
        let inner = l.inner.clone().unwrap();
        let _ = std::thread::spawn(move || {
            let _g = inner.blocked.lock().unwrap();
            panic!("poison the block list");
        })
        .join();
        assert!(matches!(l.check(a), Err(AuthError::RateLimited { .. })), "never fail open");
        assert!(matches!(l.failed(a), Err(AuthError::RateLimited { .. })));
    }
}

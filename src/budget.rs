//! Per-client budget for new work: images a client (an API key, a token's subject, a delegated
//! credential) may have made per minute. A hit on either tier costs nothing; a miss — an Orthanc
//! fetch or a resize — costs one. One client flooding distinct URLs then gets 429 instead of
//! evicting everyone's images and taking every Orthanc slot. Warm-up jobs are not charged:
//! they have their own concurrency.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Clients tracked before the state of idle ones is dropped.
const RETAIN_ABOVE: usize = 10_000;
/// Above that, the (whole-map) clean-up runs once per this many misses, not on every one.
const RETAIN_EVERY: u64 = 1024;

#[derive(Clone, Default)]
pub struct MissBudget {
    limiter: Option<Arc<DefaultKeyedRateLimiter<Arc<str>>>>,
    spent: Arc<AtomicU64>,
}

impl MissBudget {
    /// `per_minute` 0 = no budget (every miss allowed).
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let (Some(rate), Some(burst)) = (NonZeroU32::new(per_minute), NonZeroU32::new(burst)) else {
            return Self::default();
        };
        Self {
            limiter: Some(Arc::new(RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)))),
            spent: Arc::default(),
        }
    }

    /// Charge one miss to `client`; `Err(seconds)` until it may make another.
    pub fn spend(&self, client: &Arc<str>) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.spent.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == 0 && limiter.len() > RETAIN_ABOVE {
            limiter.retain_recent();
        }
        limiter.check_key(client).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_its_own_budget() {
        let b = MissBudget::new(60, 2);
        let (a, other): (Arc<str>, Arc<str>) = ("key:a".into(), "key:b".into());
        assert!(b.spend(&a).is_ok() && b.spend(&a).is_ok());
        let wait = b.spend(&a).unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        assert!(b.spend(&other).is_ok(), "another client is not charged for a's misses");
    }

    #[test]
    fn zero_means_no_budget() {
        let b = MissBudget::new(0, 0);
        let a: Arc<str> = "key:a".into();
        assert!((0..10_000).all(|_| b.spend(&a).is_ok()));
    }
}

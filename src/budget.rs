//! Per-key budgets (governor GCRA), and the per-client budget for new work built on one.
//!
//! [`KeyedBudget`] is the shared mechanism: events per minute per key, with a burst; used for
//! failed authentications per address (`auth::limit`) and for misses per client here.
//!
//! [`MissBudget`]: images a client (an API key, a token's subject, a delegated credential) may
//! have made per minute. A hit on either tier costs nothing; a miss — an Orthanc fetch or a
//! resize — costs one. One client flooding distinct URLs then gets 429 instead of evicting
//! everyone's images and taking every Orthanc slot. Warm-up jobs are not charged: they have their
//! own concurrency.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keys tracked before the state of idle ones is dropped.
const RETAIN_ABOVE: usize = 10_000;
/// Above that, the (whole-map) clean-up runs once per this many events, not on every one: many
/// keys (a botnet's addresses) must not make each event cost a scan.
const RETAIN_EVERY: u64 = 1024;

/// `per_minute` events per key, `burst` of them at once.
pub struct KeyedBudget<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    events: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedBudget<K> {
    /// `None` when either number is 0 (no budget).
    pub fn new(per_minute: u32, burst: u32) -> Option<Self> {
        let (rate, burst) = (NonZeroU32::new(per_minute)?, NonZeroU32::new(burst)?);
        Some(Self {
            limiter: RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)),
            events: AtomicU64::new(0),
        })
    }

    /// Charge one event to `key`; `Err(wait)` until it may have another.
    pub fn spend(&self, key: &K) -> Result<(), Duration> {
        if self.events.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == 0
            && self.limiter.len() > RETAIN_ABOVE
        {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

#[derive(Clone, Default)]
pub struct MissBudget {
    budget: Option<Arc<KeyedBudget<Arc<str>>>>,
}

impl MissBudget {
    /// `per_minute` 0 = no budget (every miss allowed).
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self { budget: KeyedBudget::new(per_minute, burst).map(Arc::new) }
    }

    /// Charge one miss to `client`; `Err(seconds)` until it may make another.
    pub fn spend(&self, client: &Arc<str>) -> Result<(), u64> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        budget.spend(client).map_err(|wait| wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
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

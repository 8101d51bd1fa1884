//! Memory tier: moka, weighted by bytes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use moka::notification::RemovalCause;

use super::{CacheKey, Entry};
use crate::ids::OrthancId;

#[derive(Clone)]
pub struct MemoryCache {
    inner: moka::future::Cache<CacheKey, Arc<Entry>>,
    evictions: Arc<AtomicU64>,
}

impl MemoryCache {
    pub fn new(capacity_bytes: u64) -> Self {
        let evictions = Arc::new(AtomicU64::new(0));
        let counted = evictions.clone();
        let inner = moka::future::Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|_k: &CacheKey, v: &Arc<Entry>| v.weight())
            .eviction_listener(move |_k, _v, cause| {
                if cause == RemovalCause::Size {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        Self { inner, evictions }
    }

    pub async fn get(&self, key: &CacheKey) -> Option<Arc<Entry>> {
        self.inner.get(key).await
    }

    pub fn contains(&self, key: &CacheKey) -> bool {
        self.inner.contains_key(key)
    }

    pub async fn insert(&self, key: CacheKey, entry: Arc<Entry>) {
        self.inner.insert(key, entry).await;
    }

    /// Drop every entry of `instance`; returns (entries, bytes) dropped. Scans the tier: for purges only.
    pub async fn remove_instance(&self, instance: &OrthancId) -> (u64, u64) {
        let keys: Vec<(Arc<CacheKey>, u64)> = self
            .inner
            .iter()
            .filter(|(k, _)| &k.instance == instance)
            .map(|(k, v)| (k, u64::from(v.weight())))
            .collect();
        let mut dropped = (0, 0);
        for (key, weight) in keys {
            if self.inner.remove(&*key).await.is_some() {
                dropped.0 += 1;
                dropped.1 += weight;
            }
        }
        dropped
    }

    /// Bytes currently held (after pending maintenance).
    pub async fn weighted_size(&self) -> u64 {
        self.inner.run_pending_tasks().await;
        self.inner.weighted_size()
    }

    /// Entries currently held (approximate until pending maintenance runs).
    pub fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }

    /// Entries evicted to stay within the byte capacity, since start.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }
}

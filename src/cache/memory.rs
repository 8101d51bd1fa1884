//! Memory tier: moka, weighted by bytes.

use std::sync::Arc;

use super::{CacheKey, Entry};
use crate::ids::OrthancId;

#[derive(Clone)]
pub struct MemoryCache {
    inner: moka::future::Cache<CacheKey, Arc<Entry>>,
}

impl MemoryCache {
    pub fn new(capacity_bytes: u64) -> Self {
        let inner = moka::future::Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|_k: &CacheKey, v: &Arc<Entry>| v.weight())
            .build();
        Self { inner }
    }

    pub async fn get(&self, key: &CacheKey) -> Option<Arc<Entry>> {
        self.inner.get(key).await
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
}

//! Memory tier: moka, weighted by bytes.

use std::sync::Arc;

use super::{CacheKey, Entry};

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

    /// Bytes currently held (after pending maintenance).
    pub async fn weighted_size(&self) -> u64 {
        self.inner.run_pending_tasks().await;
        self.inner.weighted_size()
    }
}

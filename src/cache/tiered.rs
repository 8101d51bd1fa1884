//! Memory → disk → fill, with one fill per key however many requests wait for it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, Shared};

use super::{CacheKey, DiskCache, Entry, MemoryCache};
use crate::error::AppError;
use crate::ids::OrthancId;

/// Where a response came from: `X-Cache` header, logs and metrics all use this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    HitMemory,
    HitDisk,
    Miss,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::HitMemory => "hit-memory",
            CacheStatus::HitDisk => "hit-disk",
            CacheStatus::Miss => "miss",
        }
    }
}

impl fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Outcome = Result<(Arc<Entry>, CacheStatus), AppError>;
type Flight = Shared<BoxFuture<'static, Outcome>>;

#[derive(Clone)]
pub struct TieredCache {
    memory: MemoryCache,
    disk: Arc<DiskCache>,
    flights: Arc<Mutex<HashMap<CacheKey, Flight>>>,
    flight_wait: Duration,
}

impl TieredCache {
    pub fn new(memory: MemoryCache, disk: Arc<DiskCache>, flight_wait: Duration) -> Self {
        Self { memory, disk, flights: Arc::default(), flight_wait }
    }

    pub fn disk(&self) -> &Arc<DiskCache> {
        &self.disk
    }

    pub fn memory(&self) -> &MemoryCache {
        &self.memory
    }

    /// Drop every entry of `instance` from both tiers; returns (entries, bytes) dropped from disk
    /// plus those only in memory.
    pub async fn purge_instance(&self, instance: &OrthancId) -> Result<(u64, u64), AppError> {
        let (mem_entries, mem_bytes) = self.memory.remove_instance(instance).await;
        let disk = self.disk.clone();
        let prefix = CacheKey::instance_prefix(instance);
        let on_disk = tokio::task::spawn_blocking(move || disk.remove_prefix(prefix.as_bytes()))
            .await
            .map_err(|e| AppError::Internal(format!("purge task: {e}")))?
            .map_err(|e| AppError::Internal(format!("purge: {e}")))?;
        // Every memory entry is normally on disk too: report the larger tier.
        Ok((on_disk.0.max(mem_entries), on_disk.1.max(mem_bytes)))
    }

    /// The entry for `key`, from memory, disk, or `fill` (called at most once per key at a time).
    ///
    /// The fill runs in its own task: a client that gives up does not cancel it for the others.
    /// Waiting is bounded by the flight wait; past it the caller gets `FlightTimeout`.
    pub async fn get_or_fill<F, Fut>(&self, key: &CacheKey, fill: F) -> Outcome
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Entry, AppError>> + Send + 'static,
    {
        if let Some(e) = self.memory.get(key).await {
            return Ok((e, CacheStatus::HitMemory));
        }
        let flight = {
            let mut flights =
                self.flights.lock().map_err(|_| AppError::Internal("flight map poisoned".into()))?;
            match flights.get(key) {
                Some(f) => (f.clone(), Some(crate::telemetry::metrics::flight_joined())),
                None => {
                    let f = self.start_flight(key.clone(), fill);
                    flights.insert(key.clone(), f.clone());
                    (f, None)
                }
            }
        };
        // Held while waiting: the waiter gauge drops even if this request is cancelled.
        let (flight, _waiter) = flight;
        tokio::time::timeout(self.flight_wait, flight).await.unwrap_or(Err(AppError::FlightTimeout))
    }

    fn start_flight<F, Fut>(&self, key: CacheKey, fill: F) -> Flight
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Entry, AppError>> + Send + 'static,
    {
        let this = self.clone();
        let task = tokio::spawn(async move {
            let outcome = this.lookup_or_fill(&key, fill).await;
            if let Ok(mut flights) = this.flights.lock() {
                flights.remove(&key);
            }
            outcome
        });
        async move {
            task.await
                .unwrap_or_else(|e| Err(AppError::Internal(format!("fill task failed: {e}"))))
        }
        .boxed()
        .shared()
    }

    async fn lookup_or_fill<F, Fut>(&self, key: &CacheKey, fill: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Entry, AppError>>,
    {
        // A flight that just finished may have filled memory between our check and our start.
        if let Some(e) = self.memory.get(key).await {
            return Ok((e, CacheStatus::HitMemory));
        }
        let disk = self.disk.clone();
        let raw_key = key.to_bytes();
        let from_disk = tokio::task::spawn_blocking(move || disk.get(&raw_key)).await;
        match from_disk {
            Ok(Ok(Some(entry))) => {
                let entry = Arc::new(entry);
                self.memory.insert(key.clone(), entry.clone()).await;
                return Ok((entry, CacheStatus::HitDisk));
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "disk cache read failed; treating as a miss"),
            Err(e) => tracing::warn!(error = %e, "disk cache read task failed; treating as a miss"),
        }
        let entry = Arc::new(fill().await?);
        self.memory.insert(key.clone(), entry.clone()).await;
        let disk = self.disk.clone();
        let raw_key = key.to_bytes();
        let stored = entry.clone();
        let written = tokio::task::spawn_blocking(move || disk.put(&raw_key, &stored)).await;
        if !matches!(written, Ok(Ok(()))) {
            self.disk.stats.write_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match written {
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "disk cache write failed; serving from memory")
                }
                Err(e) => tracing::warn!(error = %e, "disk cache write task failed"),
                Ok(Ok(())) => {}
            }
        }
        Ok((entry, CacheStatus::Miss))
    }
}

//! Memory → disk → fill, with one fill per key however many requests wait for it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
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

/// Disk writes queued at once; beyond, a write is skipped (counted) rather than queued without bound.
const MAX_PENDING_WRITES: usize = 256;
/// Most entries the disk writer stores in one transaction.
const MAX_WRITE_BATCH: usize = 64;
/// A disk read slower than this is treated as a miss: a sick disk never holds a request.
const DISK_READ_WAIT: Duration = Duration::from_secs(2);

/// Where a filled entry is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tiers {
    Both,
    /// Memory only: neither read from nor written to disk.
    MemoryOnly,
}

type Outcome = Result<(Arc<Entry>, CacheStatus), AppError>;
type Flight = Shared<BoxFuture<'static, Outcome>>;

#[derive(Clone)]
pub struct TieredCache {
    memory: MemoryCache,
    disk: Arc<DiskCache>,
    flights: Arc<Mutex<HashMap<CacheKey, Flight>>>,
    flight_wait: Duration,
    pending_writes: Arc<AtomicUsize>,
    /// The disk writer's queue; `None` if its thread could not be started (writes are skipped).
    writes: Option<SyncSender<Write>>,
}

/// One queued disk write.
struct Write {
    key: Vec<u8>,
    entry: Arc<Entry>,
    _slot: PendingWrite,
}

/// Releases one pending-write slot when the write ends, however it ends.
struct PendingWrite(Arc<AtomicUsize>);

impl Drop for PendingWrite {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl TieredCache {
    pub fn new(memory: MemoryCache, disk: Arc<DiskCache>, flight_wait: Duration) -> Self {
        let writes = match spawn_writer(disk.clone()) {
            Ok(tx) => Some(tx),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the disk writer; the disk tier is read-only");
                None
            }
        };
        Self { memory, disk, flights: Arc::default(), flight_wait, pending_writes: Arc::default(), writes }
    }

    /// Fills in progress (distinct keys being made right now).
    pub fn in_flight(&self) -> usize {
        self.flights.lock().map(|f| f.len()).unwrap_or(0)
    }

    /// Disk writes queued or running.
    pub fn pending_writes(&self) -> usize {
        self.pending_writes.load(Ordering::Acquire)
    }

    /// Wait (at most `max`) for queued disk writes to finish: before a flush at shutdown.
    pub async fn settle_writes(&self, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        while self.pending_writes.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Write to disk in the background: the response never waits for the disk, a full or failing
    /// disk costs a counter and a (thinned) log line, and a stuck one at most MAX_PENDING_WRITES.
    fn store_on_disk(&self, key: &CacheKey, entry: Arc<Entry>) {
        let pending = self.pending_writes.clone();
        pending.fetch_add(1, Ordering::AcqRel);
        let write = Write { key: key.to_bytes(), entry, _slot: PendingWrite(pending) };
        // A full queue (or no writer) drops the write, and with it its pending slot.
        let queued = match &self.writes {
            Some(tx) => tx.try_send(write).is_ok(),
            None => false,
        };
        if !queued {
            self.disk.stats.writes_skipped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether `key` is in either tier. Blocking (reads the disk index): call from a blocking task.
    pub fn contains_blocking(&self, key: &CacheKey) -> bool {
        self.memory.contains(key) || self.disk.contains(&key.to_bytes()).unwrap_or(false)
    }

    /// Store an entry made outside `get_or_fill` (a fill's by-products): memory now, disk soon.
    pub async fn put(&self, key: &CacheKey, entry: Arc<Entry>) {
        self.memory.insert(key.clone(), entry.clone()).await;
        self.store_on_disk(key, entry);
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
        self.get_or_fill_in(key, Tiers::Both, fill).await
    }

    /// `get_or_fill`, keeping the entry in `tiers`.
    pub async fn get_or_fill_in<F, Fut>(&self, key: &CacheKey, tiers: Tiers, fill: F) -> Outcome
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
                    let f = self.start_flight(key.clone(), tiers, fill);
                    flights.insert(key.clone(), f.clone());
                    (f, None)
                }
            }
        };
        // Held while waiting: the waiter gauge drops even if this request is cancelled.
        let (flight, _waiter) = flight;
        tokio::time::timeout(self.flight_wait, flight).await.unwrap_or(Err(AppError::FlightTimeout))
    }

    fn start_flight<F, Fut>(&self, key: CacheKey, tiers: Tiers, fill: F) -> Flight
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Entry, AppError>> + Send + 'static,
    {
        let this = self.clone();
        let task = tokio::spawn(async move {
            let outcome = this.lookup_or_fill(&key, tiers, fill).await;
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

    async fn lookup_or_fill<F, Fut>(&self, key: &CacheKey, tiers: Tiers, fill: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Entry, AppError>>,
    {
        // A flight that just finished may have filled memory between our check and our start.
        if let Some(e) = self.memory.get(key).await {
            return Ok((e, CacheStatus::HitMemory));
        }
        if tiers == Tiers::MemoryOnly {
            let entry = Arc::new(fill().await?);
            self.memory.insert(key.clone(), entry.clone()).await;
            return Ok((entry, CacheStatus::Miss));
        }
        let disk = self.disk.clone();
        let raw_key = key.to_bytes();
        let from_disk =
            tokio::time::timeout(DISK_READ_WAIT, tokio::task::spawn_blocking(move || disk.get(&raw_key)))
                .await;
        match from_disk {
            Ok(Ok(Ok(Some(entry)))) => {
                let entry = Arc::new(entry);
                self.memory.insert(key.clone(), entry.clone()).await;
                return Ok((entry, CacheStatus::HitDisk));
            }
            Ok(Ok(Ok(None))) => {}
            failed => {
                let n = self.disk.stats.read_errors.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    let why = match failed {
                        Ok(Ok(Err(e))) => e.to_string(),
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("slower than {DISK_READ_WAIT:?}"),
                    };
                    tracing::warn!(error = %why, failures = n, "disk cache read failed; treating as a miss");
                }
            }
        }
        let entry = Arc::new(fill().await?);
        self.put(key, entry.clone()).await;
        Ok((entry, CacheStatus::Miss))
    }
}

/// The disk writer: one thread storing queued entries in batches, so that a burst of fills (a
/// warm-up job) costs one sled transaction per batch instead of one per entry. It ends when the
/// last `TieredCache` clone is dropped.
fn spawn_writer(disk: Arc<DiskCache>) -> std::io::Result<SyncSender<Write>> {
    let (tx, rx) = mpsc::sync_channel::<Write>(MAX_PENDING_WRITES);
    std::thread::Builder::new().name("disk-writer".into()).spawn(move || {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_WRITE_BATCH {
                match rx.try_recv() {
                    Ok(w) => batch.push(w),
                    Err(_) => break,
                }
            }
            let items: Vec<(&[u8], &Entry)> = batch.iter().map(|w| (w.key.as_slice(), &*w.entry)).collect();
            if let Err(e) = disk.put_many(&items) {
                let n = disk.stats.write_errors.fetch_add(batch.len() as u64, Ordering::Relaxed) + 1;
                // Logged about once per power of two failures: a full disk does not flood the log.
                if (n..n + batch.len() as u64).any(u64::is_power_of_two) {
                    tracing::warn!(error = %e, failures = n, "disk cache write failed; serving from memory");
                }
            }
        }
    })?;
    Ok(tx)
}

//! The two tiers as one cache: lookup (memory, then disk) and store (memory now, disk in the background).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use super::readers::{ReadFailed, Readers};
use super::{CacheError, CacheKey, DiskCache, Entry, MemoryCache};
use crate::ids::OrthancId;

/// Where a response came from: `X-Cache` header, logs and metrics all use this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    HitMemory,
    HitDisk,
    /// Another edge of the cluster, the image's owner, had it.
    HitPeer,
    Miss,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::HitMemory => "hit-memory",
            CacheStatus::HitDisk => "hit-disk",
            CacheStatus::HitPeer => "hit-peer",
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
/// Threads reading the disk tier: one slow read does not hold every hit, and under load they
/// drain the queue rather than each waking for one read (one reader for one server worker
/// measured no better than two).
const DISK_READERS: usize = 2;
/// Reads queued at once; beyond, a lookup is a miss at once (a stuck disk).
const MAX_QUEUED_READS: usize = 1024;

/// Where an entry is looked up and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tiers {
    Both,
    /// Memory only: neither read from nor written to disk.
    MemoryOnly,
}

#[derive(Clone)]
pub struct TieredCache {
    memory: MemoryCache,
    disk: Arc<DiskCache>,
    pending_writes: Arc<AtomicUsize>,
    /// The disk writer's queue; `None` if its thread could not be started (writes are skipped).
    writes: Option<SyncSender<Write>>,
    /// The disk readers; `None` if their threads could not be started (the disk tier is not read).
    reads: Option<Readers>,
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
    pub fn new(memory: MemoryCache, disk: Arc<DiskCache>) -> Self {
        let writes = match spawn_writer(disk.clone()) {
            Ok(tx) => Some(tx),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the disk writer; the disk tier is read-only");
                None
            }
        };
        let reads = match Readers::start(DISK_READERS, MAX_QUEUED_READS) {
            Ok(readers) => Some(readers),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the disk readers; the disk tier is not read");
                None
            }
        };
        Self { memory, disk, pending_writes: Arc::default(), writes, reads }
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

    /// The entry for `key` from memory, then (with `Tiers::Both`) from disk, where a read slower
    /// than DISK_READ_WAIT or failing counts as a miss. A disk hit is promoted to memory.
    pub async fn lookup(&self, key: &CacheKey, tiers: Tiers) -> Option<(Arc<Entry>, CacheStatus)> {
        if let Some(found) = self.lookup_memory(key).await {
            return Some(found);
        }
        if tiers == Tiers::MemoryOnly {
            return None;
        }
        self.lookup_disk(key).await
    }

    /// The memory tier alone. Its future is a fraction of [`Self::lookup`]'s, which holds the
    /// disk read and the promotion to memory: what a miss's spawned task carries matters.
    pub async fn lookup_memory(&self, key: &CacheKey) -> Option<(Arc<Entry>, CacheStatus)> {
        self.memory.get(key).await.map(|e| (e, CacheStatus::HitMemory))
    }

    /// The disk tier alone (promoted to memory when found), for a caller that just missed in
    /// memory.
    pub async fn lookup_disk(&self, key: &CacheKey) -> Option<(Arc<Entry>, CacheStatus)> {
        let disk = self.disk.clone();
        let raw_key = key.to_bytes();
        match self.read(move || disk.get(&raw_key)).await? {
            Ok(Some(entry)) => {
                let entry = Arc::new(entry);
                self.memory.insert(key.clone(), entry.clone()).await;
                Some((entry, CacheStatus::HitDisk))
            }
            Ok(None) => None,
            Err(e) => {
                self.note_read_error(&e.to_string());
                None
            }
        }
    }

    /// `read` on a disk reader; `None` (counted, thinly logged) when it fails to answer within
    /// DISK_READ_WAIT or the readers are stuck or absent.
    async fn read<T: Send + 'static>(&self, read: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let answer = match &self.reads {
            Some(readers) => readers.run(DISK_READ_WAIT, read).await,
            None => Err(ReadFailed::Busy),
        };
        answer.map_err(|e| self.note_read_error(&e.to_string())).ok()
    }

    /// Which of `keys` either tier holds, one answer per key in order. A disk that fails or is
    /// slower than DISK_READ_WAIT answers "not held".
    pub async fn contains(&self, keys: &[CacheKey]) -> Vec<bool> {
        let mut held: Vec<bool> = keys.iter().map(|k| self.memory.contains(k)).collect();
        let ask: Vec<(usize, Vec<u8>)> =
            keys.iter().enumerate().filter(|(i, _)| !held[*i]).map(|(i, k)| (i, k.to_bytes())).collect();
        if ask.is_empty() {
            return held;
        }
        let disk = self.disk.clone();
        let found = self
            .read(move || {
                ask.into_iter().map(|(i, k)| (i, disk.contains(&k).unwrap_or(false))).collect::<Vec<_>>()
            })
            .await;
        found.into_iter().flatten().for_each(|(i, on_disk)| held[i] = on_disk);
        held
    }

    /// Counted, and logged about once per power of two failures.
    fn note_read_error(&self, why: &str) {
        let n = self.disk.stats.read_errors.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(error = %why, failures = n, "disk cache read failed; treating as a miss");
        }
    }

    /// Keep `entry` in memory now and (with `Tiers::Both`) on disk soon.
    pub async fn store(&self, key: &CacheKey, entry: Arc<Entry>, tiers: Tiers) {
        self.memory.insert(key.clone(), entry.clone()).await;
        if tiers == Tiers::Both {
            self.store_on_disk(key, entry);
        }
    }

    /// Keep a copy of an image another edge owns, in memory only, for `ttl`.
    pub async fn store_copy(&self, key: &CacheKey, entry: Arc<Entry>, ttl: Duration) {
        self.memory.insert_for(key.clone(), entry, Some(ttl)).await;
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

    pub fn disk(&self) -> &Arc<DiskCache> {
        &self.disk
    }

    pub fn memory(&self) -> &MemoryCache {
        &self.memory
    }

    /// Drop every entry of `instance` from both tiers; returns (entries, bytes) dropped from disk
    /// plus those only in memory.
    pub async fn purge_instance(&self, instance: &OrthancId) -> Result<(u64, u64), CacheError> {
        let (mem_entries, mem_bytes) = self.memory.remove_instance(instance).await;
        let disk = self.disk.clone();
        let prefix = CacheKey::instance_prefix(instance);
        let on_disk = tokio::task::spawn_blocking(move || disk.remove_prefix(prefix.as_bytes()))
            .await
            .map_err(|e| CacheError::Join(format!("purge task: {e}")))??;
        // Every memory entry is normally on disk too: report the larger tier.
        Ok((on_disk.0.max(mem_entries), on_disk.1.max(mem_bytes)))
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

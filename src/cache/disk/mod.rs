//! Disk tier: checksummed entries in files, indexed by sled, bounded by bytes with
//! least-recently-used eviction.
//!
//! [`bodies`] holds the files, [`index`] the sled rows, [`recover`] what start-up does after a
//! crash. A body is written before its index row and removed after it; a crash in between leaves
//! an orphan file (swept by [`DiskCache::verify_all`]) or a row without a body (dropped on first
//! read). All methods block: call them from `spawn_blocking` or a thread of their own.

mod bodies;
mod index;
mod recover;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::{CacheError, Entry};
use crate::sync::LockExt;
use bodies::Bodies;
use index::Index;

/// Evict down to this share of capacity, so eviction runs in batches, not per insert.
const LOW_WATERMARK: f64 = 0.9;
/// Reads whose LRU moves wait for one transaction (see [`DiskCache::touched`]).
const PENDING_TOUCHES: usize = 1024;
/// sled's in-memory page cache when not configured (sled's own default is 1 GiB).
pub const DEFAULT_PAGE_CACHE_BYTES: u64 = 16 << 20;

/// The tier's counters, read at scrape time (`/metrics`, see RELIABILITY.md).
#[derive(Debug, Default)]
pub struct DiskStats {
    pub checksum_failures: AtomicU64,
    pub evictions: AtomicU64,
    /// Writes that failed (disk full, I/O error): the image was served from memory anyway.
    pub write_errors: AtomicU64,
    /// Writes not attempted because too many were already pending (a slow or stuck disk).
    pub writes_skipped: AtomicU64,
    /// Reads that failed or took too long: treated as misses.
    pub read_errors: AtomicU64,
    /// Entries whose checksum the start-up scan verified.
    pub verified: AtomicU64,
}

pub struct DiskCache {
    index: Index,
    bodies: Bodies,
    used: AtomicU64,
    /// Index rows, kept here: counting sled's rows walks the whole tree (every `/metrics` scrape).
    entries: AtomicU64,
    capacity: u64,
    evicting: Mutex<()>,
    /// Keys read, with the LRU number of their read, not yet moved in the index: a sled
    /// transaction per disk hit cost more than the rest of the hit (bench-load: 189 µs CPU for a
    /// 4.9 KB disk hit). Applied before every eviction (the only reader of the order), on flush,
    /// and every PENDING_TOUCHES keys; a crash loses only recency, never an entry.
    touched: Mutex<HashMap<Vec<u8>, u64>>,
    pub stats: DiskStats,
}

impl DiskCache {
    /// Open the cache folder; if sled cannot read it, move it aside and start empty.
    pub fn open(dir: &Path, capacity: u64) -> Result<Self, CacheError> {
        Self::open_with_page_cache(dir, capacity, DEFAULT_PAGE_CACHE_BYTES)
    }

    fn try_open(dir: &Path, capacity: u64, page_cache: u64) -> Result<Self, CacheError> {
        let open_err = |why: String| CacheError::Open { path: dir.display().to_string(), why };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let cfg = sled::Config::new().path(dir).flush_every_ms(Some(200)).cache_capacity(page_cache);
        // sled may panic rather than err on some damaged files; the cache is disposable either way.
        let db = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cfg.open()))
            .map_err(|_| open_err("sled panicked while opening".into()))?
            .map_err(|e| open_err(e.to_string()))?;
        let index = Index::open(db)?;
        let bodies = Bodies::open(dir).map_err(|e| open_err(format!("bodies folder: {e}")))?;
        let (used, entries) = index.totals()?;
        Ok(Self {
            index,
            bodies,
            used: AtomicU64::new(used),
            entries: AtomicU64::new(entries),
            capacity,
            evicting: Mutex::new(()),
            touched: Mutex::default(),
            stats: DiskStats::default(),
        })
    }

    /// Read and verify an entry. A damaged or missing body is removed, counted, and reported as absent.
    pub fn get(&self, key: &[u8]) -> Result<Option<Entry>, CacheError> {
        if !self.index.contains(key)? {
            return Ok(None);
        }
        let Some(raw) = self.bodies.read(key)? else {
            // The index outlived its body (a crash between the two): forget the row.
            self.remove(key)?;
            return Ok(None);
        };
        match Entry::decode(raw.into()) {
            Ok(entry) => {
                self.touched(key)?;
                Ok(Some(entry))
            }
            Err(e) => {
                self.stats.checksum_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "corrupt disk cache entry dropped");
                self.remove(key)?;
                Ok(None)
            }
        }
    }

    /// Whether an entry is stored (not verified: `get` does that).
    pub fn contains(&self, key: &[u8]) -> Result<bool, CacheError> {
        self.index.contains(key)
    }

    /// Store an entry, then evict least recently used entries if over capacity.
    pub fn put(&self, key: &[u8], entry: &Entry) -> Result<(), CacheError> {
        self.put_many(&[(key, entry)])
    }

    /// Store several entries, their index rows in one transaction, then evict least recently used
    /// entries if over capacity. One transaction per batch, not per entry: sled's cost is mostly
    /// per transaction.
    pub fn put_many(&self, items: &[(&[u8], &Entry)]) -> Result<(), CacheError> {
        let mut rows = Vec::with_capacity(items.len());
        for (key, entry) in items {
            let size = self.bodies.write(key, &entry.encode(), self.index.next_seq()?)? + key.len() as u64;
            rows.push((*key, size, self.index.next_seq()?));
        }
        let (replaced, replaced_bytes) = self.index.insert(&rows)?;
        self.entries.fetch_add(rows.len() as u64 - replaced, Ordering::Relaxed);
        self.used.fetch_add(rows.iter().map(|r| r.1).sum(), Ordering::Relaxed);
        sub_saturating(&self.used, replaced_bytes);
        if self.used.load(Ordering::Relaxed) > self.capacity {
            self.evict()?;
        }
        Ok(())
    }

    /// Remove one entry (row, then body); returns the bytes freed.
    pub fn remove(&self, key: &[u8]) -> Result<u64, CacheError> {
        // `None`: there was no row (a body may still be there).
        let freed = self.index.remove(key)?;
        if let Some(bytes) = freed {
            sub_saturating(&self.entries, 1);
            sub_saturating(&self.used, bytes);
        }
        self.bodies.remove(key)?;
        Ok(freed.unwrap_or(0))
    }

    /// Remove every entry whose key starts with `prefix`; returns (entries, bytes) freed.
    pub fn remove_prefix(&self, prefix: &[u8]) -> Result<(u64, u64), CacheError> {
        let mut freed = (0, 0);
        for key in self.index.keys_with_prefix(prefix)? {
            let bytes = self.remove(&key)?;
            freed.0 += 1;
            freed.1 += bytes;
        }
        Ok(freed)
    }

    /// `key` was just read: it moves to the young end of the LRU order (batched).
    fn touched(&self, key: &[u8]) -> Result<(), CacheError> {
        let seq = self.index.next_seq()?;
        let full = {
            let mut touched = self.touched.locked();
            match touched.get_mut(key) {
                Some(s) => *s = seq,
                None => {
                    touched.insert(key.to_vec(), seq);
                }
            }
            touched.len() >= PENDING_TOUCHES
        };
        if full {
            self.apply_touches()?;
        }
        Ok(())
    }

    /// Move the keys read since the last time in the LRU order, in one transaction.
    fn apply_touches(&self) -> Result<(), CacheError> {
        let touched: Vec<(Vec<u8>, u64)> = std::mem::take(&mut *self.touched.locked()).into_iter().collect();
        if touched.is_empty() {
            return Ok(());
        }
        self.index.touch(&touched)
    }

    fn evict(&self) -> Result<(), CacheError> {
        // One evictor at a time; others carry on, the running one catches up with them.
        let Some(_guard) = self.evicting.try_locked() else {
            return Ok(());
        };
        // The order it reads must include the reads so far.
        self.apply_touches()?;
        let target = (self.capacity as f64 * LOW_WATERMARK) as u64;
        while self.used.load(Ordering::Relaxed) > target {
            let Some((key, lru_row)) = self.index.oldest()? else {
                break;
            };
            self.remove(&key)?;
            // A stale lru row (no meta) would otherwise loop forever.
            self.index.forget_lru(&lru_row)?;
            self.stats.evictions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Entries stored (a counter: no tree walk).
    pub fn len(&self) -> usize {
        usize::try_from(self.entries.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write the index to disk now (shutdown; sled also flushes on its own every 200 ms). Bodies
    /// are in the operating system's hands from their rename on.
    pub fn flush(&self) -> Result<(), CacheError> {
        self.apply_touches()?;
        self.index.flush()
    }

    /// Corrupt an entry's stored bytes in place (tests of checksum handling).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn corrupt_for_test(&self, key: &[u8]) -> Result<bool, CacheError> {
        self.bodies.corrupt(key)
    }
}

/// `counter -= n`, stopping at 0.
fn sub_saturating(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    pub(super) fn entry(n: usize, fill: u8) -> Entry {
        Entry::new("image/png", Bytes::from(vec![fill; n]))
    }

    /// sled's background flusher may hold the folder's lock for a moment after a drop.
    fn reopen(path: &Path) -> DiskCache {
        for _ in 0..100 {
            match DiskCache::open(path, 1 << 20) {
                Ok(c) => return c,
                Err(e) if e.to_string().contains("in use") => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("cache folder stayed locked");
    }

    #[test]
    fn put_get_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        {
            let c = DiskCache::open(&path, 1 << 20).unwrap();
            c.put(b"k1", &entry(100, 1)).unwrap();
            assert_eq!(c.get(b"k1").unwrap().unwrap().body.len(), 100);
            c.flush().unwrap();
        }
        let c = reopen(&path);
        assert_eq!(c.get(b"k1").unwrap().unwrap(), {
            let mut e = entry(100, 1);
            e.created = c.get(b"k1").unwrap().unwrap().created;
            e
        });
        assert!(c.used_bytes() > 100);
    }

    #[test]
    fn corrupt_entry_is_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
        c.put(b"k", &entry(1000, 9)).unwrap();
        assert!(c.corrupt_for_test(b"k").unwrap());
        assert!(c.get(b"k").unwrap().is_none());
        assert_eq!(c.stats.checksum_failures.load(Ordering::Relaxed), 1);
        assert!(c.is_empty());
        assert_eq!(c.used_bytes(), 0);
    }

    #[test]
    fn evicts_least_recently_used_over_capacity() {
        let dir = tempfile::tempdir().unwrap();
        // Each entry takes one 4 KiB block: seven fit.
        let c = DiskCache::open(dir.path(), 30_000).unwrap();
        for i in 0..5u8 {
            c.put(&[b'k', i], &entry(1500, i)).unwrap();
        }
        // Use k0 so that k1 is now the oldest.
        assert!(c.get(b"k\x00").unwrap().is_some());
        for i in 5..8u8 {
            c.put(&[b'k', i], &entry(1500, i)).unwrap();
        }
        assert!(c.used_bytes() <= 30_000);
        assert!(c.get(b"k\x00").unwrap().is_some(), "recently used entry kept");
        assert!(c.get(b"k\x01").unwrap().is_none(), "least recently used entry evicted");
        assert!(c.get(b"k\x07").unwrap().is_some(), "newest entry kept");
        assert!(c.stats.evictions.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn reads_move_entries_in_the_lru_order_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::open(dir.path(), 64 << 20).unwrap();
        c.put(b"k0", &entry(100, 0)).unwrap();
        c.put(b"k1", &entry(100, 1)).unwrap();
        assert!(c.get(b"k0").unwrap().is_some());
        let oldest = |c: &DiskCache| c.index.oldest().unwrap().unwrap().0;
        assert_eq!(oldest(&c), b"k0", "the read is pending, not yet a transaction");
        c.flush().unwrap();
        assert_eq!(oldest(&c), b"k1", "flushed: the read entry is the youngest");
        // A write after a read wins over the read's (older) number.
        assert!(c.get(b"k1").unwrap().is_some());
        c.put(b"k0", &entry(100, 2)).unwrap();
        c.put(b"k1", &entry(100, 3)).unwrap();
        c.flush().unwrap();
        assert_eq!(oldest(&c), b"k0");
        for i in 0..PENDING_TOUCHES as u32 {
            c.put(&i.to_be_bytes(), &entry(10, 0)).unwrap();
        }
        for i in 0..PENDING_TOUCHES as u32 {
            assert!(c.get(&i.to_be_bytes()).unwrap().is_some());
        }
        assert!(c.touched.locked().is_empty(), "applied once PENDING_TOUCHES were read");
        assert_eq!(oldest(&c), b"k0");
    }

    #[test]
    fn the_entry_counter_agrees_with_the_index() {
        let dir = tempfile::tempdir().unwrap();
        // 24 blocks of 4 KiB: 28 distinct keys evict, 40 puts replace.
        let c = DiskCache::open(dir.path(), 100_000).unwrap();
        let agree = |c: &DiskCache| assert_eq!(c.len(), c.index.rows());
        for i in 0..40u8 {
            c.put(&[b'k', i % 28], &entry(100 + usize::from(i), i)).unwrap();
            agree(&c);
        }
        assert!(c.stats.evictions.load(Ordering::Relaxed) > 0);
        c.put_many(&[(b"a", &entry(10, 1)), (b"b", &entry(10, 2)), (b"a", &entry(11, 3))]).unwrap();
        agree(&c);
        c.remove(b"a").unwrap();
        c.remove(b"a").unwrap();
        c.remove_prefix(b"k").unwrap();
        agree(&c);
        assert_eq!(c.len(), 1);
        c.flush().unwrap();
        drop(c);
        let c = reopen(dir.path());
        agree(&c);
    }

    #[test]
    fn remove_prefix_drops_only_that_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
        for k in ["p/a/0/png", "p/a/1/jpeg", "p/ab/0/png", "p/b/0/png"] {
            c.put(k.as_bytes(), &entry(100, 1)).unwrap();
        }
        let (n, bytes) = c.remove_prefix(b"p/a/").unwrap();
        assert_eq!(n, 2);
        assert!(bytes > 200);
        assert_eq!(c.len(), 2);
        assert_eq!(c.remove_prefix(b"p/a/").unwrap(), (0, 0), "a second purge is a no-op");
    }

    #[test]
    fn overwrite_accounts_size_once() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
        c.put(b"k", &entry(500, 1)).unwrap();
        let once = c.used_bytes();
        c.put(b"k", &entry(500, 2)).unwrap();
        assert_eq!(c.used_bytes(), once);
        assert_eq!(c.len(), 1);
    }
}

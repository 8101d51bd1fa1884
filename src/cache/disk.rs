//! Disk tier: checksummed entries in files, indexed by sled, bounded by bytes with
//! least-recently-used eviction.
//!
//! Bodies: `bodies/xx/<blake3(key)>`, each an encoded [`Entry`] (checksum included), written to a
//! temporary name and renamed into place, so a file is whole or absent. sled trees: `meta`
//! key → (seq, size), `lru` seq‖key → (), `state` for small durable numbers. A body is written
//! before its index row and removed after it; a crash in between leaves an orphan file (swept by
//! [`DiskCache::verify_all`]) or a row without a body (dropped on first read). Bodies stay out of
//! sled because sled keeps every page it writes in memory until it is read again: with bodies
//! inside, its memory grew with the size of the tier whatever `cache_capacity` said.
//! All methods block: call them from `spawn_blocking` or a thread of their own.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{CacheError, Entry};

/// Filesystems give a file whole blocks (4 KiB on ext4, XFS and tmpfs): a 3 KiB thumbnail takes
/// 4 KiB of disk, and `cache.disk_bytes` bounds what the tier takes, not what its bodies hold.
const BLOCK: u64 = 4096;
/// Evict down to this share of capacity, so eviction runs in batches, not per insert.
const LOW_WATERMARK: f64 = 0.9;
/// sled's in-memory page cache when not configured (sled's own default is 1 GiB).
pub const DEFAULT_PAGE_CACHE_BYTES: u64 = 16 << 20;

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
    db: sled::Db,
    bodies: PathBuf,
    meta: sled::Tree,
    lru: sled::Tree,
    state: sled::Tree,
    used: AtomicU64,
    /// Index rows, kept here: counting sled's rows walks the whole tree (every `/metrics` scrape).
    entries: AtomicU64,
    capacity: u64,
    evicting: Mutex<()>,
    pub stats: DiskStats,
}

fn meta_value(seq: u64, size: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&seq.to_be_bytes());
    v[8..].copy_from_slice(&size.to_be_bytes());
    v
}

fn parse_meta(v: &[u8]) -> Option<(u64, u64)> {
    let seq = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let size = u64::from_be_bytes(v.get(8..16)?.try_into().ok()?);
    Some((seq, size))
}

fn lru_key(seq: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&seq.to_be_bytes());
    k.extend_from_slice(key);
    k
}

type TxResult<T> = Result<T, TransactionError<()>>;

impl DiskCache {
    /// Open the cache folder; if sled cannot read it, move it aside and start empty.
    pub fn open(dir: &Path, capacity: u64) -> Result<Self, CacheError> {
        Self::open_with_page_cache(dir, capacity, DEFAULT_PAGE_CACHE_BYTES)
    }

    /// As `open`, with sled keeping at most about `page_cache` bytes of pages in memory.
    pub fn open_with_page_cache(dir: &Path, capacity: u64, page_cache: u64) -> Result<Self, CacheError> {
        match Self::try_open(dir, capacity, page_cache) {
            Ok(c) => Ok(c),
            Err(CacheError::Open { why, .. }) if why.contains("lock") => Err(CacheError::Open {
                path: dir.display().to_string(),
                why: format!("in use by another process ({why})"),
            }),
            Err(e) => {
                let aside = aside_path(dir);
                tracing::error!(
                    error = %e,
                    moved_to = %aside.display(),
                    "disk cache cannot be opened; moving it aside and starting empty"
                );
                std::fs::rename(dir, &aside).map_err(|re| CacheError::Open {
                    path: dir.display().to_string(),
                    why: format!("cannot open ({e}) nor move aside ({re})"),
                })?;
                Self::try_open(dir, capacity, page_cache)
            }
        }
    }

    fn try_open(dir: &Path, capacity: u64, page_cache: u64) -> Result<Self, CacheError> {
        let open_err = |why: String| CacheError::Open { path: dir.display().to_string(), why };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let cfg = sled::Config::new().path(dir).flush_every_ms(Some(200)).cache_capacity(page_cache);
        // sled may panic rather than err on some damaged files; the cache is disposable either way.
        let db = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cfg.open()))
            .map_err(|_| open_err("sled panicked while opening".into()))?
            .map_err(|e| open_err(e.to_string()))?;
        // Bodies lived in this tree before they moved to files; its rows' bodies are gone.
        db.drop_tree("entries")?;
        let bodies = dir.join("bodies");
        // All 256 shards up front: no directory work on the write path.
        for shard in 0..=255u8 {
            std::fs::create_dir_all(bodies.join(format!("{shard:02x}")))
                .map_err(|e| open_err(format!("bodies folder: {e}")))?;
        }
        let meta = db.open_tree("meta")?;
        let lru = db.open_tree("lru")?;
        let state = db.open_tree("state")?;
        let (mut used, mut entries) = (0u64, 0u64);
        for item in meta.iter() {
            let (_, v) = item?;
            used += parse_meta(&v).map(|(_, size)| size).unwrap_or(0);
            entries += 1;
        }
        Ok(Self {
            db,
            bodies,
            meta,
            lru,
            state,
            used: AtomicU64::new(used),
            entries: AtomicU64::new(entries),
            capacity,
            evicting: Mutex::new(()),
            stats: DiskStats::default(),
        })
    }

    /// Where the body of `key` lives.
    fn body_path(&self, key: &[u8]) -> PathBuf {
        let name = blake3::hash(key).to_hex();
        self.bodies.join(&name[..2]).join(&name[2..])
    }

    /// Read and verify an entry. A damaged or missing body is removed, counted, and reported as absent.
    pub fn get(&self, key: &[u8]) -> Result<Option<Entry>, CacheError> {
        if !self.meta.contains_key(key)? {
            return Ok(None);
        }
        let raw = match std::fs::read(self.body_path(key)) {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The index outlived its body (a crash between the two): forget the row.
                self.remove(key)?;
                return Ok(None);
            }
            Err(e) => return Err(CacheError::Io(e.to_string())),
        };
        match Entry::decode(&raw) {
            Ok(entry) => {
                self.touch(key)?;
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
        Ok(self.meta.contains_key(key)?)
    }

    /// Verify every entry's checksum (run once after start, off the request path), and delete
    /// bodies no row points to. Damaged entries are removed and counted. Returns (good, damaged).
    pub fn verify_all(&self) -> Result<(u64, u64), CacheError> {
        let (mut good, mut bad) = (0u64, 0u64);
        // Body names (32 bytes each), not paths: this set holds one item per entry of the tier.
        let mut known = HashSet::new();
        for item in self.meta.iter() {
            let (key, _) = item?;
            if std::fs::read(self.body_path(&key)).ok().is_some_and(|raw| Entry::decode(&raw).is_ok()) {
                good += 1;
                self.stats.verified.fetch_add(1, Ordering::Relaxed);
                known.insert(blake3::hash(&key));
            } else {
                bad += 1;
                self.stats.checksum_failures.fetch_add(1, Ordering::Relaxed);
                self.remove(&key)?;
            }
        }
        self.sweep_orphans(&known);
        Ok((good, bad))
    }

    /// Delete body files that no index row points to (and temporary files of interrupted writes).
    fn sweep_orphans(&self, known: &HashSet<blake3::Hash>) {
        let Ok(shards) = std::fs::read_dir(&self.bodies) else { return };
        for shard in shards.flatten() {
            let Ok(files) = std::fs::read_dir(shard.path()) else { continue };
            for file in files.flatten() {
                // `xx/<rest>` spells the body's name in hex; a temporary file's name does not parse.
                let name =
                    format!("{}{}", shard.file_name().to_string_lossy(), file.file_name().to_string_lossy());
                if !blake3::Hash::from_hex(name).is_ok_and(|h| known.contains(&h)) {
                    let _ = std::fs::remove_file(file.path());
                }
            }
        }
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
            let size = self.write_body(key, &entry.encode())? + key.len() as u64;
            rows.push((*key, size, self.db.generate_id()?));
        }
        let old: TxResult<(u64, u64)> = (&self.meta, &self.lru).transaction(|(m, l)| {
            let (mut replaced, mut replaced_bytes) = (0, 0);
            for (key, size, seq) in &rows {
                if let Some((old_seq, old_size)) = m.get(key)?.and_then(|v| parse_meta(&v)) {
                    l.remove(lru_key(old_seq, key))?;
                    replaced += 1;
                    replaced_bytes += old_size;
                }
                m.insert(*key, &meta_value(*seq, *size)[..])?;
                l.insert(lru_key(*seq, key), &[][..])?;
            }
            Ok::<_, ConflictableTransactionError<()>>((replaced, replaced_bytes))
        });
        let (replaced, replaced_bytes) = old.map_err(tx_err)?;
        self.entries.fetch_add(rows.len() as u64 - replaced, Ordering::Relaxed);
        self.used.fetch_add(rows.iter().map(|r| r.1).sum(), Ordering::Relaxed);
        sub_saturating(&self.used, replaced_bytes);
        if self.used.load(Ordering::Relaxed) > self.capacity {
            self.evict()?;
        }
        Ok(())
    }

    /// Write a body whole under a temporary name, then rename it into place. Returns the disk
    /// space it takes (whole blocks).
    fn write_body(&self, key: &[u8], raw: &[u8]) -> Result<u64, CacheError> {
        let io = |e: std::io::Error| CacheError::Io(e.to_string());
        let path = self.body_path(key);
        let tmp = path.with_extension(format!("tmp{}", self.db.generate_id()?));
        let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(raw));
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        Ok((raw.len() as u64).div_ceil(BLOCK) * BLOCK)
    }

    /// Remove one entry (row, then body); returns the bytes freed.
    pub fn remove(&self, key: &[u8]) -> Result<u64, CacheError> {
        let freed: TxResult<Option<u64>> = (&self.meta, &self.lru).transaction(|(m, l)| {
            let row = m.remove(key)?;
            let old = row.as_ref().and_then(|v| parse_meta(v));
            if let Some((seq, _)) = old {
                l.remove(lru_key(seq, key))?;
            }
            Ok::<_, ConflictableTransactionError<()>>(row.map(|_| old.map(|(_, s)| s).unwrap_or(0)))
        });
        // `None`: there was no row (a body may still be there).
        let freed = freed.map_err(tx_err)?;
        if let Some(bytes) = freed {
            sub_saturating(&self.entries, 1);
            sub_saturating(&self.used, bytes);
        }
        self.remove_body(key)?;
        Ok(freed.unwrap_or(0))
    }

    fn remove_body(&self, key: &[u8]) -> Result<(), CacheError> {
        match std::fs::remove_file(self.body_path(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CacheError::Io(e.to_string())),
        }
    }

    /// A small durable number kept beside the cache (e.g. the /changes position).
    pub fn state_get(&self, name: &str) -> Result<Option<u64>, CacheError> {
        Ok(self.state.get(name)?.and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes)))
    }

    pub fn state_put(&self, name: &str, value: u64) -> Result<(), CacheError> {
        self.state.insert(name, &value.to_be_bytes())?;
        self.state.flush()?;
        Ok(())
    }

    /// Remove every entry whose key starts with `prefix`; returns (entries, bytes) freed.
    pub fn remove_prefix(&self, prefix: &[u8]) -> Result<(u64, u64), CacheError> {
        let keys: Vec<sled::IVec> = self.meta.scan_prefix(prefix).keys().collect::<Result<_, _>>()?;
        let mut freed = (0, 0);
        for key in keys {
            let bytes = self.remove(&key)?;
            freed.0 += 1;
            freed.1 += bytes;
        }
        Ok(freed)
    }

    /// Mark an entry as just used (moves it to the young end of the LRU order).
    fn touch(&self, key: &[u8]) -> Result<(), CacheError> {
        let seq = self.db.generate_id()?;
        let r: TxResult<()> = (&self.meta, &self.lru).transaction(|(m, l)| {
            if let Some((old_seq, size)) = m.get(key)?.and_then(|v| parse_meta(&v)) {
                l.remove(lru_key(old_seq, key))?;
                l.insert(lru_key(seq, key), &[][..])?;
                m.insert(key, &meta_value(seq, size)[..])?;
            }
            Ok::<_, ConflictableTransactionError<()>>(())
        });
        r.map_err(tx_err)
    }

    fn evict(&self) -> Result<(), CacheError> {
        // One evictor at a time; others carry on, the running one catches up with them.
        let Ok(_guard) = self.evicting.try_lock() else {
            return Ok(());
        };
        let target = (self.capacity as f64 * LOW_WATERMARK) as u64;
        while self.used.load(Ordering::Relaxed) > target {
            let Some((lk, _)) = self.lru.first()? else {
                break;
            };
            let key = &lk[8..];
            self.remove(key)?;
            // A stale lru row (no meta) would otherwise loop forever.
            self.lru.remove(&lk)?;
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
        self.db.flush()?;
        Ok(())
    }

    /// Corrupt an entry's stored bytes in place (tests of checksum handling).
    #[doc(hidden)]
    pub fn corrupt_for_test(&self, key: &[u8]) -> Result<bool, CacheError> {
        let path = self.body_path(key);
        let Ok(mut bad) = std::fs::read(&path) else {
            return Ok(false);
        };
        let mid = bad.len() / 2;
        bad[mid] ^= 0xFF;
        std::fs::write(&path, bad).map_err(|e| CacheError::Io(e.to_string()))?;
        Ok(true)
    }
}

fn tx_err(e: TransactionError<()>) -> CacheError {
    match e {
        TransactionError::Storage(s) => CacheError::Sled(s),
        TransactionError::Abort(()) => CacheError::Join("transaction aborted".into()),
    }
}

/// `counter -= n`, stopping at 0.
fn sub_saturating(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n)));
}

fn aside_path(dir: &Path) -> PathBuf {
    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "cache".into());
    dir.with_file_name(format!("{name}.broken-{stamp}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entry(n: usize, fill: u8) -> Entry {
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
    fn the_entry_counter_agrees_with_the_index() {
        let dir = tempfile::tempdir().unwrap();
        // 24 blocks of 4 KiB: 28 distinct keys evict, 40 puts replace.
        let c = DiskCache::open(dir.path(), 100_000).unwrap();
        let agree = |c: &DiskCache| assert_eq!(c.len(), c.meta.len());
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
    fn verify_all_drops_damaged_entries_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
            for i in 0..10u8 {
                c.put(&[b'k', i], &entry(100, i)).unwrap();
            }
            assert!(c.corrupt_for_test(&[b'k', 3]).unwrap());
            c.flush().unwrap();
        }
        let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(c.verify_all().unwrap(), (9, 1));
        assert_eq!(c.len(), 9);
        assert!(c.get(&[b'k', 3]).unwrap().is_none());
        assert_eq!(c.stats.checksum_failures.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_crash_between_body_and_row_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let c = DiskCache::open(dir.path(), 1 << 20).unwrap();
        c.put(b"kept", &entry(100, 1)).unwrap();
        // Body written, row never committed; and a temporary file of an interrupted write.
        let orphan = c.write_body(b"orphan", &entry(100, 2).encode()).unwrap();
        assert!(orphan > 100);
        let tmp = c.body_path(b"other").with_extension("tmp7");
        std::fs::create_dir_all(tmp.parent().unwrap()).unwrap();
        std::fs::write(&tmp, b"half").unwrap();
        assert!(c.get(b"orphan").unwrap().is_none(), "a body without a row is not an entry");
        assert_eq!(c.verify_all().unwrap(), (1, 0));
        assert!(!c.body_path(b"orphan").exists() && !tmp.exists(), "orphans swept");
        assert!(c.get(b"kept").unwrap().is_some());
        // Row committed, body gone: dropped on first read.
        std::fs::remove_file(c.body_path(b"kept")).unwrap();
        assert!(c.get(b"kept").unwrap().is_none());
        assert!(c.is_empty());
        assert_eq!(c.used_bytes(), 0);
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

    #[test]
    fn unreadable_folder_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache");
        std::fs::create_dir_all(&path).unwrap();
        // Garbage where sled expects its files.
        std::fs::write(path.join("conf"), b"not a sled config at all").unwrap();
        std::fs::write(path.join("db"), vec![0xAB; 4096]).unwrap();
        let c = DiskCache::open(&path, 1 << 20).unwrap();
        c.put(b"k", &entry(10, 1)).unwrap();
        let moved: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("cache.broken-"))
            .collect();
        assert_eq!(moved.len(), 1);
    }

    #[test]
    fn folder_in_use_is_refused_not_moved() {
        let dir = tempfile::tempdir().unwrap();
        let first = DiskCache::open(dir.path(), 1 << 20).unwrap();
        first.put(b"k", &entry(10, 1)).unwrap();
        let err = DiskCache::open(dir.path(), 1 << 20).err().expect("second open must fail");
        assert!(err.to_string().contains("in use"), "{err}");
        assert!(first.get(b"k").unwrap().is_some());
    }
}

//! Start-up recovery of the disk tier: an unreadable folder is moved aside, every entry's checksum
//! is verified once, and bodies a crash left without an index row are swept.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::super::{CacheError, Entry};
use super::DiskCache;

impl DiskCache {
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

    /// Verify every entry's checksum (run once after start, off the request path), and delete
    /// bodies no row points to. Damaged entries are removed and counted. Returns (good, damaged).
    pub fn verify_all(&self) -> Result<(u64, u64), CacheError> {
        let (mut good, mut bad) = (0u64, 0u64);
        // Body names (32 bytes each), not paths: this set holds one item per entry of the tier.
        let mut known = HashSet::new();
        for key in self.index.keys() {
            let key = key?;
            if self.bodies.read(&key).ok().flatten().is_some_and(|raw| Entry::decode(raw.into()).is_ok()) {
                good += 1;
                self.stats.verified.fetch_add(1, Ordering::Relaxed);
                known.insert(blake3::hash(&key));
            } else {
                bad += 1;
                self.stats.checksum_failures.fetch_add(1, Ordering::Relaxed);
                self.remove(&key)?;
            }
        }
        self.bodies.sweep(&known);
        Ok((good, bad))
    }
}

/// `<dir>.broken-<unix seconds>` beside `dir`.
fn aside_path(dir: &Path) -> PathBuf {
    let stamp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "cache".into());
    dir.with_file_name(format!("{name}.broken-{stamp}"))
}

#[cfg(test)]
mod tests {
    use super::super::tests::entry;
    use super::*;

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
        let orphan = c.bodies.write(b"orphan", &entry(100, 2).encode(), 1).unwrap();
        assert!(orphan > 100);
        let tmp = c.bodies.path(b"other").with_extension("tmp7");
        std::fs::create_dir_all(tmp.parent().unwrap()).unwrap();
        std::fs::write(&tmp, b"half").unwrap();
        assert!(c.get(b"orphan").unwrap().is_none(), "a body without a row is not an entry");
        assert_eq!(c.verify_all().unwrap(), (1, 0));
        assert!(!c.bodies.path(b"orphan").exists() && !tmp.exists(), "orphans swept");
        assert!(c.get(b"kept").unwrap().is_some());
        // Row committed, body gone: dropped on first read.
        std::fs::remove_file(c.bodies.path(b"kept")).unwrap();
        assert!(c.get(b"kept").unwrap().is_none());
        assert!(c.is_empty());
        assert_eq!(c.used_bytes(), 0);
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

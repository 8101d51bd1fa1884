//! Body files of the disk tier: one encoded entry per file, `bodies/xx/<blake3(key)>`, whole or absent.
//!
//! Bodies stay out of sled because sled keeps every page it writes in memory until it is read
//! again: with bodies inside, its memory grew with the size of the tier whatever `cache_capacity`
//! said.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::super::CacheError;

/// Filesystems give a file whole blocks (4 KiB on ext4, XFS and tmpfs): a 3 KiB thumbnail takes
/// 4 KiB of disk, and `cache.disk_bytes` bounds what the tier takes, not what its bodies hold.
const BLOCK: u64 = 4096;

fn io(e: std::io::Error) -> CacheError {
    CacheError::Io(e.to_string())
}

pub(super) struct Bodies {
    root: PathBuf,
}

impl Bodies {
    /// The `bodies` folder under `dir`, all 256 shards made up front: no directory work on the
    /// write path.
    pub(super) fn open(dir: &Path) -> std::io::Result<Self> {
        let root = dir.join("bodies");
        for shard in 0..=255u8 {
            std::fs::create_dir_all(root.join(format!("{shard:02x}")))?;
        }
        Ok(Self { root })
    }

    /// Where the body of `key` lives.
    pub(super) fn path(&self, key: &[u8]) -> PathBuf {
        let name = blake3::hash(key).to_hex();
        self.root.join(&name[..2]).join(&name[2..])
    }

    /// The stored bytes of `key`, `None` when there is no file.
    pub(super) fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CacheError> {
        match std::fs::read(self.path(key)) {
            Ok(raw) => Ok(Some(raw)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Write a body whole under a temporary name (`tmp` makes it unique), then rename it into
    /// place. Returns the disk space it takes (whole blocks).
    pub(super) fn write(&self, key: &[u8], raw: &[u8], tmp: u64) -> Result<u64, CacheError> {
        let path = self.path(key);
        let tmp = path.with_extension(format!("tmp{tmp}"));
        let written = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(raw));
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        Ok((raw.len() as u64).div_ceil(BLOCK) * BLOCK)
    }

    /// Remove the body of `key`; absent already is fine.
    pub(super) fn remove(&self, key: &[u8]) -> Result<(), CacheError> {
        match std::fs::remove_file(self.path(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    /// Delete every file whose name is not in `known` (body names, i.e. `blake3(key)`): bodies no
    /// index row points to, and temporary files of interrupted writes.
    pub(super) fn sweep(&self, known: &HashSet<blake3::Hash>) {
        let Ok(shards) = std::fs::read_dir(&self.root) else { return };
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

    /// Flip a byte in the middle of a stored body; `false` when there is none.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) fn corrupt(&self, key: &[u8]) -> Result<bool, CacheError> {
        let path = self.path(key);
        let Ok(mut bad) = std::fs::read(&path) else {
            return Ok(false);
        };
        let mid = bad.len() / 2;
        bad[mid] ^= 0xFF;
        std::fs::write(&path, bad).map_err(io)?;
        Ok(true)
    }
}

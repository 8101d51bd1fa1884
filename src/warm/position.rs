//! Where the /changes follower stopped: one small file in `cache.dir`, replaced atomically.
//!
//! The file holds the last sequence number applied, in decimal. It is written to a temporary
//! name, synced, and renamed over the old one, so a crash leaves the old number or the new one.
//! A missing or unreadable file means "first start" (the follower then begins at Orthanc's
//! current position, never at its whole history). All methods block.

use std::io::Write as _;
use std::path::{Path, PathBuf};

const FILE: &str = "changes-position";

#[derive(Debug, Clone)]
pub struct Position {
    path: PathBuf,
}

impl Position {
    /// The position kept in `dir` (the cache folder).
    pub fn in_dir(dir: &Path) -> Self {
        Self { path: dir.join(FILE) }
    }

    /// The stored sequence number; `None` on a first start (or a file that is not one).
    pub fn load(&self) -> Option<u64> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(error = %e, path = %self.path.display(), "changes position unreadable: first start");
                return None;
            }
        };
        let seq = text.trim().parse().ok();
        if seq.is_none() {
            tracing::warn!(path = %self.path.display(), "changes position garbled: first start");
        }
        seq
    }

    /// Replace the stored number with `seq`, durably.
    /// Store `seq` unless the stored position is already past it (another edge's follower told
    /// us how far it got; whoever follows next resumes at the furthest).
    pub fn raise(&self, seq: u64) -> std::io::Result<()> {
        if self.load().is_some_and(|held| held >= seq) {
            return Ok(());
        }
        self.store(seq)
    }

    pub fn store(&self, seq: u64) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let written = std::fs::File::create(&tmp).and_then(|mut f| {
            writeln!(f, "{seq}")?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &self.path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        // The rename itself is durable once the folder is synced.
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_reloads_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = Position::in_dir(dir.path());
        assert_eq!(p.load(), None, "first start");
        p.store(41).unwrap();
        p.store(42).unwrap();
        assert_eq!(Position::in_dir(dir.path()).load(), Some(42));
        assert!(!dir.path().join("changes-position.tmp").exists());
    }

    #[test]
    fn a_garbled_file_is_a_first_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"\x00\xffnot a number").unwrap();
        let p = Position::in_dir(dir.path());
        assert_eq!(p.load(), None);
        p.store(7).unwrap();
        assert_eq!(p.load(), Some(7));
    }
}

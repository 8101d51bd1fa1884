//! The disk tier's sled index: `meta` key → (seq, size) and `lru` seq‖key → (), changed together
//! in transactions; the sequence numbers order entries from least to most recently used.

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::super::CacheError;

/// One row to write: key, bytes it takes, and its place in the LRU order.
pub(super) type Row<'a> = (&'a [u8], u64, u64);

type TxResult<T> = Result<T, TransactionError<()>>;

pub(super) struct Index {
    db: sled::Db,
    meta: sled::Tree,
    lru: sled::Tree,
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

fn tx_err(e: TransactionError<()>) -> CacheError {
    match e {
        TransactionError::Storage(s) => CacheError::Sled(s),
        TransactionError::Abort(()) => CacheError::Join("transaction aborted".into()),
    }
}

impl Index {
    pub(super) fn open(db: sled::Db) -> Result<Self, CacheError> {
        // Trees of earlier versions: `entries` held the bodies before they moved to files (their
        // rows' bodies are gone), `state` the /changes position before it got a file of its own.
        db.drop_tree("entries")?;
        db.drop_tree("state")?;
        let meta = db.open_tree("meta")?;
        let lru = db.open_tree("lru")?;
        Ok(Self { db, meta, lru })
    }

    /// A new number, higher than every one before (LRU order, unique temporary names).
    pub(super) fn next_seq(&self) -> Result<u64, CacheError> {
        Ok(self.db.generate_id()?)
    }

    /// (bytes, rows) over the whole index: a tree walk, for start-up only.
    pub(super) fn totals(&self) -> Result<(u64, u64), CacheError> {
        let (mut used, mut rows) = (0u64, 0u64);
        for item in self.meta.iter() {
            let (_, v) = item?;
            used += parse_meta(&v).map(|(_, size)| size).unwrap_or(0);
            rows += 1;
        }
        Ok((used, rows))
    }

    pub(super) fn contains(&self, key: &[u8]) -> Result<bool, CacheError> {
        Ok(self.meta.contains_key(key)?)
    }

    /// Every key, in key order.
    pub(super) fn keys(&self) -> impl Iterator<Item = Result<sled::IVec, CacheError>> {
        self.meta.iter().keys().map(|k| k.map_err(CacheError::from))
    }

    /// The keys starting with `prefix`.
    pub(super) fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<sled::IVec>, CacheError> {
        Ok(self.meta.scan_prefix(prefix).keys().collect::<Result<_, _>>()?)
    }

    /// Write `rows` in one transaction; returns (rows replaced, bytes those took).
    pub(super) fn insert(&self, rows: &[Row<'_>]) -> Result<(u64, u64), CacheError> {
        let old: TxResult<(u64, u64)> = (&self.meta, &self.lru).transaction(|(m, l)| {
            let (mut replaced, mut replaced_bytes) = (0, 0);
            for (key, size, seq) in rows {
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
        old.map_err(tx_err)
    }

    /// Remove the row of `key`; `Some(bytes it took)`, or `None` when there was no row.
    pub(super) fn remove(&self, key: &[u8]) -> Result<Option<u64>, CacheError> {
        let freed: TxResult<Option<u64>> = (&self.meta, &self.lru).transaction(|(m, l)| {
            let row = m.remove(key)?;
            let old = row.as_ref().and_then(|v| parse_meta(v));
            if let Some((seq, _)) = old {
                l.remove(lru_key(seq, key))?;
            }
            Ok::<_, ConflictableTransactionError<()>>(row.map(|_| old.map(|(_, s)| s).unwrap_or(0)))
        });
        freed.map_err(tx_err)
    }

    /// Move each key to the young end of the LRU order, as its number `seq` (in one
    /// transaction; a key written since, with a higher number, stays where it is).
    pub(super) fn touch(&self, touched: &[(Vec<u8>, u64)]) -> Result<(), CacheError> {
        let r: TxResult<()> = (&self.meta, &self.lru).transaction(|(m, l)| {
            for (key, seq) in touched {
                if let Some((old_seq, size)) = m.get(key)?.and_then(|v| parse_meta(&v)) {
                    if old_seq < *seq {
                        l.remove(lru_key(old_seq, key))?;
                        l.insert(lru_key(*seq, key), &[][..])?;
                        m.insert(&key[..], &meta_value(*seq, size)[..])?;
                    }
                }
            }
            Ok::<_, ConflictableTransactionError<()>>(())
        });
        r.map_err(tx_err)
    }

    /// The least recently used key, with its LRU row as the handle [`Index::forget_lru`] takes.
    pub(super) fn oldest(&self) -> Result<Option<(Vec<u8>, sled::IVec)>, CacheError> {
        Ok(self.lru.first()?.map(|(lk, _)| (lk[8..].to_vec(), lk)))
    }

    /// Drop one LRU row whatever its key's row says (a stale one would stall eviction).
    pub(super) fn forget_lru(&self, lru_row: &sled::IVec) -> Result<(), CacheError> {
        self.lru.remove(lru_row)?;
        Ok(())
    }

    /// Rows in `meta`, counted by a tree walk (tests compare the tier's counter with it).
    #[cfg(test)]
    pub(super) fn rows(&self) -> usize {
        self.meta.len()
    }

    pub(super) fn flush(&self) -> Result<(), CacheError> {
        self.db.flush()?;
        Ok(())
    }
}

//! A cached image with its metadata, and its checksummed on-disk encoding.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes};

/// The format written: an XXH3-64 checksum, 8 bytes, big endian.
const MAGIC: &[u8; 4] = b"OEC2";
const SUM_LEN: usize = 8;
/// The format written before: a blake3 checksum, 32 bytes; still read, so an upgrade keeps the
/// disk tier. XXH3 checks a 48 KB entry in ~3 µs where blake3 took ~15 (a fifth of a disk hit);
/// both catch torn writes and bit rot, and neither stops someone who can write the cache dir.
const MAGIC_V1: &[u8; 4] = b"OEC1";
const SUM_LEN_V1: usize = 32;
/// Memory an entry costs besides its body; see [`Entry::weight`].
const PER_ENTRY_COST: usize = 640;

/// Bytes an allocation of `n` takes: size classes come four per power of two (jemalloc's, which
/// the edge uses), so a 4,097-byte body takes 5,120.
fn allocation_size(n: usize) -> usize {
    if n <= 16 {
        return 16;
    }
    let step = (1usize << (usize::BITS - 1 - (n - 1).leading_zeros())) / 4;
    let step = step.max(16);
    n.div_ceil(step) * step
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub content_type: String,
    /// Seconds since the Unix epoch when the image was made.
    pub created: u64,
    /// Strong entity tag, quotes included, derived from the bytes.
    pub etag: String,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    #[error("entry too short or truncated")]
    Truncated,
    #[error("unknown entry format")]
    BadMagic,
    #[error("checksum mismatch")]
    Checksum,
    #[error("metadata is not valid text")]
    BadText,
}

impl Entry {
    pub fn new(content_type: &str, body: Bytes) -> Self {
        let digest = blake3::hash(&body);
        let etag = format!("\"{}\"", &digest.to_hex()[..32]);
        let created = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Self { content_type: content_type.to_owned(), created, etag, body }
    }

    /// Is `tag` an ETag as [`Entry::new`] makes them (32 hex digits in quotes)?
    pub fn is_etag(tag: &str) -> bool {
        let b = tag.as_bytes();
        b.len() == 34
            && b[0] == b'"'
            && b[33] == b'"'
            && b[1..33].iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    }

    /// What holding this entry in the memory tier costs, for its weigher: the body as the
    /// allocator rounds it, plus the fixed cost of an entry (measured ~600 B: moka's node, the
    /// key, the shared `Entry`, its strings). Counting only body bytes let a tier of small
    /// thumbnails use ~20 % more memory than `cache.memory_bytes`.
    pub fn weight(&self) -> u32 {
        u32::try_from(allocation_size(self.body.len()) + PER_ENTRY_COST).unwrap_or(u32::MAX)
    }

    /// `MAGIC | created u64 | ct len u8 | ct | etag len u8 | etag | body len u32 | body | xxh3-64(all before)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = self.encode_unsummed(MAGIC, SUM_LEN);
        let sum = twox_hash::XxHash3_64::oneshot(&buf);
        buf.put_u64(sum);
        buf
    }

    /// Everything before the checksum, in a buffer with room for a `sum_len`-byte checksum.
    fn encode_unsummed(&self, magic: &[u8; 4], sum_len: usize) -> Vec<u8> {
        let ct = &self.content_type.as_bytes()[..self.content_type.len().min(255)];
        let etag = &self.etag.as_bytes()[..self.etag.len().min(255)];
        let mut buf = Vec::with_capacity(4 + 8 + 2 + ct.len() + etag.len() + 4 + self.body.len() + sum_len);
        buf.put_slice(magic);
        buf.put_u64(self.created);
        buf.put_u8(ct.len() as u8);
        buf.put_slice(ct);
        buf.put_u8(etag.len() as u8);
        buf.put_slice(etag);
        buf.put_u32(self.body.len() as u32);
        buf.put_slice(&self.body);
        buf
    }

    /// Decode and verify; anything short of a perfect match is an error, never a partial entry.
    /// The body is a view of `raw` (no copy: a 264 KB disk hit copied it once more here).
    pub fn decode(raw: Bytes) -> Result<Self, EntryError> {
        let sum_len = match raw.get(..4) {
            Some(m) if m == MAGIC => SUM_LEN,
            Some(m) if m == MAGIC_V1 => SUM_LEN_V1,
            Some(_) => return Err(EntryError::BadMagic),
            None => return Err(EntryError::Truncated),
        };
        if raw.len() < 4 + 8 + 1 + 1 + 4 + sum_len {
            return Err(EntryError::Truncated);
        }
        let (data, sum) = raw.split_at(raw.len() - sum_len);
        let sound = if sum_len == SUM_LEN {
            sum.try_into().ok().map(u64::from_be_bytes) == Some(twox_hash::XxHash3_64::oneshot(data))
        } else {
            blake3::hash(data).as_bytes()[..] == *sum
        };
        if !sound {
            return Err(EntryError::Checksum);
        }
        let mut r = Reader { data, pos: 4 };
        let created = u64::from_be_bytes(r.take(8)?.try_into().map_err(|_| EntryError::Truncated)?);
        let ct_len = r.take(1)?[0] as usize;
        let content_type = r.text(ct_len)?;
        let etag_len = r.take(1)?[0] as usize;
        let etag = r.text(etag_len)?;
        let body_len = u32::from_be_bytes(r.take(4)?.try_into().map_err(|_| EntryError::Truncated)?) as usize;
        let start = r.pos;
        r.take(body_len)?;
        if r.pos != data.len() {
            return Err(EntryError::Truncated);
        }
        let body = raw.slice(start..r.pos);
        Ok(Self { content_type, created, etag, body })
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EntryError> {
        let end = self.pos.checked_add(n).ok_or(EntryError::Truncated)?;
        let s = self.data.get(self.pos..end).ok_or(EntryError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn text(&mut self, n: usize) -> Result<String, EntryError> {
        std::str::from_utf8(self.take(n)?).map(str::to_owned).map_err(|_| EntryError::BadText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = Entry::new("image/png", Bytes::from_static(b"\x89PNG\r\n\x1a\nrest"));
        assert_eq!(Entry::decode(e.encode().into()).unwrap(), e);
        assert_eq!(e.etag.len(), 34);
        assert!(Entry::is_etag(&e.etag));
        for bad in ["", "\"\"", &e.etag[1..], &e.etag.to_uppercase(), &e.etag.replace('"', "'")] {
            assert!(!Entry::is_etag(bad), "{bad}");
        }
    }

    /// What the edge wrote before the XXH3 format (blake3 checksum).
    fn encode_v1(e: &Entry) -> Vec<u8> {
        let mut buf = e.encode_unsummed(MAGIC_V1, SUM_LEN_V1);
        let sum = blake3::hash(&buf);
        buf.put_slice(sum.as_bytes());
        buf
    }

    #[test]
    fn entries_of_the_blake3_format_are_still_read_and_checked() {
        let e = Entry::new("image/png", Bytes::from(vec![3u8; 5000]));
        let v1 = encode_v1(&e);
        assert_eq!(&v1[..4], b"OEC1");
        assert_eq!(v1.len(), e.encode().len() + SUM_LEN_V1 - SUM_LEN);
        assert_eq!(Entry::decode(v1.clone().into()).unwrap(), e);
        for i in [0, 4, 20, v1.len() / 2, v1.len() - 1] {
            let mut bad = v1.clone();
            bad[i] ^= 0x01;
            assert!(Entry::decode(bad.into()).is_err(), "flip at {i} not caught");
        }
        assert_eq!(
            Entry::decode(Bytes::from_static(b"OEC9xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")),
            Err(EntryError::BadMagic)
        );
        assert_eq!(Entry::decode(Bytes::from_static(b"OE")), Err(EntryError::Truncated));
    }

    #[test]
    fn every_single_byte_flip_is_caught() {
        let e = Entry::new("image/jpeg", Bytes::from(vec![7u8; 100]));
        let raw = e.encode();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x20;
            assert!(Entry::decode(bad.into()).is_err(), "flip at {i} not caught");
        }
        for n in 0..raw.len() {
            assert!(
                Entry::decode(Bytes::copy_from_slice(&raw[..n])).is_err(),
                "truncation to {n} not caught"
            );
        }
    }

    #[test]
    fn allocation_sizes_follow_size_classes() {
        for (n, size) in [(1, 16), (16, 16), (17, 32), (100, 112), (4096, 4096), (4097, 5120), (7000, 7168)] {
            assert_eq!(allocation_size(n), size, "{n}");
        }
        assert_eq!(allocation_size(8193), 10240);
        assert_eq!(allocation_size(3 << 20), 3 << 20);
    }

    #[test]
    fn etag_follows_bytes() {
        let a = Entry::new("image/png", Bytes::from_static(b"a"));
        let b = Entry::new("image/png", Bytes::from_static(b"b"));
        let a2 = Entry::new("image/png", Bytes::from_static(b"a"));
        assert_ne!(a.etag, b.etag);
        assert_eq!(a.etag, a2.etag);
    }
}

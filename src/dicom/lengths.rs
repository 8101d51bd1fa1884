//! A walk over a data set's element lengths before dicom-rs parses it: dicom-rs allocates the
//! length an element declares, so a small file declaring a 4 GB element costs seconds and
//! gigabytes. Every declared length must fit in the bytes that remain.

use super::DicomError;

/// How a data set is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Encoding {
    pub explicit_vr: bool,
    pub big_endian: bool,
}

const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);
const PIXEL_DATA: (u16, u16) = (0x7FE0, 0x0010);
/// Sequences nest this deep at most.
const MAX_DEPTH: u32 = 32;

fn lying() -> DicomError {
    DicomError::Corrupt("an element is longer than the file".into())
}

#[derive(Clone, Copy)]
struct Walker<'a> {
    data: &'a [u8],
    enc: Encoding,
}

impl Walker<'_> {
    fn u16_at(&self, at: usize) -> Option<u16> {
        let b = [*self.data.get(at)?, *self.data.get(at + 1)?];
        Some(if self.enc.big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b =
            [*self.data.get(at)?, *self.data.get(at + 1)?, *self.data.get(at + 2)?, *self.data.get(at + 3)?];
        Some(if self.enc.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }

    /// The element header at `at`: tag, declared length, where the value starts, and whether
    /// the VR is UN (whose sequence contents are implicit VR little endian).
    fn element(&self, at: usize) -> Result<((u16, u16), u32, usize, bool), DicomError> {
        let (tag, len, value) = self.header(at)?;
        let un = self.enc.explicit_vr && tag.0 != 0xFFFE && self.data.get(at + 4..at + 6) == Some(b"UN");
        Ok((tag, len, value, un))
    }

    fn header(&self, at: usize) -> Result<((u16, u16), u32, usize), DicomError> {
        let tag = (self.u16_at(at).ok_or_else(lying)?, self.u16_at(at + 2).ok_or_else(lying)?);
        if tag.0 == 0xFFFE || !self.enc.explicit_vr {
            return Ok((tag, self.u32_at(at + 4).ok_or_else(lying)?, at + 8));
        }
        let vr = self.data.get(at + 4..at + 6).ok_or_else(lying)?;
        // VRs with a 16-bit length; any other (unknown ones too, as dicom-rs reads them) has 2
        // reserved bytes and a 32-bit length.
        const SHORT: [&[u8]; 21] = [
            b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN", b"SH",
            b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
        ];
        if SHORT.contains(&vr) {
            Ok((tag, u32::from(self.u16_at(at + 6).ok_or_else(lying)?), at + 8))
        } else {
            Ok((tag, self.u32_at(at + 8).ok_or_else(lying)?, at + 12))
        }
    }

    /// Walk elements from `at` to `end` (or to a delimiter when `end` is `None`); returns where
    /// the walk stopped (after the delimiter).
    fn elements(&self, mut at: usize, end: Option<usize>, depth: u32) -> Result<usize, DicomError> {
        if depth > MAX_DEPTH {
            return Err(DicomError::Corrupt("sequences nested too deep".into()));
        }
        let limit = end.unwrap_or(self.data.len());
        while at < limit {
            let (tag, len, value, un) = self.element(at)?;
            if tag == ITEM_END || tag == SEQUENCE_END {
                return Ok(at + 8);
            }
            let inner = if un {
                Walker { data: self.data, enc: Encoding { explicit_vr: false, big_endian: false } }
            } else {
                *self
            };
            at = if len == UNDEFINED {
                if tag == ITEM {
                    self.elements(value, None, depth + 1)?
                } else {
                    inner.items(value, tag != PIXEL_DATA, depth + 1)?
                }
            } else {
                let next = value.checked_add(len as usize).filter(|n| *n <= limit).ok_or_else(lying)?;
                // A defined-length sequence or item: its contents must fit too.
                if tag == ITEM {
                    self.elements(value, Some(next), depth + 1)?;
                } else if inner.starts_item(value, next) {
                    inner.defined_items(value, next, depth + 1)?;
                }
                next
            };
        }
        Ok(at)
    }

    fn starts_item(&self, at: usize, next: usize) -> bool {
        next >= at + 8 && (self.u16_at(at), self.u16_at(at + 2)) == (Some(ITEM.0), Some(ITEM.1))
    }

    /// The items of a defined-length sequence, from `at` to `end`.
    fn defined_items(&self, mut at: usize, end: usize, depth: u32) -> Result<(), DicomError> {
        while at < end {
            let (tag, len, _) = self.header(at)?;
            if tag != ITEM {
                return Err(DicomError::Corrupt("a sequence holds something other than items".into()));
            }
            at = if len == UNDEFINED {
                self.elements(at + 8, None, depth)?
            } else {
                let next = (at + 8).checked_add(len as usize).filter(|n| *n <= end).ok_or_else(lying)?;
                self.elements(at + 8, Some(next), depth)?;
                next
            };
        }
        Ok(())
    }

    /// Items (data sets, or fragments of pixel data) of an undefined-length sequence, up to its
    /// delimiter.
    fn items(&self, mut at: usize, datasets: bool, depth: u32) -> Result<usize, DicomError> {
        loop {
            let (tag, len, _) = self.header(at)?;
            match tag {
                SEQUENCE_END => return Ok(at + 8),
                ITEM if len == UNDEFINED => at = self.elements(at + 8, None, depth)?,
                ITEM => {
                    let next = (at + 8)
                        .checked_add(len as usize)
                        .filter(|n| *n <= self.data.len())
                        .ok_or_else(lying)?;
                    if datasets {
                        self.elements(at + 8, Some(next), depth)?;
                    }
                    at = next;
                }
                _ => return Err(DicomError::Corrupt("a sequence holds something other than items".into())),
            }
        }
    }
}

/// Check the file meta group at the start of `data` (explicit VR little endian, group 0002,
/// read before the transfer syntax is known): each element must fit.
pub(super) fn check_meta(data: &[u8]) -> Result<(), DicomError> {
    let end = data
        .chunks_exact(2)
        .next()
        .filter(|g| g == &[0x02, 0x00])
        .map(|_| meta_end(data))
        .transpose()?
        .unwrap_or(0);
    check(&data[..end], Encoding { explicit_vr: true, big_endian: false })
}

/// Where the meta group ends: walk its elements while their group is 0002.
fn meta_end(data: &[u8]) -> Result<usize, DicomError> {
    let w = Walker { data, enc: Encoding { explicit_vr: true, big_endian: false } };
    let mut at = 0;
    while w.u16_at(at) == Some(0x0002) {
        let (_, len, value) = w.header(at)?;
        at = value.checked_add(len as usize).filter(|n| *n <= data.len()).ok_or_else(lying)?;
    }
    Ok(at)
}

/// Check that every length in the data set `data` fits.
pub(super) fn check(data: &[u8], enc: Encoding) -> Result<(), DicomError> {
    Walker { data, enc }.elements(0, Some(data.len()), 0).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LE: Encoding = Encoding { explicit_vr: true, big_endian: false };

    #[test]
    fn lengths_must_fit() {
        // (0028,0010) US 2 = 8, then (7FE0,0010) OW of 4 bytes.
        let mut ok = vec![0x28, 0, 0x10, 0, b'U', b'S', 2, 0, 8, 0];
        ok.extend_from_slice(&[0xE0, 0x7F, 0x10, 0, b'O', b'W', 0, 0, 4, 0, 0, 0, 1, 2, 3, 4]);
        assert!(check(&ok, LE).is_ok());
        let mut lying = ok.clone();
        lying[21] = 0xA5;
        assert!(check(&lying, LE).is_err());
        assert!(check(&ok[..ok.len() - 1], LE).is_err());
        // An undefined-length sequence with a lying item.
        let mut seq = vec![0x08, 0, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        seq.extend_from_slice(&[0xFE, 0xFF, 0, 0xE0, 0xFF, 0xFF, 0, 0]);
        assert!(check(&seq, LE).is_err());
    }
}

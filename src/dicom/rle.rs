//! RLE Lossless (PS3.5 Annex G), decoded here rather than by dicom-rs, whose decoder panics on
//! short segments and allocates the segment count it reads: one frame's fragment to native
//! little-endian interleaved samples, every length checked.

use super::DicomError;

fn corrupt(why: &str) -> DicomError {
    DicomError::Corrupt(format!("RLE: {why}"))
}

fn le32(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]) as usize)
}

/// Decode `fragment` (a 64-byte header, then one segment per byte of each sample, most
/// significant byte first) into `pixels` × `samples` samples of `bytes` bytes each.
pub(super) fn decode(
    fragment: &[u8],
    pixels: usize,
    samples: usize,
    bytes: usize,
) -> Result<Vec<u8>, DicomError> {
    let segments = samples * bytes;
    let count = le32(fragment, 0).ok_or_else(|| corrupt("no header"))?;
    if count != segments || fragment.len() < 64 {
        return Err(corrupt(&format!("{count} segments, {segments} expected")));
    }
    let mut offsets = Vec::with_capacity(segments + 1);
    for i in 0..segments {
        offsets.push(le32(fragment, 4 + 4 * i).ok_or_else(|| corrupt("no header"))?);
    }
    offsets.push(fragment.len());
    let mut out = vec![0u8; pixels * segments];
    for s in 0..segments {
        let (start, end) = (offsets[s], offsets[s + 1]);
        if start < 64 || start > end || end > fragment.len() {
            return Err(corrupt("segment offsets out of order"));
        }
        // Segment s holds byte (bytes − 1 − s % bytes) of sample s / bytes, for every pixel.
        let (sample, byte) = (s / bytes, bytes - 1 - s % bytes);
        let stride = segments;
        let first = sample * bytes + byte;
        let mut written = 0;
        let seg = &fragment[start..end];
        let mut i = 0;
        // Encoders pad a segment to an even length (a stray header byte): what follows the
        // image's last byte is ignored, as DCMTK and GDCM do.
        while i < seg.len() && written < pixels {
            let n = seg[i] as i8;
            i += 1;
            if n >= 0 {
                let run =
                    seg.get(i..i + n as usize + 1).ok_or_else(|| corrupt("literal run past the segment"))?;
                i += run.len();
                // A run past the image's end is cut there.
                for &v in &run[..run.len().min(pixels - written)] {
                    out[first + written * stride] = v;
                    written += 1;
                }
            } else if n != -128 {
                let v = *seg.get(i).ok_or_else(|| corrupt("replicate run past the segment"))?;
                i += 1;
                for _ in 0..(1 - isize::from(n)).unsigned_abs().min(pixels - written) {
                    out[first + written * stride] = v;
                    written += 1;
                }
            }
        }
        if written != pixels {
            return Err(corrupt("segment shorter than the image"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(offsets: &[u32]) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(&(offsets.len() as u32).to_le_bytes());
        for (i, o) in offsets.iter().enumerate() {
            h[4 + 4 * i..8 + 4 * i].copy_from_slice(&o.to_le_bytes());
        }
        h
    }

    #[test]
    fn sixteen_bit_segments_interleave_little_endian() {
        // Two pixels 0x0102, 0x0304: high bytes segment (literal), low bytes (replicate twice 0x09).
        let mut f = header(&[64, 67]);
        f.extend_from_slice(&[1, 0x01, 0x03, 0xFF, 0x09]);
        assert_eq!(decode(&f, 2, 1, 2).unwrap(), vec![0x09, 0x01, 0x09, 0x03]);
    }

    #[test]
    fn what_follows_the_last_pixel_is_ignored() {
        // MR_small_RLE.dcm: a segment padded with a literal-run header byte after the image.
        let mut f = header(&[64]);
        f.extend_from_slice(&[1, 7, 8, 0x00]);
        assert_eq!(decode(&f, 2, 1, 1).unwrap(), vec![7, 8]);
        // A run longer than the image is cut at its end.
        let mut f = header(&[64]);
        f.extend_from_slice(&[0xFD, 5]);
        assert_eq!(decode(&f, 2, 1, 1).unwrap(), vec![5, 5]);
    }

    #[test]
    fn short_or_lying_fragments_are_corrupt() {
        let mut f = header(&[64]);
        f.extend_from_slice(&[5, 1, 2]);
        assert!(decode(&f, 6, 1, 1).is_err());
        assert!(decode(&header(&[64, 64]), 1, 1, 1).is_err());
        assert!(decode(&header(&[200]), 1, 1, 1).is_err());
        assert!(decode(&[1, 0, 0], 1, 1, 1).is_err());
    }
}

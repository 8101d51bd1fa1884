//! Source pixels: Orthanc's lossless 8-bit rendering (PAM), kept lz4-compressed in the cache.

use bytes::{BufMut, Bytes, BytesMut};

use super::TransformError;

/// Content type of a cached source entry (never served to clients).
pub const SOURCE_CONTENT_TYPE: &str = "application/x-orthanc-edge-source";
const MAGIC: &[u8; 4] = b"OES1";

/// Decoded 8-bit pixels, 1 (grayscale) or 3 (RGB) channels, row-major, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub data: Vec<u8>,
}

impl Pixels {
    /// Parse a PAM (`P7`) image as Orthanc writes it, refusing anything over `max_pixels`.
    pub fn from_pam(body: &[u8], max_pixels: u64) -> Result<Self, TransformError> {
        let bad = |why: &str| TransformError::BadSource(format!("PAM: {why}"));
        let end = find(body, b"ENDHDR\n").ok_or_else(|| bad("no ENDHDR"))?;
        let header = std::str::from_utf8(&body[..end]).map_err(|_| bad("header is not text"))?;
        let mut lines = header.lines();
        if lines.next() != Some("P7") {
            return Err(bad("not a P7 file"));
        }
        let (mut w, mut h, mut depth, mut maxval, mut tuple) = (0u64, 0u64, 0u64, 0u64, "");
        for line in lines {
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            let num = || v.trim().parse::<u64>().map_err(|_| bad("bad number"));
            match k {
                "WIDTH" => w = num()?,
                "HEIGHT" => h = num()?,
                "DEPTH" => depth = num()?,
                "MAXVAL" => maxval = num()?,
                "TUPLTYPE" => tuple = v.trim(),
                _ => {}
            }
        }
        if w == 0 || h == 0 {
            return Err(bad("empty image"));
        }
        if w.saturating_mul(h) > max_pixels {
            return Err(TransformError::SourceTooLarge { width: w, height: h });
        }
        if maxval != 255 {
            return Err(bad("only 8-bit samples are supported"));
        }
        let channels = match (depth, tuple) {
            (1, "GRAYSCALE") => 1u8,
            (3, "RGB") => 3u8,
            _ => return Err(bad("only GRAYSCALE and RGB tuples are supported")),
        };
        let data = &body[end + b"ENDHDR\n".len()..];
        let expected = (w * h * u64::from(channels)) as usize;
        if data.len() != expected {
            return Err(bad("pixel data length does not match the header"));
        }
        Ok(Self { width: w as u32, height: h as u32, channels, data: data.to_vec() })
    }

    /// Compact cache form: `OES1 | width u32 | height u32 | channels u8 | lz4(pixels)`.
    pub fn compress(&self) -> Bytes {
        let packed = lz4_flex::compress_prepend_size(&self.data);
        let mut buf = BytesMut::with_capacity(13 + packed.len());
        buf.put_slice(MAGIC);
        buf.put_u32(self.width);
        buf.put_u32(self.height);
        buf.put_u8(self.channels);
        buf.put_slice(&packed);
        buf.freeze()
    }

    pub fn decompress(raw: &[u8]) -> Result<Self, TransformError> {
        let bad = || TransformError::BadSource("damaged source entry".into());
        if raw.len() < 13 || &raw[..4] != MAGIC {
            return Err(bad());
        }
        let width = u32::from_be_bytes(raw[4..8].try_into().map_err(|_| bad())?);
        let height = u32::from_be_bytes(raw[8..12].try_into().map_err(|_| bad())?);
        let channels = raw[12];
        let data = lz4_flex::decompress_size_prepended(&raw[13..]).map_err(|_| bad())?;
        if !matches!(channels, 1 | 3) || data.len() != width as usize * height as usize * channels as usize {
            return Err(bad());
        }
        Ok(Self { width, height, channels, data })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    // The header is short; never scan far into pixel data.
    let limit = hay.len().min(512);
    hay[..limit].windows(needle.len()).position(|w| w == needle)
}

/// The PAM image (`P7`) of `p`, as Orthanc writes it.
pub fn to_pam(p: &Pixels) -> Vec<u8> {
    let tuple = if p.channels == 1 { "GRAYSCALE" } else { "RGB" };
    let mut out = format!(
        "P7\nWIDTH {}\nHEIGHT {}\nDEPTH {}\nMAXVAL 255\nTUPLTYPE {tuple}\nENDHDR\n",
        p.width, p.height, p.channels
    )
    .into_bytes();
    out.extend_from_slice(&p.data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Pixels {
        Pixels { width: 7, height: 5, channels: 3, data: (0..105u8).collect() }
    }

    #[test]
    fn pam_round_trip_and_compression() {
        let p = sample();
        assert_eq!(Pixels::from_pam(&to_pam(&p), 1000).unwrap(), p);
        assert_eq!(Pixels::decompress(&p.compress()).unwrap(), p);
    }

    #[test]
    fn refuses_bad_pam() {
        let p = sample();
        let pam = to_pam(&p);
        assert!(matches!(Pixels::from_pam(&pam, 10), Err(TransformError::SourceTooLarge { .. })));
        assert!(Pixels::from_pam(&pam[..pam.len() - 1], 1000).is_err());
        assert!(Pixels::from_pam(b"P6\n1 1\n255\n\0\0\0", 1000).is_err());
        let sixteen = String::from_utf8_lossy(&pam).replace("MAXVAL 255", "MAXVAL 65535");
        assert!(Pixels::from_pam(sixteen.as_bytes(), 1000).is_err());
        assert!(Pixels::decompress(b"OES1garbage-garbage").is_err());
    }
}

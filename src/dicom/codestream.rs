//! What a JPEG or JPEG 2000 codestream says about itself, checked against the image header
//! before a codec sees it: a codec allocates what its codestream claims, so a 60000×60000
//! J2K inside a 64×64 image must be refused here.

use super::DicomError;

/// Geometry a codestream declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Declared {
    width: u32,
    height: u32,
    components: u32,
    precision: u32,
    /// A lossy DCT JPEG (SOF1 to SOF3, SOF5 to SOF7...) rather than baseline or lossless.
    dct_extended: bool,
    /// A JFIF (APP0) or Adobe (APP14) segment before the frame header: it says the colour space.
    color_marker: bool,
}

/// Check every fragment that starts a JPEG (SOI) or JPEG 2000 (SOC, or a JP2 file) codestream
/// against the header's geometry. Fragments that are neither (RLE, continuations) pass.
pub(super) fn check_fragments<'a>(
    fragments: impl IntoIterator<Item = &'a [u8]>,
    width: u32,
    height: u32,
    samples: u32,
) -> Result<(), DicomError> {
    for fragment in fragments {
        let declared = if fragment.starts_with(&[0xFF, 0xD8]) {
            Some(jpeg(fragment)?)
        } else if let Some(at) = j2k_start(fragment) {
            Some(j2k(&fragment[at..])?)
        } else {
            None
        };
        if let Some(d) = declared {
            // The pure-Rust JPEG decoder has no 12-bit DCT (Orthanc's DCMTK has).
            if d.dct_extended && d.precision > 8 {
                return Err(DicomError::Unsupported(format!("{}-bit lossy JPEG", d.precision)));
            }
            if d.width != width || d.height != height || d.components != samples || d.precision > 16 {
                return Err(DicomError::Corrupt(format!(
                    "the codestream declares {}x{}x{} at {} bits, the header {width}x{height}x{samples}",
                    d.width, d.height, d.components, d.precision
                )));
            }
        }
    }
    Ok(())
}

fn short(msg: &str) -> DicomError {
    DicomError::Corrupt(format!("truncated codestream ({msg})"))
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?])))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

/// The frame header (SOFn) of a JPEG stream, walking marker segments from SOI.
fn jpeg(b: &[u8]) -> Result<Declared, DicomError> {
    let mut at = 2;
    let mut color_marker = false;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while b.get(at) == Some(&0xFF) && b.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if b.get(at) != Some(&0xFF) {
            return Err(DicomError::Corrupt("JPEG marker expected".into()));
        }
        let marker = *b.get(at + 1).ok_or_else(|| short("JPEG marker"))?;
        let len = be16(b, at + 2).ok_or_else(|| short("JPEG segment"))? as usize;
        let payload = b.get(at + 4..at + 9);
        color_marker |=
            (marker == 0xE0 && payload == Some(b"JFIF\0")) || (marker == 0xEE && payload == Some(b"Adobe"));
        // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC); SOF55 (F7) is JPEG-LS.
        if matches!(marker, 0xC0..=0xCF | 0xF7) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let p = at + 4;
            let precision = u32::from(*b.get(p).ok_or_else(|| short("SOF"))?);
            let height = be16(b, p + 1).ok_or_else(|| short("SOF"))?;
            let width = be16(b, p + 3).ok_or_else(|| short("SOF"))?;
            let components = u32::from(*b.get(p + 5).ok_or_else(|| short("SOF"))?);
            let dct_extended = !matches!(marker, 0xC0 | 0xC3 | 0xC7 | 0xCB | 0xCF | 0xF7);
            return Ok(Declared { width, height, components, precision, dct_extended, color_marker });
        }
        if len < 2 {
            return Err(DicomError::Corrupt("bad JPEG segment length".into()));
        }
        at += 2 + len;
    }
}

/// Does this JPEG stream say its colour space (a JFIF or Adobe segment)?
pub(super) fn jpeg_has_color_marker(b: &[u8]) -> bool {
    jpeg(b).is_ok_and(|d| d.color_marker)
}

/// Where the J2K codestream (SOC then SIZ) starts: at 0, or inside a JP2 file's `jp2c` box.
fn j2k_start(b: &[u8]) -> Option<usize> {
    const SOC_SIZ: [u8; 4] = [0xFF, 0x4F, 0xFF, 0x51];
    if b.starts_with(&SOC_SIZ) {
        return Some(0);
    }
    if b.len() >= 12 && &b[4..8] == b"jP  " {
        return b.windows(4).position(|w| w == SOC_SIZ);
    }
    None
}

/// The SIZ segment: reference grid minus image offset, components, and their largest depth.
fn j2k(b: &[u8]) -> Result<Declared, DicomError> {
    let siz = 4; // after SOC (2) and the SIZ marker (2)
    let field = |off: usize| be32(b, siz + off).ok_or_else(|| short("SIZ"));
    let (xsiz, ysiz, x0, y0) = (field(4)?, field(8)?, field(12)?, field(16)?);
    let components = be16(b, siz + 36).ok_or_else(|| short("SIZ"))?;
    let mut precision = 0;
    for c in 0..components as usize {
        let ssiz = *b.get(siz + 38 + 3 * c).ok_or_else(|| short("SIZ components"))?;
        precision = precision.max(u32::from(ssiz & 0x7F) + 1);
    }
    let width = xsiz.checked_sub(x0).ok_or_else(|| DicomError::Corrupt("bad J2K image offset".into()))?;
    let height = ysiz.checked_sub(y0).ok_or_else(|| DicomError::Corrupt("bad J2K image offset".into()))?;
    Ok(Declared { width, height, components, precision, dct_extended: false, color_marker: false })
}

/// The fewest wavelet decomposition levels the main header gives any component (its COD and
/// COC segments): how many resolution levels below full a decoder can be asked to stop at.
/// `None` when the stream is not a JPEG 2000 codestream or its header is unreadable.
pub(super) fn j2k_levels(b: &[u8]) -> Option<u32> {
    let b = &b[j2k_start(b)?..];
    let components = be16(b, 4 + 36)?;
    let mut at = 2; // after SOC
    let mut levels: Option<u32> = None;
    // Marker segments until the first tile-part (SOT): each is FF xx, then its length.
    while b.get(at) == Some(&0xFF) {
        let marker = *b.get(at + 1)?;
        if marker == 0x90 {
            break;
        }
        let len = be16(b, at + 2)? as usize;
        let payload = at + 4;
        let found = match marker {
            // COD: Scod, progression order, layers (2), MCT, then the levels.
            0x52 => Some(*b.get(payload + 5)?),
            // COC: the component (1 byte, 2 with over 256 components), Scoc, then the levels.
            0x53 => Some(*b.get(payload + if components < 257 { 2 } else { 3 })?),
            _ => None,
        };
        if let Some(found) = found {
            levels = Some(levels.map_or(u32::from(found), |l| l.min(u32::from(found))));
        }
        if len < 2 {
            return None;
        }
        at += 2 + len;
    }
    levels
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A J2K main header start (SOC, SIZ) declaring `w`×`h`, one 8-bit component.
    pub fn j2k_header(w: u32, h: u32) -> Vec<u8> {
        let mut b = vec![0xFF, 0x4F, 0xFF, 0x51, 0x00, 41, 0x00, 0x00];
        for v in [w, h, 0, 0, w, h, 0, 0] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&[0x00, 0x01, 0x07, 0x01, 0x01]);
        b
    }

    #[test]
    fn j2k_claiming_a_huge_image_is_refused() {
        let b = j2k_header(60000, 60000);
        assert!(matches!(check_fragments([b.as_slice()], 64, 64, 1), Err(DicomError::Corrupt(_))));
        let ok = j2k_header(64, 64);
        assert!(check_fragments([ok.as_slice()], 64, 64, 1).is_ok());
        assert!(check_fragments([&ok[..20]], 64, 64, 1).is_err());
    }

    #[test]
    fn jpeg_frame_header() {
        // SOI, APP0 (len 4), SOF0: 8 bits, 16 rows, 32 columns, 1 component.
        let b = [0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 11, 8, 0, 16, 0, 32, 1, 1, 0x11, 0];
        assert!(check_fragments([&b[..]], 32, 16, 1).is_ok());
        assert!(check_fragments([&b[..]], 16, 32, 1).is_err());
        assert!(check_fragments([&b[..12]], 32, 16, 1).is_err());
        assert!(check_fragments([&[1u8, 2, 3][..]], 32, 16, 1).is_ok());
    }
}

//! JPEG 2000 and HTJ2K with jpeg2k (openjp2, pure Rust), at full resolution or at one of the
//! codestream's lower resolution levels.
//!
//! A JPEG 2000 codestream is a wavelet pyramid: level `k` below full resolution is an image of
//! ⌈w/2^k⌉×⌈h/2^k⌉ that the decoder rebuilds from the coarser subbands alone, skipping the
//! entropy decoding of the finer ones (3/4 of the coefficients at each level). A 256-pixel
//! thumbnail of a 2048×2500 CR needs level 3: 1/64 of the coefficients. The caller says how far
//! it may go ([`decode`]'s `reduce`); this module never goes deeper than the codestream's own
//! decomposition levels. Output as dicom-pixeldata's adapter writes it: interleaved samples,
//! little endian, `bytes_per_sample` bytes each.
//!
//! A level's samples sit at every 2^k-th pixel of the full frame (the even samples at each
//! level), not at the centres of 2^k blocks: the resize that follows lines them up
//! (`transform::resize::Geometry::at_level`). A preview's full-range stretch is over the level's
//! own range, which outliers narrower than a block no longer widen.

use dicom_encoding::adapters::PixelDataObject;
use dicom_object::DefaultDicomObject;
use jpeg2k::{DecodeParameters, Image};

use super::codestream;
use super::DicomError;

/// JPEG 2000 (lossless .90, lossy .91, Part 2 .92 and .93) and HTJ2K (.201 to .203).
pub(super) fn handles(ts: &str) -> bool {
    matches!(
        ts,
        "1.2.840.10008.1.2.4.90"
            | "1.2.840.10008.1.2.4.91"
            | "1.2.840.10008.1.2.4.92"
            | "1.2.840.10008.1.2.4.93"
            | "1.2.840.10008.1.2.4.201"
            | "1.2.840.10008.1.2.4.202"
            | "1.2.840.10008.1.2.4.203"
    )
}

/// One decoded frame: `width`×`height` (smaller than the header's when reduced).
#[derive(Debug)]
pub(super) struct Frame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// Above this many output bytes, a codestream smaller than 1/64 of them is refused as a bomb
/// (dicom-pixeldata's own guard for its JPEG 2000 adapter).
const DANGEROUS_BYTES: usize = 16 << 20;
const RATIO_THRESHOLD: usize = 64;

/// Decode frame `frame` (`samples` components of `bytes_per_sample` bytes) at `reduce` levels
/// below full resolution at most, as many as the codestream has.
pub(super) fn decode(
    file: &DefaultDicomObject,
    frame: u32,
    (width, height): (u32, u32),
    samples: u32,
    bytes_per_sample: usize,
    reduce: u32,
) -> Result<Frame, DicomError> {
    let data = file
        .frame_pixel_data(frame)
        .ok_or_else(|| DicomError::Corrupt("no JPEG 2000 data for the frame".into()))?;
    let full_bytes = width as usize * height as usize * samples as usize * bytes_per_sample;
    if full_bytes >= DANGEROUS_BYTES && data.len() < full_bytes / RATIO_THRESHOLD {
        return Err(DicomError::Corrupt("JPEG 2000: implausible compression ratio".into()));
    }
    let reduce = reduce.min(codestream::j2k_levels(&data).unwrap_or(0));
    let image = match Image::from_bytes_with(&data, DecodeParameters::new().reduce(reduce)) {
        Ok(image) => image,
        // A tile or component with fewer levels than the main header says: full resolution.
        Err(_) if reduce > 0 => Image::from_bytes(&data).map_err(failed)?,
        Err(e) => return Err(failed(e)),
    };
    let level = (width.div_ceil(1 << reduce), height.div_ceil(1 << reduce));
    if reduce > 0 && (image.width(), image.height()) != level {
        // An image offset on the reference grid shifts the levels' sizes: full resolution.
        return decode(file, frame, (width, height), samples, bytes_per_sample, 0);
    }
    let components = image.components();
    let (w, h) = (image.width(), image.height());
    if components.len() < samples as usize || (w, h) != level {
        return Err(DicomError::Corrupt(format!(
            "JPEG 2000: decoded {w}x{h}x{}, the header says {width}x{height}x{samples}",
            components.len()
        )));
    }
    let pixels = w as usize * h as usize;
    let n = samples as usize;
    let mut out = vec![0u8; pixels * n * bytes_per_sample];
    for (c, component) in components.iter().take(n).enumerate() {
        let values = component.data();
        if (component.width(), component.height()) != (w, h) || values.len() < pixels {
            return Err(DicomError::Corrupt("JPEG 2000: subsampled or short component".into()));
        }
        for (i, v) in values[..pixels].iter().enumerate() {
            let at = (i * n + c) * bytes_per_sample;
            out[at..at + bytes_per_sample].copy_from_slice(&v.to_le_bytes()[..bytes_per_sample]);
        }
    }
    Ok(Frame { width: w, height: h, data: out })
}

fn failed(e: impl std::fmt::Display) -> DicomError {
    DicomError::Corrupt(format!("JPEG 2000: {e}"))
}

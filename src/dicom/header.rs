//! The image header, read the way Orthanc reads it: geometry and sample layout
//! (`DicomImageInformation`), and what the renderings need (`ParsedDicomFile::GetRescale`,
//! `GetDefaultWindowing`, the photometric interpretation).

use dicom_core::Tag;
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;

use super::{DicomError, Limits};

/// Photometric Interpretation (0028,0004), trimmed and upper-cased as Orthanc compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Photometric {
    Monochrome1,
    Monochrome2,
    Rgb,
    Palette,
    YbrFull,
    YbrFull422,
    /// YBR_RCT / YBR_ICT: only in JPEG 2000, whose decoder undoes the transform.
    YbrJ2k,
    Other(String),
}

impl Photometric {
    fn parse(s: &str) -> Self {
        match s {
            "MONOCHROME1" => Self::Monochrome1,
            "MONOCHROME2" => Self::Monochrome2,
            "RGB" => Self::Rgb,
            "PALETTE COLOR" => Self::Palette,
            "YBR_FULL" => Self::YbrFull,
            "YBR_FULL_422" => Self::YbrFull422,
            "YBR_RCT" | "YBR_ICT" => Self::YbrJ2k,
            other => Self::Other(other.to_string()),
        }
    }
}

/// A string value as DCMTK's `findAndGetString` gives it (all values, `\`-separated), without
/// the padding Orthanc's `StripSpaces` removes.
pub(super) fn text(ds: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = ds.get(tag)?.to_str().ok()?;
    Some(s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0').to_string())
}

/// `SerializationToolbox::ParseDouble`: the whole (trimmed) string is one number.
fn parse_double(s: &str) -> Option<f64> {
    let s = s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
    if s.is_empty() {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `SerializationToolbox::ParseFirstDouble`: the first `\`-separated value.
fn parse_first_double(s: &str) -> Option<f64> {
    parse_double(s.split('\\').next()?)
}

fn uint(ds: &InMemDicomObject, tag: Tag) -> Result<Option<u32>, DicomError> {
    let Some(s) = text(ds, tag) else { return Ok(None) };
    let first = s.split('\\').next().unwrap_or_default().trim();
    if first.is_empty() {
        return Ok(None);
    }
    first
        .parse::<u32>()
        .map(Some)
        .map_err(|_| DicomError::Corrupt(format!("bad value for ({:04X},{:04X})", tag.0, tag.1)))
}

/// Geometry and sample layout (`DicomImageInformation`).
#[derive(Debug, Clone)]
pub(super) struct ImageInfo {
    pub width: u32,
    pub height: u32,
    pub samples: u32,
    pub bits_allocated: u32,
    pub bits_stored: u32,
    pub high_bit: u32,
    pub signed: bool,
    pub planar: bool,
    pub photometric: Photometric,
    pub frames: u32,
    /// Float (32) or Double Float (64) Pixel Data, not integer Pixel Data.
    pub float: bool,
}

impl ImageInfo {
    /// Read the header; the defaults are Orthanc's (1 sample, bits stored = allocated, high bit
    /// = stored − 1, unsigned, interleaved, 1 frame).
    pub fn read(ds: &InMemDicomObject) -> Result<Self, DicomError> {
        let missing = |name: &str| DicomError::Corrupt(format!("no {name} in the image header"));
        let width = uint(ds, tags::COLUMNS)?.ok_or_else(|| missing("Columns"))?;
        let height = uint(ds, tags::ROWS)?.ok_or_else(|| missing("Rows"))?;
        let float = ds.get(tags::PIXEL_DATA).is_none();
        let bits_allocated = uint(ds, tags::BITS_ALLOCATED)?.ok_or_else(|| missing("Bits Allocated"))?;
        let samples = uint(ds, tags::SAMPLES_PER_PIXEL)?.unwrap_or(1);
        let bits_stored = uint(ds, tags::BITS_STORED)?.unwrap_or(bits_allocated);
        if bits_stored == 0 || bits_stored > bits_allocated {
            return Err(DicomError::Corrupt(format!(
                "{bits_stored} bits stored in {bits_allocated} allocated"
            )));
        }
        let high_bit = uint(ds, tags::HIGH_BIT)?.unwrap_or(bits_stored - 1);
        if high_bit + 1 < bits_stored || high_bit >= bits_allocated {
            return Err(DicomError::Corrupt(format!(
                "high bit {high_bit} with {bits_stored} of {bits_allocated} bits"
            )));
        }
        let signed = uint(ds, tags::PIXEL_REPRESENTATION)?.unwrap_or(0) != 0;
        let planar = samples > 1 && uint(ds, tags::PLANAR_CONFIGURATION)?.unwrap_or(0) != 0;
        let photometric = Photometric::parse(
            &text(ds, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default().to_uppercase(),
        );
        let frames = uint(ds, tags::NUMBER_OF_FRAMES)?.unwrap_or(1);
        if frames == 0 || samples == 0 {
            return Err(DicomError::Corrupt("no frames or no samples".into()));
        }
        let expected_bits: &[u32] = if float { &[32, 64] } else { &[1, 8, 16, 32] };
        if !expected_bits.contains(&bits_allocated) {
            return Err(DicomError::Unsupported(format!("{bits_allocated} bits allocated")));
        }
        Ok(Self {
            width,
            height,
            samples,
            bits_allocated,
            bits_stored,
            high_bit,
            signed,
            planar,
            photometric,
            frames,
            float,
        })
    }

    /// Refuse a missing frame, an empty image, or one over the limits: from the header alone.
    pub fn check(&self, frame: u32, limits: &Limits) -> Result<(), DicomError> {
        if frame >= self.frames {
            return Err(DicomError::FrameNotFound { frame, frames: self.frames });
        }
        let (w, h) = (u64::from(self.width), u64::from(self.height));
        if w == 0 || h == 0 {
            return Err(DicomError::Corrupt("empty image".into()));
        }
        let too_large = DicomError::TooLarge { width: w, height: h };
        if w * h > limits.max_pixels {
            return Err(too_large);
        }
        // Decoded samples are at least a byte each (1-bit images are expanded).
        let bytes = w * h * u64::from(self.samples) * u64::from(self.bits_allocated.div_ceil(8));
        if bytes > limits.max_decoded_bytes {
            return Err(too_large);
        }
        Ok(())
    }

    /// Bytes per sample in the data (0 for 1-bit images).
    pub fn bytes_per_sample(&self) -> usize {
        (self.bits_allocated / 8) as usize
    }

    /// Bits right of the stored bits (`DicomImageInformation::GetShift`).
    pub fn shift(&self) -> u32 {
        self.high_bit + 1 - self.bits_stored
    }
}

/// What the renderings read besides the samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Display {
    /// MONOCHROME1: rendered inverted.
    pub invert: bool,
    pub intercept: f64,
    pub slope: f64,
    /// The instance's default window (`GetDefaultWindowing`).
    pub center: f64,
    pub width: f64,
}

/// The first item of a sequence in the per-frame functional group of `frame`.
pub(super) fn per_frame_item(ds: &InMemDicomObject, frame: u32, sequence: Tag) -> Option<&InMemDicomObject> {
    let frames = ds.get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)?.items()?;
    frames.get(frame as usize)?.get(sequence)?.items()?.first()
}

impl Display {
    pub fn read(ds: &InMemDicomObject, info: &ImageInfo, frame: u32) -> Self {
        let (intercept, slope) = rescale(ds, frame);
        let (center, width) = window(ds, frame);
        Self { invert: info.photometric == Photometric::Monochrome1, intercept, slope, center, width }
    }
}

/// `ParsedDicomFile::GetRescale`: none for RT dose; else Rescale Intercept/Slope (each one
/// number), else the frame's Pixel Value Transformation, else (0, 1).
fn rescale(ds: &InMemDicomObject, frame: u32) -> (f64, f64) {
    if text(ds, tags::SOP_CLASS_UID).as_deref() == Some(uids::RT_DOSE_STORAGE) {
        return (0.0, 1.0);
    }
    let pair = |item: &InMemDicomObject| {
        let i = parse_double(&text(item, tags::RESCALE_INTERCEPT)?)?;
        let s = parse_double(&text(item, tags::RESCALE_SLOPE)?)?;
        Some((i, s))
    };
    pair(ds)
        .or_else(|| per_frame_item(ds, frame, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE).and_then(pair))
        .unwrap_or((0.0, 1.0))
}

/// `ParsedDicomFile::GetDefaultWindowing`: the first Window Center/Width, else the frame's VOI
/// LUT, else the full range of the stored bits (`1 << BitsStored`, 8 bits if absent).
fn window(ds: &InMemDicomObject, frame: u32) -> (f64, f64) {
    let pair = |item: &InMemDicomObject| {
        let c = parse_first_double(&text(item, tags::WINDOW_CENTER)?)?;
        let w = parse_first_double(&text(item, tags::WINDOW_WIDTH)?)?;
        Some((c, w))
    };
    pair(ds).or_else(|| per_frame_item(ds, frame, tags::FRAME_VOILUT_SEQUENCE).and_then(pair)).unwrap_or_else(
        || {
            let bits = ds
                .get(tags::BITS_STORED)
                .and_then(|e| e.to_int::<u32>().ok())
                .filter(|b| *b != 0)
                .unwrap_or(8);
            // `1 << bitsStored` on a C++ int as x86 computes it: 31 bits give a negative width
            // and 32 bits a width of 1 (the shift count is taken modulo 32), so a 32-bit RT dose
            // renders white wherever the dose is not 0. The edge does the same.
            let width = f64::from(1i32.wrapping_shl(bits));
            (width / 2.0, width)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_as_orthanc_does() {
        assert_eq!(parse_double(" 1.5 "), Some(1.5));
        assert_eq!(parse_double("1\\2"), None);
        assert_eq!(parse_double(""), None);
        assert_eq!(parse_first_double("40\\400"), Some(40.0));
        assert_eq!(parse_first_double("-1024 \\0"), Some(-1024.0));
    }
}

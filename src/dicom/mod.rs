//! Edge-side DICOM rendering: a Part 10 file's frame to the 8-bit image Orthanc 1.10.1 would make.
//!
//! [`render_frame`] is pure and blocking: parse ([`parse`], after [`lengths`] checked that no
//! element claims more bytes than the file has), refuse what has no pixels
//! ([`kind`]), read the image header the way Orthanc does ([`header`]), check the limits before
//! anything is allocated (and the codestream against the header, [`codestream`]), decode the
//! frame's samples ([`decode`]: [`rle`], [`jpeg`], [`j2k`]; JPEG 2000 at the resolution level
//! the caller needs, [`render_frame_at`]), then render them as Orthanc's `/preview` or
//! `/rendered` do ([`orthanc`]). A panic anywhere in dicom-rs or a codec is caught and reported
//! as [`DicomError::Corrupt`].

mod codestream;
mod decode;
mod header;
mod j2k;
mod jpeg;
mod kind;
mod lengths;
mod orthanc;
mod parse;
mod pipeline;
mod rle;
#[cfg(any(test, feature = "test-hooks"))]
pub mod synthetic;

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::model::Rendering;
use crate::transform::Pixels;

pub use pipeline::Frame;

/// What a decode may cost, checked from the header before any pixel buffer exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rows × columns of one frame.
    pub max_pixels: u64,
    /// Bytes of one decoded frame (rows × columns × samples × bytes per sample), and of a
    /// deflated data set once inflated.
    pub max_decoded_bytes: u64,
}

/// Why a frame cannot be rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DicomError {
    /// The instance has no image (SR, PDF, ECG, ...): `kind` is one of `sr`, `pdf`, `ecg`,
    /// `rtplan`, `rtstruct`, `ko`, `pr`, `video`, `other`.
    #[error("the instance has no pixel data ({kind})")]
    NoPixelData { kind: &'static str },
    #[error("frame {frame} does not exist (the instance has {frames})")]
    FrameNotFound { frame: u32, frames: u32 },
    /// Over `max_pixels`, or decoded bytes over `max_decoded_bytes`.
    #[error("the image is too large to decode ({width}x{height})")]
    TooLarge { width: u64, height: u64 },
    /// A transfer syntax or pixel layout the edge cannot decode.
    #[error("unsupported image: {0}")]
    Unsupported(String),
    /// Truncated data, a header that lies, a bad codestream.
    #[error("undecodable image: {0}")]
    Corrupt(String),
}

impl DicomError {
    /// The stable error code (`no-pixel-data`, `not-found`, `source-too-large`,
    /// `unsupported-image`, `undecodable`).
    pub fn code(&self) -> &'static str {
        match self {
            DicomError::NoPixelData { .. } => "no-pixel-data",
            // As Orthanc's own 404 for a frame it does not have.
            DicomError::FrameNotFound { .. } => "not-found",
            DicomError::TooLarge { .. } => "source-too-large",
            DicomError::Unsupported(_) => "unsupported-image",
            DicomError::Corrupt(_) => "undecodable",
        }
    }
}

/// Every `kind` a [`DicomError::NoPixelData`] names.
pub const NO_PIXEL_KINDS: [&str; 9] =
    ["sr", "pdf", "ecg", "rtplan", "rtstruct", "ko", "pr", "video", "other"];

/// Blocking (the caller runs it on the transform pool). `file` is the whole DICOM file as
/// `GET /instances/{id}/file` returns it (Part 10, with preamble). Returns the same 8-bit image
/// Orthanc 1.10.1 returns as PAM for `/instances/{id}/frames/{frame}/preview`
/// (`Rendering::Preview`) or `/rendered` (`Rendering::Rendered { window }`), pixel for pixel
/// where Orthanc can render the instance (see [`orthanc`] for what it does, and where the edge
/// differs because Orthanc cannot).
pub fn render_frame(
    file: &[u8],
    frame: u32,
    rendering: &Rendering,
    limits: &Limits,
) -> Result<Pixels, DicomError> {
    render_frame_at(file, frame, rendering, limits, |_, _| 0).map(|r| r.pixels)
}

/// A frame rendered at the resolution its caller needs.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameImage {
    pub pixels: Pixels,
    /// The frame's full size: larger than the pixels' when a JPEG 2000 frame was decoded at
    /// one of its lower resolution levels.
    pub full: (u32, u32),
}

/// [`render_frame`], where the caller can use a smaller image: `reduce(w, h)` is how many times
/// a `w`×`h` frame may be halved (each side rounded up) and still have every pixel the caller
/// needs. A JPEG 2000 frame is then decoded at that level, as far as its codestream goes;
/// other frames are always decoded at full size.
pub fn render_frame_at(
    file: &[u8],
    frame: u32,
    rendering: &Rendering,
    limits: &Limits,
    reduce: impl FnOnce(u32, u32) -> u32,
) -> Result<FrameImage, DicomError> {
    guarded(|| {
        let dicomweb = matches!(rendering, Rendering::Dicomweb { .. });
        // The DICOMweb pipeline crops and windows at full resolution.
        let reduce = |w, h| if dicomweb { 0 } else { reduce(w, h) };
        let (parsed, info, decoded) = decode_frame(file, frame, limits, reduce)?;
        let ds = parsed.dataset();
        let pixels = match rendering {
            Rendering::Dicomweb { window, region } => {
                Frame::new(ds, &info, frame, decoded).render(*window, *region)
            }
            _ => orthanc::render(&decoded, &header::Display::read(ds, &info, frame), rendering),
        };
        Ok(FrameImage { pixels, full: (info.width, info.height) })
    })
}

/// Blocking, like [`render_frame`]: frame `frame` of `file` decoded, with what the DICOMweb
/// pipeline needs to render it in any window ([`Frame::render`]).
pub fn read_frame(file: &[u8], frame: u32, limits: &Limits) -> Result<Frame, DicomError> {
    guarded(|| {
        let (parsed, info, decoded) = decode_frame(file, frame, limits, |_, _| 0)?;
        Ok(Frame::new(parsed.dataset(), &info, frame, decoded))
    })
}

/// A panic in dicom-rs or a codec, as `Corrupt`.
fn guarded<T>(f: impl FnOnce() -> Result<T, DicomError>) -> Result<T, DicomError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(DicomError::Corrupt("the decoder failed on this data".into())))
}

/// Parse, refuse what has no pixels, read and check the header, decode the frame (at the level
/// `reduce` allows, see [`render_frame_at`]).
fn decode_frame(
    file: &[u8],
    frame: u32,
    limits: &Limits,
    reduce: impl FnOnce(u32, u32) -> u32,
) -> Result<(parse::Parsed, header::ImageInfo, decode::Decoded), DicomError> {
    let parsed = parse::parse(file, limits)?;
    kind::ensure_pixels(&parsed)?;
    let info = header::ImageInfo::read(parsed.dataset())?;
    info.check(frame, limits)?;
    let decoded = decode::frame(&parsed, &info, frame, reduce(info.width, info.height))?;
    Ok((parsed, info, decoded))
}

#[cfg(test)]
mod tests;

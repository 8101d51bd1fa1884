//! One frame's samples, in the pixel formats Orthanc decodes to (`DicomImageDecoder::Decode`),
//! plus the ones Orthanc refuses (signed 8/32-bit, 32 bits stored, float) and colour it cannot
//! convert (YBR, any palette).
//!
//! Native data is read here, byte for byte the way Orthanc reads it: its fast path copies the
//! samples as they are and only shifts unsigned ones right (`ImageProcessing::ShiftRight`), so
//! bits above the high bit are kept (16-bit unsigned, and signed 16-bit with no shift); its slow
//! path (`DicomIntegerPixelAccessor::GetValue`: planar data, a shifted signed image) masks to
//! the stored bits and sign-extends. Compressed data is decoded by [`rle`], [`jpeg`] and, for
//! JPEG 2000, dicom-pixeldata's codec: their output is native and interleaved, JPEG and JPEG
//! 2000 colour already RGB, and, as from Orthanc's DCMTK codecs, never shifted.

use std::borrow::Cow;

use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::header::{ImageInfo, Photometric};
use super::parse::Parsed;
use super::DicomError;
use super::{codestream, j2k, jpeg, rle};

/// Decoded samples of one frame, row-major, interleaved.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Samples {
    /// Orthanc's Grayscale8 (also 1-bit images, as 0/255).
    Gray8(Vec<u8>),
    /// Orthanc's Grayscale16.
    Gray16(Vec<u16>),
    /// Orthanc's SignedGrayscale16 (also signed 8-bit, which Orthanc refuses).
    SignedGray16(Vec<i16>),
    /// Orthanc's Grayscale32 (Orthanc's `/preview` refuses it, `/rendered` windows it).
    Gray32(Vec<u32>),
    /// Signed 32-bit: Orthanc refuses it.
    SignedGray32(Vec<i32>),
    /// Float and Double Float Pixel Data: Orthanc refuses them.
    Float(Vec<f32>),
    /// Orthanc's RGB24 (RGB, palette, and YBR converted to RGB).
    Rgb24(Vec<u8>),
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Decoded {
    pub width: u32,
    pub height: u32,
    pub samples: Samples,
}

fn short() -> DicomError {
    DicomError::Corrupt("the pixel data is shorter than its header says".into())
}

/// Decode frame `frame` (already checked to exist and to fit the limits). A JPEG 2000 frame is
/// decoded at up to `reduce` resolution levels below full (see [`j2k`]), so `Decoded` may be
/// smaller than the header says; every other frame is decoded at full resolution.
pub(super) fn frame(
    parsed: &Parsed,
    info: &ImageInfo,
    frame: u32,
    reduce: u32,
) -> Result<Decoded, DicomError> {
    let ds = parsed.dataset();
    let samples = if info.float {
        float(ds, info, frame)?
    } else {
        let element = ds.get(tags::PIXEL_DATA).ok_or_else(|| DicomError::Corrupt("no pixel data".into()))?;
        match element.value() {
            Value::Primitive(p) => {
                let mut bytes = p.to_bytes().into_owned();
                if parsed.ts == "1.2.840.10008.1.2.2" // explicit VR big endian (retired)
                    && matches!(p, PrimitiveValue::U16(_))
                    && info.bytes_per_sample() == 4
                {
                    // Big-endian 32-bit samples in OW: dicom-rs swapped each 16-bit word, so
                    // the two words of every sample are still in big-endian order.
                    for sample in bytes.chunks_exact_mut(4) {
                        sample.rotate_left(2);
                    }
                }
                native(ds, info, &bytes, frame)?
            }
            Value::PixelSequence(seq) => {
                if parsed.ts == uids::RLE_LOSSLESS {
                    let fragment = seq.fragments().get(frame as usize).ok_or_else(short)?;
                    let (n, bytes) = (info.samples as usize, info.bytes_per_sample());
                    let data = rle::decode(fragment, pixel_count(info), n, bytes)?;
                    interpret(ds, &ImageInfo { planar: false, ..info.clone() }, &data, Origin::Codec)?
                } else {
                    let fragments = seq.fragments().iter().map(|f| f.as_slice());
                    codestream::check_fragments(fragments, info.width, info.height, info.samples)?;
                    if jpeg::handles(&parsed.ts) {
                        let file = parsed
                            .file()
                            .ok_or_else(|| DicomError::Corrupt("JPEG in a bare data set".into()))?;
                        let data = jpeg::decode(file, info, frame)?;
                        interpret(ds, &as_rgb(info), &data, Origin::Codec)?
                    } else if j2k::handles(&parsed.ts) {
                        return jpeg2000(parsed, info, frame, reduce);
                    } else {
                        encapsulated(parsed, info, frame)?
                    }
                }
            }
            Value::Sequence(_) => return Err(DicomError::Corrupt("pixel data is a sequence".into())),
        }
    };
    Ok(Decoded { width: info.width, height: info.height, samples })
}

fn pixel_count(info: &ImageInfo) -> usize {
    info.width as usize * info.height as usize
}

/// Native (uncompressed) pixel data, all frames, little endian (dicom-rs swaps big endian).
fn native(ds: &InMemDicomObject, info: &ImageInfo, bytes: &[u8], frame: u32) -> Result<Samples, DicomError> {
    let pixels = pixel_count(info);
    if info.bits_allocated == 1 {
        if info.samples != 1 {
            return Err(DicomError::Unsupported("1-bit colour image".into()));
        }
        // Bits are packed across rows and frames, least significant first.
        if (info.frames as usize).saturating_mul(pixels) > bytes.len().saturating_mul(8) {
            return Err(short());
        }
        let start = frame as usize * pixels;
        let bits = (start..start + pixels).map(|i| if bytes[i / 8] >> (i % 8) & 1 == 1 { 255 } else { 0 });
        return Ok(Samples::Gray8(bits.collect()));
    }
    // YBR_FULL_422 keeps two luma samples and one pair of chroma samples per two pixels.
    let values = if info.photometric == Photometric::YbrFull422 && info.samples == 3 {
        2 * pixels
    } else {
        pixels * info.samples as usize
    };
    let frame_size = values * info.bytes_per_sample();
    // Orthanc refuses pixel data shorter than all the frames the header announces.
    if (info.frames as usize).saturating_mul(frame_size) > bytes.len() {
        return Err(short());
    }
    let data = &bytes[frame as usize * frame_size..(frame as usize + 1) * frame_size];
    interpret(ds, info, data, Origin::Native)
}

/// Where samples come from: Orthanc shifts native samples, codecs return them right-aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Native,
    Codec,
}

/// A JPEG 2000 frame, at up to `reduce` levels below full resolution.
fn jpeg2000(parsed: &Parsed, info: &ImageInfo, frame: u32, reduce: u32) -> Result<Decoded, DicomError> {
    let file = parsed.file().ok_or_else(|| DicomError::Corrupt("JPEG 2000 in a bare data set".into()))?;
    let dims = (info.width, info.height);
    let j2k::Frame { width, height, data } =
        j2k::decode(file, frame, dims, info.samples, info.bytes_per_sample(), reduce)?;
    let at_level = ImageInfo { width, height, ..as_rgb(info) };
    let samples = interpret(parsed.dataset(), &at_level, &data, Origin::Codec)?;
    Ok(Decoded { width, height, samples })
}

/// Compressed pixel data: dicom-pixeldata's codec for the transfer syntax, one frame.
fn encapsulated(parsed: &Parsed, info: &ImageInfo, frame: u32) -> Result<Samples, DicomError> {
    let ts = TransferSyntaxRegistry
        .get(&parsed.ts)
        .ok_or_else(|| DicomError::Unsupported(format!("transfer syntax {}", parsed.ts)))?;
    if !ts.can_decode_all() {
        return Err(DicomError::Unsupported(format!("transfer syntax {} ({})", parsed.ts, ts.name())));
    }
    let file = parsed
        .file()
        .ok_or_else(|| DicomError::Corrupt("encapsulated pixel data in a deflated data set".into()))?;
    let decoded = file.decode_pixel_data_frame(frame).map_err(|e| DicomError::Corrupt(e.to_string()))?;
    let expected = pixel_count(info) * info.samples as usize * info.bytes_per_sample();
    let data = decoded.data().get(..expected).ok_or_else(short)?;
    interpret(parsed.dataset(), &as_rgb(info), data, Origin::Codec)
}

/// The layout of a codec's output: interleaved, colour as RGB (JPEG and JPEG 2000 undo
/// YBR_FULL, YBR_FULL_422, YBR_ICT, YBR_RCT).
fn as_rgb(info: &ImageInfo) -> ImageInfo {
    let mut info = info.clone();
    if info.samples == 3 {
        info.photometric = Photometric::Rgb;
    }
    info.planar = false;
    info
}

fn interpret(
    ds: &InMemDicomObject,
    info: &ImageInfo,
    data: &[u8],
    origin: Origin,
) -> Result<Samples, DicomError> {
    match (info.samples, &info.photometric) {
        (1, Photometric::Monochrome1 | Photometric::Monochrome2) => gray(info, data, origin),
        (1, Photometric::Palette) => palette(ds, info, data),
        (3, Photometric::Rgb) => rgb(info, data).map(Samples::Rgb24),
        (3, Photometric::YbrFull) => rgb(info, data).map(|mut v| {
            ybr_to_rgb(&mut v);
            Samples::Rgb24(v)
        }),
        (3, Photometric::YbrFull422) if info.bits_allocated == 8 => {
            Ok(Samples::Rgb24(ybr422_to_rgb(info, data)))
        }
        (n, pi) => Err(DicomError::Unsupported(format!(
            "{n} samples per pixel, {pi:?}, {} bits",
            info.bits_allocated
        ))),
    }
}

/// The `i`-th little-endian sample of `bytes`.
fn sample(data: &[u8], bytes: usize, i: usize) -> u32 {
    let at = i * bytes;
    match bytes {
        1 => u32::from(data[at]),
        2 => u32::from(u16::from_le_bytes([data[at], data[at + 1]])),
        _ => u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]),
    }
}

fn mask(bits: u32) -> u32 {
    if bits >= 32 {
        u32::MAX
    } else {
        (1u32 << bits) - 1
    }
}

/// Sign-extend the low `bits` bits of `v`.
fn sign_extend(v: u32, bits: u32) -> i32 {
    let unused = 32 - bits.min(32);
    ((v << unused) as i32) >> unused
}

fn gray(info: &ImageInfo, data: &[u8], origin: Origin) -> Result<Samples, DicomError> {
    let n = pixel_count(info);
    let bytes = info.bytes_per_sample();
    let shift = if origin == Origin::Native { info.shift() } else { 0 };
    let stored = info.bits_stored;
    // The little-endian words, read in one tight loop per width (not a width test per sample).
    let short = || DicomError::Corrupt("pixel data shorter than the image".into());
    let data = data.get(..n * bytes).ok_or_else(short)?;
    if info.bits_allocated == 16 {
        // 16 bits allocated (most CT, CR, MR): straight to the samples, no wider copy between.
        let words = data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) >> shift);
        return Ok(match info.signed {
            // Orthanc's fast path: no mask above the stored bits (8 stored bits in 16 it gets wrong).
            false if stored == 8 => Samples::Gray16(words.map(|v| v & 0xFF).collect()),
            false => Samples::Gray16(words.collect()),
            // Orthanc's fast path when nothing is shifted: the raw 16 bits, no sign extension.
            true if shift == 0 => Samples::SignedGray16(words.map(|v| v as i16).collect()),
            true => Samples::SignedGray16(words.map(|v| sign_extend(u32::from(v), stored) as i16).collect()),
        });
    }
    let words: Vec<u32> = match bytes {
        1 => data.iter().map(|&b| u32::from(b)).collect(),
        2 => data.chunks_exact(2).map(|c| u32::from(u16::from_le_bytes([c[0], c[1]]))).collect(),
        _ => data.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
    };
    let raw = words.iter().map(|&v| v >> shift);
    Ok(match (info.bits_allocated, info.signed) {
        (8, false) => Samples::Gray8(raw.map(|v| (v & mask(stored)) as u8).collect()),
        (8, true) => Samples::SignedGray16(raw.map(|v| sign_extend(v, stored) as i16).collect()),
        (32, false) => Samples::Gray32(raw.map(|v| v & mask(stored)).collect()),
        (32, true) => Samples::SignedGray32(raw.map(|v| sign_extend(v, stored)).collect()),
        (bits, _) => return Err(DicomError::Unsupported(format!("{bits}-bit grayscale"))),
    })
}

/// Interleaved 8-bit RGB from interleaved or planar samples of 8, 16 or 32 bits.
fn rgb(info: &ImageInfo, data: &[u8]) -> Result<Vec<u8>, DicomError> {
    let n = pixel_count(info);
    let bytes = info.bytes_per_sample();
    let down = match info.bits_allocated {
        8 => 0,
        // Orthanc refuses 32-bit colour (415): its high byte, as for 16 bits.
        16 | 32 => info.bits_stored.saturating_sub(8),
        bits => return Err(DicomError::Unsupported(format!("{bits}-bit colour"))),
    };
    let value = |i: usize| {
        (((sample(data, bytes, i) >> info.shift()) & mask(info.bits_stored)) >> down).min(255) as u8
    };
    let mut out = Vec::with_capacity(n * 3);
    for p in 0..n {
        for c in 0..3 {
            out.push(value(if info.planar { c * n + p } else { p * 3 + c }));
        }
    }
    Ok(out)
}

/// YBR_FULL (ITU-R BT.601, full range) to RGB, in place.
fn ybr_to_rgb(px: &mut [u8]) {
    for p in px.chunks_exact_mut(3) {
        let (r, g, b) = ybr(p[0], p[1], p[2]);
        p.copy_from_slice(&[r, g, b]);
    }
}

fn ybr(y: u8, cb: u8, cr: u8) -> (u8, u8, u8) {
    let (y, cb, cr) = (f32::from(y), f32::from(cb) - 128.0, f32::from(cr) - 128.0);
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    (clamp(y + 1.402 * cr), clamp(y - 0.344_136 * cb - 0.714_136 * cr), clamp(y + 1.772 * cb))
}

/// Native YBR_FULL_422: `Y Y Cb Cr` per two pixels of a row.
fn ybr422_to_rgb(info: &ImageInfo, data: &[u8]) -> Vec<u8> {
    let n = pixel_count(info);
    let mut out = Vec::with_capacity(n * 3);
    for quad in data.chunks_exact(4) {
        for y in [quad[0], quad[1]] {
            let (r, g, b) = ybr(y, quad[2], quad[3]);
            out.extend_from_slice(&[r, g, b]);
        }
    }
    out.truncate(n * 3);
    out
}

/// PALETTE COLOR through the Red/Green/Blue LUTs, 8 bits per channel (a 16-bit entry's high
/// byte, as Orthanc's `DecodeLookupTable` keeps for 256-entry tables and `/preview` for RGB48).
fn palette(ds: &InMemDicomObject, info: &ImageInfo, data: &[u8]) -> Result<Samples, DicomError> {
    let bad = |why: &str| DicomError::Unsupported(format!("palette colour: {why}"));
    if info.signed || !matches!(info.bits_allocated, 8 | 16) {
        return Err(bad("signed or unusual index"));
    }
    if ds.get(tags::SEGMENTED_RED_PALETTE_COLOR_LOOKUP_TABLE_DATA).is_some() {
        return Err(bad("segmented tables"));
    }
    let lut = |descriptor, table| -> Result<Vec<u8>, DicomError> {
        let d: Vec<i64> = ds
            .get(descriptor)
            .and_then(|e| e.to_multi_int::<i64>().ok())
            .filter(|d| d.len() == 3)
            .ok_or_else(|| bad("no table descriptor"))?;
        let count = if d[0] == 0 { 65536 } else { (d[0] & 0xFFFF) as usize };
        let (first, bits) = (d[1], d[2]);
        let raw: Cow<'_, [u8]> =
            ds.get(table).and_then(|e| e.value().to_bytes().ok()).ok_or_else(|| bad("no table data"))?;
        let entries: Vec<u8> = if bits == 8 && raw.len() == count {
            raw.to_vec()
        } else if raw.len() >= 2 * count {
            raw.chunks_exact(2)
                .take(count)
                .map(|w| {
                    let v = u16::from_le_bytes([w[0], w[1]]);
                    if bits == 8 {
                        (v & 0xFF) as u8
                    } else {
                        (v >> 8) as u8
                    }
                })
                .collect()
        } else {
            return Err(bad("table shorter than its descriptor"));
        };
        // Index i maps entry i − first, clamped to the table.
        let mut full = vec![0u8; 1 << info.bits_allocated];
        for (v, slot) in full.iter_mut().enumerate() {
            let i = (v as i64 - first).clamp(0, count as i64 - 1) as usize;
            *slot = entries[i];
        }
        Ok(full)
    };
    let r = lut(tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR, tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA)?;
    let g =
        lut(tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR, tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA)?;
    let b =
        lut(tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR, tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA)?;
    let bytes = info.bytes_per_sample();
    let m = mask(info.bits_stored);
    let mut out = Vec::with_capacity(pixel_count(info) * 3);
    for i in 0..pixel_count(info) {
        let v = (sample(data, bytes, i) & m) as usize;
        out.extend_from_slice(&[r[v], g[v], b[v]]);
    }
    Ok(Samples::Rgb24(out))
}

/// Float (32-bit) or Double Float (64-bit) Pixel Data, one sample per pixel.
fn float(ds: &InMemDicomObject, info: &ImageInfo, frame: u32) -> Result<Samples, DicomError> {
    if info.samples != 1 {
        return Err(DicomError::Unsupported("float colour image".into()));
    }
    let (tag, bytes) = if info.bits_allocated == 64 {
        (tags::DOUBLE_FLOAT_PIXEL_DATA, 8)
    } else {
        (tags::FLOAT_PIXEL_DATA, 4)
    };
    let raw = ds
        .get(tag)
        .and_then(|e| e.value().to_bytes().ok())
        .ok_or_else(|| DicomError::Corrupt("float pixel data does not match Bits Allocated".into()))?;
    let frame_size = pixel_count(info) * bytes;
    if (info.frames as usize).saturating_mul(frame_size) > raw.len() {
        return Err(short());
    }
    let data = &raw[frame as usize * frame_size..(frame as usize + 1) * frame_size];
    let values = data.chunks_exact(bytes).map(|c| match c {
        [a, b, c, d] => f32::from_le_bytes([*a, *b, *c, *d]),
        _ => {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            f64::from_le_bytes(w) as f32
        }
    });
    Ok(Samples::Float(values.collect()))
}

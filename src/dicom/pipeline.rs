//! The PS3.18 rendering of DICOMweb `/rendered` and `/thumbnail`: PS3.3 C.11's grayscale
//! pipeline on a frame's stored samples ([`Frame`]), which the edge caches so that a new window
//! or crop is a new encode, not a new decode.
//!
//! The arithmetic is that of Orthanc's DICOMweb plugin 1.7 (`WadoRsRetrieveRendered.cpp`,
//! `ApplyRendering` and `ApplyWindowing`), in `float` as there, wherever the plugin implements the
//! step:
//! - the source region of the viewport (`sx,sy,sw,sh`, negative `sw`/`sh` flip) is cut first;
//! - Modality: Rescale Slope/Intercept (`a = slope * x + intercept`), else the frame's Pixel
//!   Value Transformation. The plugin ignores a Modality LUT Sequence; the edge applies it
//!   (`lut[x - first]`, clamped to the table).
//! - VOI: `window=c,w,fn` when given (LINEAR and SIGMOID with the plugin's formulas,
//!   LINEAR_EXACT with the standard's: the plugin's misses its `+ 0.5`);
//!   else the instance's first window with its VOI LUT Function; else its first VOI LUT
//!   Sequence item (scaled from its output bits to 8); else the whole range of the region. The
//!   plugin 1.7 reads the instance's window but renders the whole range anyway
//!   (`SetWindow` leaves the mode at `WholeDynamics`) and ignores VOI LUT Sequences: there the
//!   edge follows the standard, not the plugin.
//! - the 8-bit value is the `float` rounded to the nearest, saturated at 0 and 255 (the plugin's
//!   `SetFloatPixel`, which adds 0.5 before truncating, unlike Orthanc's own `/rendered`);
//!   then the flips; then MONOCHROME1 is inverted. Colour passes through unwindowed.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use serde::{Deserialize, Serialize};

use super::decode::{Decoded, Samples};
use super::header::{per_frame_item, text, ImageInfo, Photometric};
use super::DicomError;
use crate::model::{Region, VoiFunction, VoiWindow};
use crate::transform::Pixels;

/// A lookup table: LUT Descriptor (entries, first mapped value, bits) and LUT Data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Lut {
    first: i32,
    bits: u8,
    data: Vec<u16>,
}

impl Lut {
    /// `signed`: the pixels are, so the first mapped value is SS even where it was read as US
    /// (implicit VR gives the descriptor the dictionary's first VR).
    fn read(item: &InMemDicomObject, signed: bool) -> Option<Self> {
        let desc: Vec<i32> = item.get(tags::LUT_DESCRIPTOR)?.to_multi_int().ok()?;
        let data: Vec<u16> = item.get(tags::LUT_DATA)?.to_multi_int().ok()?;
        let (&first, &bits) = (desc.get(1)?, desc.get(2)?);
        let first = if signed && first > 32767 && first <= 65535 { first - 65536 } else { first };
        let bits = u8::try_from(bits).ok()?;
        Some(Self { first, bits, data }).filter(Lut::valid)
    }

    /// What `get` and `max_out` rely on (a cached entry is checked again when read back).
    fn valid(&self) -> bool {
        (1..=16).contains(&self.bits) && !self.data.is_empty()
    }

    fn get(&self, x: f32) -> f32 {
        let last = (self.data.len() - 1) as f32;
        let i = (x - self.first as f32).clamp(0.0, last);
        f32::from(self.data[i as usize])
    }

    /// The largest output value: the descriptor's bits, unless the data says more.
    fn max_out(&self) -> f32 {
        let declared = ((1u32 << self.bits) - 1) as f32;
        let seen = f32::from(self.data.iter().copied().max().unwrap_or(0));
        declared.max(seen).max(1.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Modality {
    Rescale { slope: f32, intercept: f32 },
    Lut(Lut),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Voi {
    Window { center: f32, width: f32, function: VoiFunction },
    Lut(Lut),
    WholeRange,
}

/// What the pipeline reads besides the samples, kept with them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Params {
    width: u32,
    height: u32,
    modality: Modality,
    voi: Voi,
    invert: bool,
}

/// A decoded frame and its pipeline, before any window: the DICOMweb source.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    params: Params,
    samples: Samples,
}

const MAGIC: &[u8; 4] = b"OEF1";

/// The sample formats in an entry, by the byte that names them, with their size.
const KINDS: [(&str, usize); 7] =
    [("gray8", 1), ("gray16", 2), ("sgray16", 2), ("gray32", 4), ("sgray32", 4), ("float", 4), ("rgb", 3)];

fn kind_of(samples: &Samples) -> u8 {
    match samples {
        Samples::Gray8(_) => 0,
        Samples::Gray16(_) => 1,
        Samples::SignedGray16(_) => 2,
        Samples::Gray32(_) => 3,
        Samples::SignedGray32(_) => 4,
        Samples::Float(_) => 5,
        Samples::Rgb24(_) => 6,
    }
}

/// A number as the plugin's `ParseFloat` reads it: the whole trimmed string, one `float`.
fn float(item: &InMemDicomObject, tag: Tag) -> Option<f32> {
    text(item, tag)?.trim().parse::<f32>().ok().filter(|v| v.is_finite())
}

fn first_float(item: &InMemDicomObject, tag: Tag) -> Option<f32> {
    text(item, tag)?.split('\\').next()?.trim().parse::<f32>().ok().filter(|v| v.is_finite())
}

fn function(item: &InMemDicomObject) -> VoiFunction {
    match text(item, tags::VOILUT_FUNCTION).as_deref().map(str::trim) {
        Some("LINEAR_EXACT") => VoiFunction::LinearExact,
        Some("SIGMOID") => VoiFunction::Sigmoid,
        _ => VoiFunction::Linear,
    }
}

fn first_item(ds: &InMemDicomObject, seq: Tag) -> Option<&InMemDicomObject> {
    ds.get(seq)?.items()?.first()
}

/// The frame's item of `seq` in the per-frame functional groups, else in the shared ones.
fn functional(ds: &InMemDicomObject, frame: u32, seq: Tag) -> Option<&InMemDicomObject> {
    per_frame_item(ds, frame, seq).or_else(|| {
        let shared = first_item(ds, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE)?;
        first_item(shared, seq)
    })
}

impl Frame {
    pub(super) fn new(ds: &InMemDicomObject, info: &ImageInfo, frame: u32, decoded: Decoded) -> Self {
        let rescale = |item: &InMemDicomObject| {
            Some(Modality::Rescale {
                slope: float(item, tags::RESCALE_SLOPE)?,
                intercept: float(item, tags::RESCALE_INTERCEPT)?,
            })
        };
        let lut = |item| Lut::read(item, info.signed);
        let modality = first_item(ds, tags::MODALITY_LUT_SEQUENCE)
            .and_then(lut)
            .map(Modality::Lut)
            .or_else(|| rescale(ds))
            .or_else(|| functional(ds, frame, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE).and_then(rescale))
            .unwrap_or(Modality::Rescale { slope: 1.0, intercept: 0.0 });
        let window = |item: &InMemDicomObject| {
            Some(Voi::Window {
                center: first_float(item, tags::WINDOW_CENTER)?,
                width: first_float(item, tags::WINDOW_WIDTH)?,
                function: function(item),
            })
        };
        let voi = window(ds)
            .or_else(|| functional(ds, frame, tags::FRAME_VOILUT_SEQUENCE).and_then(window))
            .or_else(|| first_item(ds, tags::VOILUT_SEQUENCE).and_then(lut).map(Voi::Lut))
            .unwrap_or(Voi::WholeRange);
        let params = Params {
            width: decoded.width,
            height: decoded.height,
            modality,
            voi,
            invert: info.photometric == Photometric::Monochrome1,
        };
        Self { params, samples: decoded.samples }
    }

    /// The cache entry's body: magic, the sample format (a byte, [`KINDS`]), the parameters
    /// (length and JSON), the samples (LZ4, little endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let raw: Vec<u8> = match &self.samples {
            Samples::Gray8(v) | Samples::Rgb24(v) => v.clone(),
            Samples::Gray16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Samples::SignedGray16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Samples::Gray32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Samples::SignedGray32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Samples::Float(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        };
        let header = serde_json::to_vec(&self.params).unwrap_or_default();
        let mut out = Vec::with_capacity(8 + header.len() + raw.len() / 2);
        out.extend_from_slice(MAGIC);
        out.push(kind_of(&self.samples));
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&lz4_flex::compress(&raw));
        out
    }

    /// Read back [`Frame::to_bytes`]; anything else is `Corrupt`, never a panic.
    pub fn from_bytes(body: &[u8], max_pixels: u64) -> Result<Self, DicomError> {
        let bad = || DicomError::Corrupt("damaged frame entry".into());
        if body.len() < 9 || &body[..4] != MAGIC {
            return Err(bad());
        }
        let kind = body[4];
        let (_, per) = *KINDS.get(usize::from(kind)).ok_or_else(bad)?;
        let len = u32::from_le_bytes(body[5..9].try_into().map_err(|_| bad())?) as usize;
        let header = body.get(9..9 + len).ok_or_else(bad)?;
        let params: Params = serde_json::from_slice(header).map_err(|_| bad())?;
        let pixels = u64::from(params.width) * u64::from(params.height);
        let luts_valid = !matches!(&params.modality, Modality::Lut(l) if !l.valid())
            && !matches!(&params.voi, Voi::Lut(l) if !l.valid());
        if pixels == 0 || pixels > max_pixels || !luts_valid {
            return Err(bad());
        }
        let raw = lz4_flex::decompress(&body[9 + len..], pixels as usize * per).map_err(|_| bad())?;
        if raw.len() != pixels as usize * per {
            return Err(bad());
        }
        fn words<const N: usize, T>(raw: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
            raw.chunks_exact(N).map(|c| f(c.try_into().unwrap_or([0; N]))).collect()
        }
        let samples = match kind {
            0 => Samples::Gray8(raw),
            1 => Samples::Gray16(words(&raw, u16::from_le_bytes)),
            2 => Samples::SignedGray16(words(&raw, i16::from_le_bytes)),
            3 => Samples::Gray32(words(&raw, u32::from_le_bytes)),
            4 => Samples::SignedGray32(words(&raw, i32::from_le_bytes)),
            5 => Samples::Float(words(&raw, f32::from_le_bytes)),
            _ => Samples::Rgb24(raw),
        };
        Ok(Self { params, samples })
    }

    /// The 8-bit image: region, modality, VOI (`window` instead of the instance's), flips,
    /// MONOCHROME1 inverted.
    pub fn render(&self, window: Option<VoiWindow>, region: Option<Region>) -> Pixels {
        let (w, h) = (self.params.width, self.params.height);
        let region = region.unwrap_or_default();
        // `GetSourceRegion`: an origin outside the image is an empty region.
        let (x0, y0) = (region.x, region.y);
        let x1 = region.w.map_or(w, |rw| w.min(x0.saturating_add(rw)));
        let y1 = region.h.map_or(h, |rh| h.min(y0.saturating_add(rh)));
        let rgb = matches!(self.samples, Samples::Rgb24(_));
        let channels: u8 = if rgb { 3 } else { 1 };
        if x0 >= w || y0 >= h || x1 <= x0 || y1 <= y0 {
            return Pixels { width: 1, height: 1, channels, data: vec![0; channels as usize] };
        }
        let (cw, ch) = (x1 - x0, y1 - y0);
        let index = (y0..y1).flat_map(|y| (x0..x1).map(move |x| (y * w + x) as usize));
        let mut data: Vec<u8> = if let Samples::Rgb24(v) = &self.samples {
            index.flat_map(|i| [v[3 * i], v[3 * i + 1], v[3 * i + 2]]).collect()
        } else {
            let values: Vec<f32> = index.map(|i| self.modality(self.sample(i))).collect();
            self.voi(&values, window)
        };
        flip(&mut data, cw, ch, channels as usize, region.flip_x, region.flip_y);
        if self.params.invert && !rgb {
            data.iter_mut().for_each(|p| *p = 255 - *p);
        }
        Pixels { width: cw, height: ch, channels, data }
    }

    /// `GetFloatPixel`: the stored sample as `float`.
    fn sample(&self, i: usize) -> f32 {
        match &self.samples {
            Samples::Gray8(v) => f32::from(v[i]),
            Samples::Gray16(v) => f32::from(v[i]),
            Samples::SignedGray16(v) => f32::from(v[i]),
            Samples::Gray32(v) => v[i] as f32,
            Samples::SignedGray32(v) => v[i] as f32,
            Samples::Float(v) => v[i],
            Samples::Rgb24(_) => 0.0,
        }
    }

    fn modality(&self, x: f32) -> f32 {
        match &self.params.modality {
            Modality::Rescale { slope, intercept } => slope * x + intercept,
            Modality::Lut(lut) => lut.get(x),
        }
    }

    fn voi(&self, values: &[f32], window: Option<VoiWindow>) -> Vec<u8> {
        let voi = match window {
            Some(VoiWindow { center, width, function }) => Voi::Window { center, width, function },
            None => self.params.voi.clone(),
        };
        match voi {
            Voi::Window { center, width, function } => {
                values.iter().map(|&a| to_u8(windowed(a, center, width, function))).collect()
            }
            Voi::Lut(lut) => {
                let scale = 255.0 / lut.max_out();
                values.iter().map(|&a| to_u8(lut.get(a) * scale)).collect()
            }
            Voi::WholeRange => {
                // As the plugin: the range of the stored values, then rescaled (exact for
                // a rescale; for a Modality LUT the range of its output).
                let (lo, hi) = values
                    .iter()
                    .filter(|v| v.is_finite())
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                let scale = 255.0f32 / (hi - lo);
                values.iter().map(|&a| if hi > lo { to_u8((a - lo) * scale) } else { 0 }).collect()
            }
        }
    }
}

/// `SetFloatPixel` into 8 bits as the plugin's Orthanc framework does it: to the nearest
/// (`+ 0.5`, then truncated), saturated at 0 and 255; NaN is 0. (Orthanc's own `/rendered`
/// truncates: `orthanc::render`.) Measured against the plugin: truncating differs by one
/// level on about a third of a window's pixels.
fn to_u8(v: f32) -> u8 {
    (v + 0.5) as u8
}

/// `ApplyWindowing` for one value, `ymin = 0`, `ymax = 255`, the plugin's expressions.
fn windowed(a: f32, c: f32, w: f32, function: VoiFunction) -> f32 {
    let (ymin, ymax) = (0.0f32, 255.0f32);
    match function {
        VoiFunction::Linear => {
            let x_min = c - 0.5 - (w - 1.0) / 2.0;
            let x_max = c - 0.5 + (w - 1.0) / 2.0;
            let scaling = (ymax - ymin) / (w - 1.0);
            let offset = (ymax * (-c + 0.5 * w) + ymin * (c + 0.5 * w - 1.0)) / (w - 1.0);
            if a <= x_min {
                ymin
            } else if a > x_max {
                ymax
            } else {
                a * scaling + offset
            }
        }
        VoiFunction::LinearExact => {
            // PS3.3 C.11.2.1.3.2. The plugin 1.7 drops the `+ 0.5` (its `(x - c) / w`
            // renders the window's lower half black); the edge keeps the standard's.
            let (x_min, x_max) = (c - w / 2.0, c + w / 2.0);
            if a <= x_min {
                ymin
            } else if a > x_max {
                ymax
            } else {
                ((a - c) / w + 0.5) * (ymax - ymin) + ymin
            }
        }
        VoiFunction::Sigmoid => ymax / (1.0 + (-4.0 * (a - c) / w).exp()),
    }
}

/// `FlipX`/`FlipY` in place on `channels`-sample pixels.
fn flip(data: &mut [u8], w: u32, h: u32, channels: usize, x: bool, y: bool) {
    let row = w as usize * channels;
    if x {
        for line in data.chunks_exact_mut(row) {
            // Reversing the bytes reverses the pixels and each pixel's samples: undo the latter.
            line.reverse();
            line.chunks_exact_mut(channels).for_each(<[u8]>::reverse);
        }
    }
    if y {
        let h = h as usize;
        for top in 0..h / 2 {
            let (upper, lower) = data.split_at_mut((h - 1 - top) * row);
            upper[top * row..(top + 1) * row].swap_with_slice(&mut lower[..row]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(samples: Samples, width: u32, modality: Modality, voi: Voi, invert: bool) -> Frame {
        let n = match &samples {
            Samples::SignedGray16(v) => v.len() as u32,
            Samples::Gray16(v) => v.len() as u32,
            Samples::Rgb24(v) => v.len() as u32 / 3,
            _ => 0,
        };
        let params = Params { width, height: n / width, modality, voi, invert };
        Frame { params, samples }
    }

    const ID: Modality = Modality::Rescale { slope: 1.0, intercept: 0.0 };

    #[test]
    fn windows_as_the_plugin_computes_them() {
        let f = frame(Samples::Gray16(vec![0, 49, 50, 51, 100, 200]), 6, ID, Voi::WholeRange, false);
        let win = |c, w, function| Some(VoiWindow { center: c, width: w, function });
        // LINEAR c=50 w=101: from -0.5 to 99.5, scaling 2.55, offset 255*(-50+50.5)/100 = 1.275.
        // Each value to the nearest level (128.775 is 129).
        assert_eq!(f.render(win(50.0, 101.0, VoiFunction::Linear), None).data, [1, 126, 129, 131, 255, 255]);
        // LINEAR_EXACT c=50 w=100: ((x - 50) / 100 + 0.5) * 255.
        let exact = f.render(win(50.0, 100.0, VoiFunction::LinearExact), None).data;
        assert_eq!(exact, [0, 125, 128, 130, 255, 255]);
        let sigmoid = f.render(win(50.0, 100.0, VoiFunction::Sigmoid), None).data;
        // 255 / (1 + e^(-4 (x - 50) / 100)): e^2 at 0 gives 30.4, e^-6 at 200 gives 254.4.
        assert_eq!(sigmoid, [30, 125, 128, 130, 225, 254]);
        // No window anywhere: the whole range, x * 255 / 200.
        assert_eq!(f.render(None, None).data, [0, 62, 64, 65, 128, 255]);
    }

    #[test]
    fn modality_then_instance_window_then_monochrome1() {
        let ct = Modality::Rescale { slope: 1.0, intercept: -1024.0 };
        let voi = Voi::Window { center: 40.0, width: 400.0, function: VoiFunction::Linear };
        let f = frame(Samples::SignedGray16(vec![0, 1064, 3000]), 3, ct, voi, true);
        // 40 HU in 40/400 is 127.8: 128, inverted 127.
        assert_eq!(f.render(None, None).data, [255, 127, 0]);
    }

    #[test]
    fn lookup_tables() {
        let lut = Lut { first: 10, bits: 8, data: vec![0, 100, 200] };
        let f = frame(
            Samples::Gray16(vec![0, 10, 11, 12, 99]),
            5,
            Modality::Lut(lut.clone()),
            Voi::WholeRange,
            false,
        );
        assert_eq!(f.render(None, None).data, [0, 0, 128, 255, 255]);
        let voi = Lut { first: 0, bits: 12, data: vec![0, 4095, 2048] };
        let f = frame(Samples::Gray16(vec![0, 1, 2, 7]), 4, ID, Voi::Lut(voi), false);
        assert_eq!(f.render(None, None).data, [0, 255, 128, 128]);
    }

    #[test]
    fn regions_crop_and_flip() {
        let rgb: Vec<u8> = (0..12).collect(); // 2×2 RGB
        let f = frame(Samples::Rgb24(rgb), 2, ID, Voi::WholeRange, true);
        let flip = Region { flip_x: true, flip_y: true, ..Region::default() };
        assert_eq!(f.render(None, Some(flip)).data, [9, 10, 11, 6, 7, 8, 3, 4, 5, 0, 1, 2]);
        let crop = Region { x: 1, y: 0, w: Some(5), h: Some(1), ..Region::default() };
        let p = f.render(None, Some(crop));
        assert_eq!((p.width, p.height, p.data), (1, 1, vec![3, 4, 5]));
        let outside = Region { x: 7, ..Region::default() };
        assert_eq!(f.render(None, Some(outside)).width, 1);
    }

    #[test]
    fn entries_round_trip_and_refuse_damage() {
        let voi = Voi::Window { center: 1.5, width: 3.0, function: VoiFunction::Sigmoid };
        let f = frame(Samples::SignedGray16(vec![-5, 7, 300, -32768]), 2, ID, voi, true);
        let bytes = f.to_bytes();
        assert_eq!(Frame::from_bytes(&bytes, 1 << 20).unwrap(), f);
        for cut in [0, 7, 20, bytes.len() - 1] {
            assert!(Frame::from_bytes(&bytes[..cut], 1 << 20).is_err(), "{cut}");
        }
        assert!(Frame::from_bytes(&bytes, 3).is_err(), "over the pixel limit");
        // A table that `get` could not index is refused, not served.
        let empty = Lut { first: 0, bits: 0, data: vec![] };
        let f = frame(Samples::Gray16(vec![1, 2]), 2, Modality::Lut(empty), Voi::WholeRange, false);
        assert!(Frame::from_bytes(&f.to_bytes(), 1 << 20).is_err());
    }

    #[test]
    fn vertical_flips_of_odd_heights() {
        let f = frame(Samples::Gray16(vec![0, 1, 2]), 1, ID, Voi::WholeRange, false);
        let flip = Region { flip_y: true, ..Region::default() };
        assert_eq!(f.render(None, Some(flip)).data, [255, 128, 0]);
    }
}

//! Orthanc 1.10.1's renderings of a decoded frame to 8 bits, arithmetic for arithmetic.
//!
//! `/preview` (`GetImageHandler` → `DicomImageDecoder::ExtractPamImage`, mode Preview, in
//! `OrthancRestResources.cpp` and `DicomImageDecoder.cpp`):
//! - RGB24 is returned as it is (`PreviewDecodedImage`); RGB48 (16-bit palette) is shifted
//!   right by 8 (`ImageProcessing::Convert`) — here both arrive as [`Samples::Rgb24`].
//! - Grayscale8/16 and SignedGrayscale16 are stretched to the full range: `a, b` are the
//!   integer minimum and maximum (`GetMinMaxIntegerValue`); if `a == b` every pixel is 0; else
//!   `ShiftScale(image, -a, 255 / (b - a), useRound = true)`, i.e. in `float`,
//!   `s = 255f / float(b - a)`, `o = float(-a) * s`, `v = s * float(x) + o`, then `v >= max → max`,
//!   `v <= min → min`, else `iround(v)` (half away from zero), in the image's own type, then
//!   clamped to 0..255 (`ConvertInternal`). Orthanc refuses Grayscale32 here (415); the edge
//!   applies the same stretch to it and to the formats Orthanc cannot decode (signed 32-bit,
//!   float: minimum and maximum as `float`).
//! - MONOCHROME1 (photometric interpretation from the tags) is then inverted: `255 - p`.
//!
//! `/rendered` (`RenderedFrameHandler::Handle`):
//! - RGB24 goes through `/preview` unchanged, never inverted. (Orthanc answers 415 for RGB48; the
//!   edge returns it as RGB.)
//! - Grayscale: samples to `float` (`ConvertGrayscaleToFloat`); the rescale is
//!   `ParsedDicomFile::GetRescale` and the window `GetDefaultWindowing` (see `header`), the
//!   window replaced by `?window-center=&window-width=`. Then in `double`: `width <= 1 → 1`,
//!   `|slope| <= 0.0001 → slope = 0.0001`, `scaling = 255 * slope / width`,
//!   `offset = (intercept - center + width / 2) / slope`; then `ShiftScale(Grayscale8, Float32,
//!   float(offset), float(scaling), useRound = false)`, i.e. in `float`, `a = float(scaling)`,
//!   `b = float(offset) * a`, `v = a * x + b`, `v >= 255 → 255`, `v <= 0 → 0`, else `floor(v)`.
//! - MONOCHROME1 is then inverted (`255 - p`).
//!
//! The edge renders no overlays and, like Orthanc's `/preview` and `/rendered`, applies no
//! modality or VOI LUT sequence (the DICOMweb plugin's pipeline is another matter).
//!
//! Where the pixels can differ from Orthanc's, measured on pydicom's test files: lossy JPEG
//! (jpeg-decoder's IDCT and chroma upsampling are not libjpeg's: a few samples off by 1 to 4,
//! more on a 3-component stream without JFIF/Adobe marker); 12-bit lossy JPEG and JPEG-LS are
//! refused (`Unsupported`) where Orthanc decodes them. Where Orthanc answers 415 (JPEG 2000,
//! native YBR, palette tables other than 256 or 65536 entries or an odd pixel count,
//! `/rendered` of 16-bit palette, signed 8/32-bit, 32 bits stored, float, `/preview` of 32-bit,
//! RGB RLE without Planar Configuration), the edge renders with the arithmetic above.
//! Where Orthanc renders nonsense the edge copies it: a 32-bit RT dose without a window is
//! windowed to a width of 1 (see `header`), and 16-bit images keep the bits above the high bit.

use super::decode::{Decoded, Samples};
use super::header::Display;
use crate::model::Rendering;
use crate::transform::Pixels;

/// Render `frame` as Orthanc's `/preview` or `/rendered` would.
pub(super) fn render(frame: &Decoded, display: &Display, rendering: &Rendering) -> Pixels {
    let (width, height) = (frame.width, frame.height);
    if let Samples::Rgb24(rgb) = &frame.samples {
        return Pixels { width, height, channels: 3, data: rgb.clone() };
    }
    let mut data = match rendering {
        Rendering::Preview => stretch(&frame.samples),
        Rendering::Rendered { window } => {
            let (center, width) = window.map_or((display.center, display.width), |w| (w.center, w.width));
            windowed(&frame.samples, display.intercept, display.slope, center, width)
        }
        // Not reached from `render_frame`, which renders DICOMweb with `pipeline`.
        Rendering::Dicomweb { .. } => {
            windowed(&frame.samples, display.intercept, display.slope, display.center, display.width)
        }
    };
    if display.invert {
        data.iter_mut().for_each(|p| *p = 255 - *p);
    }
    Pixels { width, height, channels: 1, data }
}

/// Samples above which a 16-bit frame is mapped through a table of all 65,536 values rather
/// than value by value: the table costs 65,536 evaluations, a 256×256 frame as many.
const TABLE_FROM: usize = 1 << 16;

/// Every grayscale sample as `float` (what `ImageProcessing::Convert` to Float32 gives) through
/// `f`. For 8- and 16-bit samples `f` runs once per possible value, into a table (the same
/// arithmetic per value, so the same pixels), when that is fewer evaluations.
fn map_samples(samples: &Samples, f: impl Fn(f32) -> u8) -> Vec<u8> {
    fn table<T: Copy>(
        v: &[T],
        values: usize,
        index: impl Fn(T) -> usize,
        t: impl Fn(usize) -> u8,
    ) -> Vec<u8> {
        let lut: Vec<u8> = (0..values).map(t).collect();
        v.iter().map(|&x| lut[index(x)]).collect()
    }
    match samples {
        Samples::Gray8(v) => table(v, 256, usize::from, |i| f(i as f32)),
        Samples::Gray16(v) if v.len() > TABLE_FROM => table(v, 1 << 16, usize::from, |i| f(i as f32)),
        Samples::Gray16(v) => v.iter().map(|&x| f(f32::from(x))).collect(),
        Samples::SignedGray16(v) if v.len() > TABLE_FROM => {
            // Indexed by the bits: 0..32767, then -32768..-1.
            table(v, 1 << 16, |x| usize::from(x as u16), |i| f(f32::from(i as u16 as i16)))
        }
        Samples::SignedGray16(v) => v.iter().map(|&x| f(f32::from(x))).collect(),
        Samples::Gray32(v) => v.iter().map(|&x| f(x as f32)).collect(),
        Samples::SignedGray32(v) => v.iter().map(|&x| f(x as f32)).collect(),
        Samples::Float(v) => v.iter().map(|&x| f(x)).collect(),
        Samples::Rgb24(_) => Vec::new(),
    }
}

/// Integer minimum and maximum (`GetMinMaxIntegerValue`), or `float` ones for float samples.
fn min_max(samples: &Samples) -> Option<(f64, f64)> {
    fn ints<T: Copy + Into<i64>>(v: &[T]) -> Option<(f64, f64)> {
        let (lo, hi) =
            v.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &x| (lo.min(x.into()), hi.max(x.into())));
        (!v.is_empty()).then_some((lo as f64, hi as f64))
    }
    match samples {
        Samples::Gray8(v) => ints(v),
        Samples::Gray16(v) => ints(v),
        Samples::SignedGray16(v) => ints(v),
        Samples::Gray32(v) => ints(v),
        Samples::SignedGray32(v) => ints(v),
        Samples::Float(v) => {
            let finite = v.iter().copied().filter(|x| x.is_finite());
            let (lo, hi) = finite.fold((f32::MAX, f32::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
            (lo <= hi).then_some((f64::from(lo), f64::from(hi)))
        }
        Samples::Rgb24(_) => None,
    }
}

/// `ShiftScaleInternal`'s store into 8 bits: saturate at 255 and 0, else `round` (`iround`,
/// half away from zero) or `floor`.
#[inline]
fn clamp(v: f32, round: bool) -> u8 {
    if v >= 255.0 {
        255
    } else if v <= 0.0 || v.is_nan() {
        0
    } else if round {
        v.round() as u8
    } else {
        v as u8 // positive: truncation is floor
    }
}

/// `/preview`'s full-range stretch (`PreviewDecodedImage`).
fn stretch(samples: &Samples) -> Vec<u8> {
    let Some((lo, hi)) = min_max(samples) else { return Vec::new() };
    if lo == hi {
        return map_samples(samples, |_| 0);
    }
    // ShiftScale(image, offset = -a, scaling = 255 / (b - a)) as `a * x + b` in float.
    let scale = 255.0f32 / (hi - lo) as f32;
    let offset = (-lo) as f32 * scale;
    map_samples(samples, |x| clamp(scale * x + offset, true))
}

/// `/rendered`'s rescale and window (`RenderedFrameHandler::Handle`).
fn windowed(samples: &Samples, intercept: f64, slope: f64, center: f64, width: f64) -> Vec<u8> {
    let width = if width <= 1.0 { 1.0 } else { width };
    let slope = if slope.abs() <= 0.0001 { 0.0001 } else { slope };
    let scaling = 255.0 * slope / width;
    let offset = (intercept - center + width / 2.0) / slope;
    let a = scaling as f32;
    let b = offset as f32 * a;
    map_samples(samples, |x| clamp(a * x + b, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Window;

    fn display() -> Display {
        Display { invert: false, intercept: 0.0, slope: 1.0, center: 128.0, width: 256.0 }
    }

    fn gray16(v: Vec<u16>) -> Decoded {
        Decoded { width: v.len() as u32, height: 1, samples: Samples::Gray16(v) }
    }

    #[test]
    fn preview_stretches_and_rounds_in_float() {
        let p = render(&gray16(vec![100, 101, 150, 1100]), &display(), &Rendering::Preview);
        // 255/1000 = 0.255: 0.255 → 0, 12.75 → 13, 255.
        assert_eq!(p.data, vec![0, 0, 13, 255]);
        let flat = render(&gray16(vec![7, 7]), &display(), &Rendering::Preview);
        assert_eq!(flat.data, vec![0, 0]);
        let inverted =
            render(&gray16(vec![0, 10]), &Display { invert: true, ..display() }, &Rendering::Preview);
        assert_eq!(inverted.data, vec![255, 0]);
    }

    #[test]
    fn rendered_windows_and_floors() {
        let r = Rendering::Rendered { window: Some(Window { center: 50.0, width: 100.0 }) };
        let p = render(&gray16(vec![0, 1, 50, 99, 100, 200]), &display(), &r);
        // scaling 2.55: 2.55 → 2, 127.5 → 127, 252.45 → 252.
        assert_eq!(p.data, vec![0, 2, 127, 252, 255, 255]);
        // Width 0 is taken as 1: a step at the center.
        let step = Rendering::Rendered { window: Some(Window { center: 10.0, width: 0.0 }) };
        assert_eq!(render(&gray16(vec![9, 10, 11]), &display(), &step).data, vec![0, 127, 255]);
        // The instance's own window, with a rescale.
        let ct = Display { intercept: -1024.0, slope: 1.0, center: 40.0, width: 400.0, ..display() };
        let p = render(&gray16(vec![0, 1024, 1064, 2000]), &ct, &Rendering::Rendered { window: None });
        assert_eq!(p.data, vec![0, 102, 127, 255]);
    }

    #[test]
    fn tables_give_the_pixels_of_the_direct_arithmetic() {
        let f = |x: f32| clamp(0.37 * x - 1234.5, false);
        let n = TABLE_FROM + 1000;
        let u: Vec<u16> = (0..n).map(|i| (i * 7919 % 65536) as u16).collect();
        let s: Vec<i16> = u.iter().map(|&x| x as i16).collect();
        let direct = |v: Vec<f32>| v.into_iter().map(f).collect::<Vec<u8>>();
        assert_eq!(
            map_samples(&Samples::Gray16(u.clone()), f),
            direct(u.iter().map(|&x| f32::from(x)).collect())
        );
        assert_eq!(
            map_samples(&Samples::SignedGray16(s.clone()), f),
            direct(s.iter().map(|&x| f32::from(x)).collect())
        );
        let g = |x: f32| clamp(x * 0.9 + 3.0, true);
        let b: Vec<u8> = (0..=255).collect();
        assert_eq!(
            map_samples(&Samples::Gray8(b.clone()), g),
            b.iter().map(|&x| g(f32::from(x))).collect::<Vec<u8>>()
        );
    }

    #[test]
    fn rgb_passes_through() {
        let rgb = Decoded { width: 1, height: 1, samples: Samples::Rgb24(vec![1, 2, 3]) };
        let inverted = Display { invert: true, ..display() };
        for r in [Rendering::Preview, Rendering::Rendered { window: None }] {
            let p = render(&rgb, &inverted, &r);
            assert_eq!((p.channels, p.data.clone()), (3, vec![1, 2, 3]));
        }
    }
}

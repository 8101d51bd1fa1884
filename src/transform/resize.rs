//! Output geometry (fit rules, no upscaling unless allowed) and SIMD resampling with fast_image_resize.

use std::borrow::Cow;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::source::Pixels;
use super::spec::{Fit, VariantSpec};
use super::TransformError;

/// Where the output comes from in the source and how big it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub out_w: u32,
    pub out_h: u32,
    /// Source region (left, top, width, height) scaled to the output.
    pub crop: (f64, f64, f64, f64),
}

/// Largest output side whatever the request (WebP's limit; JPEG's is 65535): bounds upscaling
/// when only one side of the box is given.
pub const MAX_SIDE: u32 = 16383;

fn round_dim(x: f64) -> u32 {
    (x.round() as u32).max(1)
}

/// Apply the fit rules to a `sw`×`sh` source.
pub fn geometry(sw: u32, sh: u32, spec: &VariantSpec, allow_upscale: bool) -> Geometry {
    let (swf, shf) = (f64::from(sw), f64::from(sh));
    let full = (0.0, 0.0, swf, shf);
    match (spec.fit, spec.w, spec.h) {
        (_, None, None) => Geometry { out_w: sw, out_h: sh, crop: full },
        (Fit::Cover, Some(w), Some(h)) => {
            let (wf, hf) = (f64::from(w), f64::from(h));
            let scale = (wf / swf).max(hf / shf);
            // Without upscaling, shrink the box (same aspect) until it fits the source.
            let (out_w, out_h) = if scale > 1.0 && !allow_upscale {
                let k = (swf / wf).min(shf / hf);
                (round_dim(wf * k), round_dim(hf * k))
            } else {
                (w, h)
            };
            let (ow, oh) = (f64::from(out_w), f64::from(out_h));
            let crop_w = swf.min(shf * ow / oh);
            let crop_h = shf.min(swf * oh / ow);
            Geometry { out_w, out_h, crop: ((swf - crop_w) / 2.0, (shf - crop_h) / 2.0, crop_w, crop_h) }
        }
        (_, w, h) => {
            let sx = w.map_or(f64::INFINITY, |w| f64::from(w) / swf);
            let sy = h.map_or(f64::INFINITY, |h| f64::from(h) / shf);
            let mut scale = sx.min(sy);
            if !allow_upscale {
                scale = scale.min(1.0);
            }
            scale = scale.min(f64::from(MAX_SIDE) / swf.max(shf));
            // The binding side gets exactly the requested size; the other follows the aspect.
            let (out_w, out_h) = if scale == sx && w.is_some() {
                (w.unwrap_or(sw), round_dim(shf * scale))
            } else if scale == sy && h.is_some() {
                (round_dim(swf * scale), h.unwrap_or(sh))
            } else {
                (round_dim(swf * scale), round_dim(shf * scale))
            };
            Geometry { out_w, out_h, crop: full }
        }
    }
}

impl Geometry {
    /// The same output from resolution level `k` of the source: the source halved `k` times,
    /// each side rounded up, its samples at every 2^k-th pixel of the full source (JPEG 2000's
    /// sampling phase), padded by one column and row ([`padded`]). The output size is kept.
    pub fn at_level(self, k: u32) -> Geometry {
        if k == 0 {
            return self;
        }
        let s = f64::from(1u32 << k);
        // Full-source coordinate x is level coordinate (x - 0.5) / s + 0.5 (pixel centres).
        let at = |x: f64| (x - 0.5) / s + 0.5;
        let (l, t, w, h) = self.crop;
        Geometry { crop: (at(l), at(t), w / s, h / s), ..self }
    }
}

/// The resolution level `actual` is of a `full`-size source: `k` with each side of `full`
/// halved `k` times (rounded up) equal to `actual`'s; `None` if none is.
pub fn level(full: (u32, u32), actual: (u32, u32)) -> Option<u32> {
    (0..=MAX_REDUCTION).find(|&k| (full.0.div_ceil(1 << k), full.1.div_ceil(1 << k)) == actual)
}

/// `src` with its last column and row repeated once: a level's picture reaches half a pixel
/// past its last sample (see [`Geometry::at_level`]).
pub fn padded(src: &Pixels) -> Pixels {
    let (w, h, c) = (src.width as usize, src.height as usize, usize::from(src.channels));
    let row = w * c;
    let mut data = Vec::with_capacity((w + 1) * (h + 1) * c);
    for y in 0..=h {
        let line = &src.data[y.min(h - 1) * row..][..row];
        data.extend_from_slice(line);
        data.extend_from_slice(&line[row - c..]);
    }
    Pixels { width: src.width + 1, height: src.height + 1, channels: src.channels, data }
}

/// How many times a `sw`×`sh` source can be halved (each side rounded up) and still have at
/// least one source pixel per output pixel, for every spec: the resolution level a JPEG 2000
/// source needs to be decoded at, at most [`MAX_REDUCTION`].
pub fn max_reduction(sw: u32, sh: u32, specs: &[VariantSpec], allow_upscale: bool) -> u32 {
    specs
        .iter()
        .map(|spec| {
            let g = geometry(sw, sh, spec, allow_upscale);
            let ratio = (g.crop.2 / f64::from(g.out_w)).min(g.crop.3 / f64::from(g.out_h));
            // floor(log2(ratio)), 0 below 2.
            if ratio >= 2.0 {
                (ratio.log2().floor() as u32).min(MAX_REDUCTION)
            } else {
                0
            }
        })
        .min()
        .unwrap_or(0)
}

/// Deepest reduction asked for: 1/32 of each side (a codestream's default 5 levels).
pub const MAX_REDUCTION: u32 = 5;

/// Resample `src` to `g`. Borrows the source when nothing changes.
pub fn resize<'a>(src: &'a Pixels, g: &Geometry) -> Result<Cow<'a, Pixels>, TransformError> {
    let untouched = g.out_w == src.width
        && g.out_h == src.height
        && g.crop == (0.0, 0.0, f64::from(src.width), f64::from(src.height));
    if untouched {
        return Ok(Cow::Borrowed(src));
    }
    let pt = if src.channels == 1 { PixelType::U8 } else { PixelType::U8x3 };
    let view = ImageRef::new(src.width, src.height, &src.data, pt)
        .map_err(|e| TransformError::BadSource(format!("pixel buffer: {e}")))?;
    let mut dst = Image::new(g.out_w, g.out_h, pt);
    let (l, t, w, h) = g.crop;
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)).crop(l, t, w, h);
    Resizer::new()
        .resize(&view, &mut dst, &opts)
        .map_err(|e| TransformError::Encode(format!("resize: {e}")))?;
    Ok(Cow::Owned(Pixels { width: g.out_w, height: g.out_h, channels: src.channels, data: dst.into_vec() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ImageFormat;

    fn spec(w: Option<u32>, h: Option<u32>, fit: Fit) -> VariantSpec {
        VariantSpec { w, h, fit, format: ImageFormat::Png, q: None }
    }

    #[test]
    fn contain_keeps_aspect_and_never_upscales_by_default() {
        let g = geometry(512, 256, &spec(Some(128), Some(128), Fit::Contain), false);
        assert_eq!((g.out_w, g.out_h), (128, 64));
        let g = geometry(512, 256, &spec(None, Some(128), Fit::Contain), false);
        assert_eq!((g.out_w, g.out_h), (256, 128));
        let g = geometry(100, 50, &spec(Some(400), None, Fit::Contain), false);
        assert_eq!((g.out_w, g.out_h), (100, 50));
        let g = geometry(100, 50, &spec(Some(400), None, Fit::Contain), true);
        assert_eq!((g.out_w, g.out_h), (400, 200));
    }

    #[test]
    fn cover_crops_the_centre() {
        let g = geometry(400, 200, &spec(Some(100), Some(100), Fit::Cover), false);
        assert_eq!((g.out_w, g.out_h), (100, 100));
        assert_eq!(g.crop, (100.0, 0.0, 200.0, 200.0));
        // Box bigger than the source: same aspect, at source resolution.
        let g = geometry(300, 200, &spec(Some(800), Some(400), Fit::Cover), false);
        assert_eq!((g.out_w, g.out_h), (300, 150));
    }

    #[test]
    fn reduction_keeps_a_source_pixel_per_output_pixel() {
        let thumb = spec(Some(256), Some(256), Fit::Contain);
        // 2048x2500 into 256: 210x256; a 1/8 image (256x313) still covers it, 1/16 does not.
        assert_eq!(max_reduction(2048, 2500, std::slice::from_ref(&thumb), false), 3);
        assert_eq!(max_reduction(512, 512, std::slice::from_ref(&thumb), false), 1);
        assert_eq!(max_reduction(300, 300, std::slice::from_ref(&thumb), false), 0);
        // The full-size sibling decides.
        let full = spec(None, None, Fit::Contain);
        assert_eq!(max_reduction(2048, 2500, &[thumb.clone(), full], false), 0);
        // Cover crops: the shorter side decides.
        let square = spec(Some(128), Some(128), Fit::Cover);
        assert_eq!(max_reduction(2048, 512, std::slice::from_ref(&square), false), 2);
        assert_eq!(max_reduction(100_000, 100_000, std::slice::from_ref(&square), false), MAX_REDUCTION);
        assert_eq!(max_reduction(2048, 2500, &[], false), 0);
        // The same output from level 2 (a quarter of each side): pixel centres line up.
        let g = geometry(2048, 2500, &thumb, false);
        let q = g.at_level(2);
        assert_eq!((q.out_w, q.out_h, q.crop), (g.out_w, g.out_h, (0.375, 0.375, 512.0, 625.0)));
        assert_eq!(level((2048, 2500), (256, 313)), Some(3));
        assert_eq!(level((2048, 2500), (2048, 2500)), Some(0));
        assert_eq!(level((2048, 2500), (250, 313)), None);
        let p = padded(&Pixels { width: 2, height: 1, channels: 1, data: vec![1, 2] });
        assert_eq!((p.width, p.height, p.data), (3, 2, vec![1, 2, 2, 1, 2, 2]));
    }

    #[test]
    fn resize_gray_and_rgb() {
        for channels in [1u8, 3] {
            let (w, h) = (64u32, 32u32);
            let src = Pixels {
                width: w,
                height: h,
                channels,
                data: vec![200; (w * h) as usize * channels as usize],
            };
            let g = geometry(w, h, &spec(Some(16), None, Fit::Contain), false);
            let out = resize(&src, &g).unwrap();
            assert_eq!((out.width, out.height, out.channels), (16, 8, channels));
            assert_eq!(out.data.len(), 16 * 8 * channels as usize);
            assert!(out.data.iter().all(|&v| v == 200), "flat stays flat");
        }
    }
}

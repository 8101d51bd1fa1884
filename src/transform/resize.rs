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

//! Property tests of the transform path: geometry follows the fit rules, outputs decode and carry the right magic.

#![allow(clippy::unwrap_used)]

use orthanc_edge::model::ImageFormat;
use orthanc_edge::transform::spec::{Fit, VariantSpec};
use orthanc_edge::transform::{render, Pixels};
use proptest::prelude::*;

fn decode(format: ImageFormat, bytes: &[u8]) -> (u32, u32) {
    match format {
        ImageFormat::Webp => {
            let img = webp::Decoder::new(bytes).decode().expect("webp decodes");
            (img.width(), img.height())
        }
        _ => {
            let img = image::load_from_memory(bytes).expect("decodes");
            (img.width(), img.height())
        }
    }
}

fn source(w: u32, h: u32, channels: u8) -> Pixels {
    let data = (0..w * h * u32::from(channels)).map(|i| (i * 7 % 251) as u8).collect();
    Pixels { width: w, height: h, channels, data }
}

fn arb_format() -> impl Strategy<Value = ImageFormat> {
    prop_oneof![Just(ImageFormat::Jpeg), Just(ImageFormat::Png), Just(ImageFormat::Webp)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn contain_fits_the_box_and_keeps_aspect(
        sw in 1u32..500, sh in 1u32..500, channels in prop_oneof![Just(1u8), Just(3u8)],
        w in proptest::option::of(1u32..700), h in proptest::option::of(1u32..700),
        format in arb_format(), upscale in any::<bool>(),
    ) {
        let q = (format != ImageFormat::Png).then_some(75);
        let spec = VariantSpec { w, h, fit: Fit::Contain, format, q };
        let bytes = render(&source(sw, sh, channels).compress(), &spec, upscale).unwrap();
        prop_assert!(format.matches_magic(&bytes));
        let (ow, oh) = decode(format, &bytes);
        if let Some(w) = w { prop_assert!(ow <= w.max(1)); }
        if let Some(h) = h { prop_assert!(oh <= h.max(1)); }
        if !upscale { prop_assert!(ow <= sw && oh <= sh); }
        // Aspect ratio within one pixel (on the derived side).
        let aspect_err = (f64::from(oh) - f64::from(ow) * f64::from(sh) / f64::from(sw)).abs()
            .min((f64::from(ow) - f64::from(oh) * f64::from(sw) / f64::from(sh)).abs());
        prop_assert!(aspect_err <= 1.0, "{sw}x{sh} -> {ow}x{oh}");
        // One side touches the box (or the source, when not upscaling).
        let touches = w == Some(ow) || h == Some(oh) || (w.is_none() && h.is_none())
            || (!upscale && (ow == sw || oh == sh))
            || ow.max(oh) >= orthanc_edge::transform::resize::MAX_SIDE - 1;
        prop_assert!(touches, "{sw}x{sh} box {w:?}x{h:?} -> {ow}x{oh}");
    }

    #[test]
    fn cover_fills_the_box_exactly_when_the_source_is_big_enough(
        sw in 1u32..500, sh in 1u32..500, w in 1u32..400, h in 1u32..400,
        format in arb_format(), upscale in any::<bool>(),
    ) {
        let q = (format != ImageFormat::Png).then_some(75);
        let spec = VariantSpec { w: Some(w), h: Some(h), fit: Fit::Cover, format, q };
        let bytes = render(&source(sw, sh, 1).compress(), &spec, upscale).unwrap();
        prop_assert!(format.matches_magic(&bytes));
        let (ow, oh) = decode(format, &bytes);
        if upscale || (w <= sw && h <= sh) {
            prop_assert_eq!((ow, oh), (w, h));
        } else {
            // Same shape as the box, no bigger than the source.
            prop_assert!(ow <= sw && oh <= sh);
            let aspect_err = (f64::from(oh) - f64::from(ow) * f64::from(h) / f64::from(w)).abs()
                .min((f64::from(ow) - f64::from(oh) * f64::from(w) / f64::from(h)).abs());
            prop_assert!(aspect_err <= 1.0, "{sw}x{sh} box {w}x{h} -> {ow}x{oh}");
        }
    }
}

//! What a request asks for (`PreviewSpec`, `Output`) and the cache keys it is stored under.

use crate::cache::CacheKey;
use crate::ids::OrthancId;
use crate::model::{ImageFormat, Rendering};
use crate::transform::VariantSpec;

/// What to serve: one frame of one instance, in one output. Built only from validated input.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PreviewSpec {
    pub instance: OrthancId,
    pub frame: u32,
    pub output: Output,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Output {
    /// Orthanc's own `/preview` bytes, as Orthanc encodes them.
    Orthanc { format: ImageFormat, quality: Option<u8> },
    /// Made at the edge from the cached lossless source of `rendering`.
    Edge { rendering: Rendering, variant: VariantSpec },
}

fn rendering_tag(r: &Rendering) -> String {
    // `+ 0.0` turns -0 into 0 so that one window has one name.
    match r {
        Rendering::Preview => "preview".to_owned(),
        Rendering::Rendered { window: None } => "rendered".to_owned(),
        Rendering::Rendered { window: Some(w) } => {
            format!("rendered.wc{}.ww{}", w.center + 0.0, w.width + 0.0)
        }
        Rendering::Dicomweb { window, region } => {
            let mut tag = "dicomweb".to_owned();
            if let Some(w) = window {
                tag.push_str(&format!(".wc{}.ww{}.{}", w.center + 0.0, w.width + 0.0, w.function.name()));
            }
            if let Some(r) = region {
                let side = |v: Option<u32>| v.map_or("-".to_owned(), |v| v.to_string());
                let flips = format!("{}{}", if r.flip_x { "x" } else { "" }, if r.flip_y { "y" } else { "" });
                tag.push_str(&format!(".vp{},{},{},{}{flips}", r.x, r.y, side(r.w), side(r.h)));
            }
            tag
        }
    }
}

impl PreviewSpec {
    pub fn cache_key(&self) -> CacheKey {
        let variant = match &self.output {
            Output::Orthanc { format: ImageFormat::Jpeg, quality: Some(q) } => format!("jpeg.q{q}"),
            Output::Orthanc { format, .. } => format.name().to_owned(),
            Output::Edge { rendering, variant } => edge_variant(rendering, variant),
        };
        CacheKey { instance: self.instance.clone(), frame: self.frame, variant }
    }
}

/// The key of an edge-made variant of one frame (what `cache_key` gives for `Output::Edge`).
pub(super) fn edge_key(
    instance: &OrthancId,
    frame: u32,
    rendering: &Rendering,
    variant: &VariantSpec,
) -> CacheKey {
    CacheKey { instance: instance.clone(), frame, variant: edge_variant(rendering, variant) }
}

fn edge_variant(rendering: &Rendering, variant: &VariantSpec) -> String {
    format!("{}.{}", rendering_tag(rendering), variant.canonical())
}

/// The key of a frame's decoded samples (the DICOMweb pipeline's input, `dicom::Frame`).
pub(super) fn frame_key(instance: &OrthancId, frame: u32) -> CacheKey {
    CacheKey { instance: instance.clone(), frame, variant: "src.frame".to_owned() }
}

/// The key of a frame's lossless source in one rendering.
pub(super) fn source_key(instance: &OrthancId, frame: u32, rendering: &Rendering) -> CacheKey {
    CacheKey { instance: instance.clone(), frame, variant: format!("src.{}", rendering_tag(rendering)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Region, VoiFunction, VoiWindow, Window};
    use crate::transform::spec::Fit;

    #[test]
    fn cache_keys_are_canonical() {
        let id = OrthancId::parse("8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe").unwrap();
        let key = |output| PreviewSpec { instance: id.clone(), frame: 0, output }.cache_key().variant;
        assert_eq!(key(Output::Orthanc { format: ImageFormat::Png, quality: None }), "png");
        assert_eq!(key(Output::Orthanc { format: ImageFormat::Png, quality: Some(50) }), "png");
        assert_eq!(key(Output::Orthanc { format: ImageFormat::Jpeg, quality: None }), "jpeg");
        assert_eq!(key(Output::Orthanc { format: ImageFormat::Jpeg, quality: Some(50) }), "jpeg.q50");
        let v =
            VariantSpec { w: Some(128), h: None, fit: Fit::Contain, format: ImageFormat::Webp, q: Some(80) };
        assert_eq!(
            key(Output::Edge { rendering: Rendering::Preview, variant: v.clone() }),
            "preview.w128.h-.contain.webp.q80"
        );
        let w = Window { center: -0.0, width: 400.5 };
        assert_eq!(
            key(Output::Edge { rendering: Rendering::Rendered { window: Some(w) }, variant: v }),
            "rendered.wc0.ww400.5.w128.h-.contain.webp.q80"
        );
        assert_eq!(source_key(&id, 2, &Rendering::Preview).variant, "src.preview");
        let region = Region { x: 1, y: 2, w: None, h: Some(9), flip_x: true, flip_y: false };
        let window = VoiWindow { center: 40.5, width: 400.0, function: VoiFunction::Sigmoid };
        let dicomweb = Rendering::Dicomweb { window: Some(window), region: Some(region) };
        assert_eq!(source_key(&id, 0, &dicomweb).variant, "src.dicomweb.wc40.5.ww400.sigmoid.vp1,2,-,9x");
    }
}

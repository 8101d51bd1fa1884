//! DICOMweb content negotiation (PS3.18 8.7.3.5): the rendered media type an `Accept` value
//! prefers, with its q-values honoured.

use crate::model::ImageFormat;

/// The formats the edge renders, in the order that breaks a tie nobody's order breaks: JPEG first
/// (the DICOMweb default), then PNG, then WebP.
const RENDERED: [ImageFormat; 3] = [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp];

/// How well a media range matches a format: exact beats `image/*` beats `*/*` (RFC 9110 12.5.1).
fn specificity(range: &str, format: ImageFormat) -> Option<u8> {
    match range {
        "*/*" => Some(0),
        "image/*" => Some(1),
        r if r == format.mime() => Some(2),
        // `image/jpg` is a common misspelling; Orthanc takes it too.
        "image/jpg" if format == ImageFormat::Jpeg => Some(2),
        _ => None,
    }
}

/// The format to render for `accept`: the one with the highest q (each format's q is that of
/// its most specific range); on a tie, the one whose range comes first in the header, then
/// [`RENDERED`]'s order. An empty header is `*/*`. `None`: every format has q = 0 or no range
/// names one (a 406). A range with a malformed q is ignored.
pub fn rendered_format(accept: &str) -> Option<ImageFormat> {
    if accept.trim().is_empty() {
        return Some(ImageFormat::Jpeg);
    }
    let ranges: Vec<(String, f32)> = accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let range = parts.next()?.to_ascii_lowercase();
            let mut q = 1.0f32;
            for p in parts {
                if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                    q = v.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q))?;
                }
            }
            (!range.is_empty()).then_some((range, q))
        })
        .collect();
    let mut best: Option<(f32, usize, usize, ImageFormat)> = None;
    for (order, format) in RENDERED.into_iter().enumerate() {
        // This format's q: that of its most specific range (the first such range if repeated).
        let mut mine: Option<(u8, f32, usize)> = None;
        for (pos, (range, q)) in ranges.iter().enumerate() {
            if let Some(spec) = specificity(range, format) {
                if mine.is_none_or(|(s, _, _)| spec > s) {
                    mine = Some((spec, *q, pos));
                }
            }
        }
        let Some((_, q, pos)) = mine.filter(|(_, q, _)| *q > 0.0) else { continue };
        let better = match best {
            None => true,
            Some((bq, bpos, border, _)) => q > bq || (q == bq && (pos, order) < (bpos, border)),
        };
        if better {
            best = Some((q, pos, order, format));
        }
    }
    best.map(|(_, _, _, f)| f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ImageFormat::{Jpeg, Png, Webp};

    #[test]
    fn q_values_specificity_and_refusal() {
        let f = rendered_format;
        assert_eq!(f(""), Some(Jpeg));
        assert_eq!(f("*/*"), Some(Jpeg));
        assert_eq!(f("image/*"), Some(Jpeg));
        assert_eq!(f("image/png"), Some(Png));
        assert_eq!(f("IMAGE/PNG"), Some(Png));
        assert_eq!(f("image/webp"), Some(Webp));
        assert_eq!(f("image/png, image/jpeg"), Some(Png), "a tie goes to the first listed");
        assert_eq!(f("image/jpeg;q=0.5, image/png"), Some(Png));
        assert_eq!(f("image/png;q=0.1, */*;q=0.9"), Some(Jpeg), "JPEG through */* outranks PNG");
        assert_eq!(f("image/jpeg;q=0, */*"), Some(Png), "JPEG refused, the next default");
        assert_eq!(f("image/jpeg;q=0, image/*;q=0.2"), Some(Png));
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert_eq!(f(chrome), Some(Webp));
        assert_eq!(f("image/gif"), None);
        assert_eq!(f("application/dicom"), None);
        assert_eq!(f("image/png;q=0"), None);
        assert_eq!(f("*/*;q=0"), None);
        assert_eq!(f("image/png;q=2, image/jpeg;q=0.3"), Some(Jpeg), "a malformed q is ignored");
        assert_eq!(f("image/jpg"), Some(Jpeg));
        assert_eq!(f("multipart/related; type=\"image/png\""), None);
    }
}

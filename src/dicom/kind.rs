//! Instances without an image (SR, PDF, ECG, RT plan, video, ...): which kind, for a placeholder.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::parse::Parsed;
use super::DicomError;

/// `Ok` when the instance has pixels the edge could decode; else `NoPixelData` with its kind.
/// Video (MPEG, HEVC transfer syntaxes) has pixel data, but no frame the edge can render.
pub(super) fn ensure_pixels(parsed: &Parsed) -> Result<(), DicomError> {
    let ds = parsed.dataset();
    if is_video_syntax(&parsed.ts) {
        return Err(DicomError::NoPixelData { kind: "video" });
    }
    let has_pixels = [tags::PIXEL_DATA, tags::FLOAT_PIXEL_DATA, tags::DOUBLE_FLOAT_PIXEL_DATA]
        .into_iter()
        .any(|t| ds.get(t).is_some());
    if has_pixels {
        Ok(())
    } else {
        Err(DicomError::NoPixelData { kind: kind_of(ds) })
    }
}

/// MPEG-2, MPEG-4 AVC/H.264 and HEVC/H.265 transfer syntaxes (`1.2.840.10008.1.2.4.100` to `.108`).
fn is_video_syntax(ts: &str) -> bool {
    ts.strip_prefix("1.2.840.10008.1.2.4.1")
        .and_then(|rest| rest.get(..2))
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| n <= 8)
}

fn text(ds: &InMemDicomObject, tag: dicom_core::Tag) -> String {
    ds.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches(|c: char| c.is_whitespace() || c == '\0').to_uppercase())
        .unwrap_or_default()
}

/// The kind of a pixel-less instance, from its SOP class, else its modality.
fn kind_of(ds: &InMemDicomObject) -> &'static str {
    const STORAGE: &str = "1.2.840.10008.5.1.4.1.1.";
    let sop = text(ds, tags::SOP_CLASS_UID);
    if let Some(class) = sop.strip_prefix(STORAGE) {
        let kind = match class {
            "88.59" => Some("ko"),
            c if c.starts_with("88.") => Some("sr"),
            c if c.starts_with("104.") => Some("pdf"),
            c if c.starts_with("9.") => Some("ecg"),
            "481.3" => Some("rtstruct"),
            "481.5" | "481.8" => Some("rtplan"),
            c if c.starts_with("11.") => Some("pr"),
            c if c.starts_with("77.1.") && c.ends_with(".1.1") => Some("video"),
            _ => None,
        };
        if let Some(kind) = kind {
            return kind;
        }
    }
    crate::model::no_pixel_kind(&text(ds, tags::MODALITY)).unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_syntaxes() {
        assert!(is_video_syntax("1.2.840.10008.1.2.4.100"));
        assert!(is_video_syntax("1.2.840.10008.1.2.4.102.1"));
        assert!(is_video_syntax("1.2.840.10008.1.2.4.108"));
        assert!(!is_video_syntax("1.2.840.10008.1.2.4.90"));
        assert!(!is_video_syntax("1.2.840.10008.1.2.4.201"));
        assert!(!is_video_syntax("1.2.840.10008.1.2.1"));
    }
}

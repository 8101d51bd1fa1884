//! The domain's words, used by every layer and depending on none: the levels of Orthanc's
//! hierarchy, Orthanc's renderings and windows, image formats, and what a credential may do.

use serde::{Deserialize, Serialize};

/// Which kind of resource an id names: the three levels of Orthanc's hierarchy the edge serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Instance,
    Series,
    Study,
}

impl Level {
    /// The lowercase word (`instance`, `series`, `study`): headers and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Instance => "instance",
            Level::Series => "series",
            Level::Study => "study",
        }
    }

    /// The path segment of Orthanc's REST API (`instances`, `series`, `studies`), which the
    /// edge's own purge routes use too.
    pub fn orthanc_path(self) -> &'static str {
        match self {
            Level::Instance => "instances",
            Level::Series => "series",
            Level::Study => "studies",
        }
    }

    /// The level a path segment (`instances`, `series`, `studies`) names.
    pub fn from_path(segment: &str) -> Option<Self> {
        [Level::Instance, Level::Series, Level::Study].into_iter().find(|l| l.orthanc_path() == segment)
    }

    /// The `Type` Orthanc's `/tools/lookup` answers for this level.
    pub fn orthanc_type(self) -> &'static str {
        match self {
            Level::Instance => "Instance",
            Level::Series => "Series",
            Level::Study => "Study",
        }
    }
}

/// Which of Orthanc's renderings an image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Rendering {
    /// `/preview`: full dynamic range.
    Preview,
    /// `/rendered`: the instance's own window, or the given one.
    Rendered { window: Option<Window> },
    /// DICOMweb `/rendered` and `/thumbnail` (PS3.18): the grayscale pipeline of PS3.3 C.11
    /// (Modality LUT, VOI LUT or window, MONOCHROME1), the given window instead of the
    /// instance's, and the viewport's source region (crop and flip) applied first.
    Dicomweb { window: Option<VoiWindow>, region: Option<Region> },
}

/// A DICOMweb `window=center,width,function`, as Orthanc's DICOMweb plugin parses it (`float`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VoiWindow {
    pub center: f32,
    pub width: f32,
    pub function: VoiFunction,
}

/// VOI LUT Function (0028,1056), PS3.3 C.11.2.1.2-3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VoiFunction {
    Linear,
    LinearExact,
    Sigmoid,
}

impl VoiFunction {
    /// The name in a DICOMweb `window` (`linear`, `linear-exact`, `sigmoid`).
    pub fn name(self) -> &'static str {
        match self {
            VoiFunction::Linear => "linear",
            VoiFunction::LinearExact => "linear-exact",
            VoiFunction::Sigmoid => "sigmoid",
        }
    }
}

/// The source region of a 6-argument DICOMweb `viewport` (`sx,sy,sw,sh`): from `(x, y)`, `w`
/// by `h` pixels (to the image's edge when `None` or past it); a negative `sw`/`sh` flips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub w: Option<u32>,
    pub h: Option<u32>,
    pub flip_x: bool,
    pub flip_y: bool,
}

/// A window setting for `/rendered`, validated finite (width > 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub center: f64,
    pub width: f64,
}

/// Encoder qualities (JPEG, WebP, Orthanc's `quality`): an integer from 1 to 100.
pub const QUALITY: std::ops::RangeInclusive<u8> = 1..=100;

/// An encoded image format: what the edge serves, and (PNG and JPEG) what Orthanc's `/preview`
/// makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Jpeg,
    Png,
    Webp,
    /// PAM (`P7`), 8-bit grey or RGB: what Orthanc answers `Accept: image/x-portable-arbitrarymap`.
    Pam,
}

impl ImageFormat {
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Pam => "image/x-portable-arbitrarymap",
        }
    }

    /// The lowercase name: cache keys, logs, error messages.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
            ImageFormat::Pam => "pam",
        }
    }

    /// Does `body` start like this format?
    pub fn matches_magic(self, body: &[u8]) -> bool {
        match self {
            ImageFormat::Jpeg => body.starts_with(&[0xFF, 0xD8, 0xFF]),
            ImageFormat::Png => body.starts_with(b"\x89PNG\r\n\x1a\n"),
            ImageFormat::Webp => body.len() > 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WEBP",
            ImageFormat::Pam => body.starts_with(b"P7\n"),
        }
    }

    /// Can Orthanc's `/preview` encode this format? (Asked for WebP, Orthanc answers 404.)
    pub fn orthanc_encodes(self) -> bool {
        matches!(self, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Pam)
    }
}

/// The kind of document a series of this modality holds when it has no pixel data (`sr`, `pdf`,
/// `ecg`, `rtplan`, `rtstruct`, `ko`, `pr`): the names of placeholder tiles.
pub fn no_pixel_kind(modality: &str) -> Option<&'static str> {
    Some(match modality.trim() {
        "SR" => "sr",
        "DOC" => "pdf",
        "ECG" | "HD" => "ecg",
        "RTPLAN" => "rtplan",
        "RTSTRUCT" => "rtstruct",
        "KO" => "ko",
        "PR" => "pr",
        _ => return None,
    })
}

/// What a credential allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read preview images.
    Preview,
    /// Manage the edge (purge). Does not imply `Preview`: an operator key reads no images.
    Admin,
    /// Start and watch warm-up jobs.
    Warm,
    /// Mint session tokens and signed links (`/auth/sign`, `/auth/session`): an app backend.
    Mint,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Preview, Scope::Admin, Scope::Warm, Scope::Mint];
}

/// A scope by its name in config and claims; an unknown one is refused with the valid names
/// (serde's own message, through the environment's JSON, named the enum's variants instead).
impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Scope::ALL.into_iter().find(|s| s.to_string() == name).ok_or_else(|| {
            let valid: Vec<String> = Scope::ALL.iter().map(|s| s.to_string()).collect();
            serde::de::Error::custom(format!("unknown scope {name:?}: the scopes are {}", valid.join(", ")))
        })
    }
}

/// Lowercase, as in config and token claims (`preview`, `admin`, `warm`, `mint`).
impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Preview => "preview",
            Scope::Admin => "admin",
            Scope::Warm => "warm",
            Scope::Mint => "mint",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_and_names() {
        assert!(ImageFormat::Png.matches_magic(b"\x89PNG\r\n\x1a\n...."));
        assert!(ImageFormat::Jpeg.matches_magic(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(ImageFormat::Webp.matches_magic(b"RIFF\0\0\0\0WEBPVP8 "));
        assert!(!ImageFormat::Webp.matches_magic(b"RIFF\0\0\0\0WAVE"));
        assert!(ImageFormat::Png.orthanc_encodes());
        assert!(!ImageFormat::Webp.orthanc_encodes());
        assert_eq!(Level::from_path("studies"), Some(Level::Study));
        assert_eq!(Level::from_path("study"), None);
        assert_eq!(Scope::Mint.to_string(), "mint");
        assert_eq!(serde_json::from_str::<Scope>("\"warm\"").unwrap(), Scope::Warm);
        let e = serde_json::from_str::<Scope>("\"previews\"").unwrap_err().to_string();
        assert!(e.contains("unknown scope \"previews\": the scopes are preview, admin, warm, mint"), "{e}");
        assert_eq!(no_pixel_kind("SR"), Some("sr"));
        assert_eq!(no_pixel_kind("CT"), None);
    }
}

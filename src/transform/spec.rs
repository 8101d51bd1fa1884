//! Variant specs: every route's image parameters, the presets-only limit, canonical windows and variant names.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, IntoDeserializer as _};
use serde::{Deserialize, Serialize};

use super::dicomweb::{self, Viewport};
use crate::config::{invalid, Config, ConfigError, PresetConfig, TransformConfig};
use crate::model::{ImageFormat, Rendering, VoiFunction, Window, QUALITY};

/// How a size box is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Fit inside the box, keep aspect ratio.
    Contain,
    /// Fill the box exactly, cropping the centre.
    Cover,
}

/// Requested output encoding (`auto` is resolved against Accept before keying).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatChoice {
    Jpeg,
    Png,
    Webp,
    Auto,
}

/// A named variant from config (`[presets.NAME]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    #[serde(default)]
    pub w: Option<u32>,
    #[serde(default)]
    pub h: Option<u32>,
    #[serde(default)]
    pub fit: Option<Fit>,
    #[serde(default)]
    pub format: Option<FormatChoice>,
    #[serde(default)]
    pub q: Option<u8>,
}

/// Limits from `[transform]`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub allow_arbitrary: bool,
    pub max_dimension: u32,
    pub default_quality: u8,
}

impl Limits {
    pub fn from_config(t: &TransformConfig) -> Self {
        Self {
            allow_arbitrary: t.allow_arbitrary,
            max_dimension: t.max_dimension,
            default_quality: t.default_quality,
        }
    }
}

/// A fully resolved variant: what the edge will make from the source pixels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub struct VariantSpec {
    pub w: Option<u32>,
    pub h: Option<u32>,
    pub fit: Fit,
    pub format: ImageFormat,
    /// Quality for lossy formats; `None` for PNG.
    pub q: Option<u8>,
}

impl VariantSpec {
    /// One name per distinct output, defaults filled in: `w128.h-.contain.jpeg.q80`.
    pub fn canonical(&self) -> String {
        let dim = |d: Option<u32>| d.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let fit = match self.fit {
            Fit::Contain => "contain",
            Fit::Cover => "cover",
        };
        let q = self.q.map_or_else(String::new, |q| format!(".q{q}"));
        format!("w{}.h{}.{fit}.{}{q}", dim(self.w), dim(self.h), self.format.name())
    }
}

/// Raw variant parameters as they came in (query or preset), before defaults and limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VariantParams {
    pub w: Option<u32>,
    pub h: Option<u32>,
    pub fit: Option<Fit>,
    pub format: Option<FormatChoice>,
    pub q: Option<u8>,
}

impl From<&Preset> for VariantParams {
    fn from(p: &Preset) -> Self {
        Self { w: p.w, h: p.h, fit: p.fit, format: p.format, q: p.q }
    }
}

/// A parameter problem, naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{param}`: {why}")]
pub struct ParamError {
    pub param: String,
    pub why: String,
}

pub(super) fn param_err(param: &str, why: impl Into<String>) -> ParamError {
    ParamError { param: param.to_owned(), why: why.into() }
}

/// Parse variant parameters from decoded query pairs (unknown and repeated keys are refused earlier).
/// Returns `None` when no variant parameter is present.
pub fn parse_params(
    pairs: &[(String, String)],
    presets: &BTreeMap<String, Preset>,
    limits: &Limits,
) -> Result<Option<VariantParams>, ParamError> {
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let explicit = ["w", "h", "fit", "format", "q"].iter().any(|k| get(k).is_some());
    if let Some(name) = get("preset") {
        if explicit {
            return Err(param_err("preset", "cannot be combined with w, h, fit, format or q"));
        }
        let preset = presets
            .get(name)
            .ok_or_else(|| param_err("preset", format!("no preset named {:?}", truncate(name))))?;
        return Ok(Some(VariantParams::from(preset)));
    }
    if !explicit {
        return Ok(None);
    }
    if let Some(which) = ["w", "h", "fit", "format", "q"].into_iter().find(|k| get(k).is_some()) {
        presets_only(limits, which, "use ?preset=NAME")?;
    }
    let dim = |k: &str| -> Result<Option<u32>, ParamError> {
        get(k)
            .map(|v| {
                v.parse::<u32>().ok().filter(|d| (1..=limits.max_dimension).contains(d)).ok_or_else(|| {
                    param_err(k, format!("must be an integer from 1 to {}", limits.max_dimension))
                })
            })
            .transpose()
    };
    let fit = get("fit")
        .map(|v| match v {
            "contain" => Ok(Fit::Contain),
            "cover" => Ok(Fit::Cover),
            _ => Err(param_err("fit", "must be contain or cover")),
        })
        .transpose()?;
    let format = get("format")
        .map(|v| match v {
            "jpeg" | "jpg" => Ok(FormatChoice::Jpeg),
            "png" => Ok(FormatChoice::Png),
            "webp" => Ok(FormatChoice::Webp),
            "auto" => Ok(FormatChoice::Auto),
            _ => Err(param_err("format", "must be jpeg, png, webp or auto")),
        })
        .transpose()?;
    let q = get("q").map(|v| parse_quality("q", v)).transpose()?;
    Ok(Some(VariantParams { w: dim("w")?, h: dim("h")?, fit, format, q }))
}

/// The presets-only rule (`transform.allow_arbitrary = false`), for every parameter that would
/// make a new variant: `w`, `h`, `fit`, `format`, `q`, `quality`, the window, a DICOMweb `quality`.
fn presets_only(limits: &Limits, param: &str, hint: &str) -> Result<(), ParamError> {
    if limits.allow_arbitrary {
        return Ok(());
    }
    Err(param_err(
        param,
        format!("only presets are allowed here (transform.allow_arbitrary = false): {hint}"),
    ))
}

/// Significant digits a window width keeps; the center is rounded to the same decimal place.
pub const WINDOW_DIGITS: usize = 4;

/// Canonical window values, so that near-identical windows are one cache entry and one Orthanc
/// render: the width to [`WINDOW_DIGITS`] significant digits, the center to the same decimal
/// place (it moves by at most 1/2000 of the width: under 0.13 of an 8-bit grey level), -0 → 0.
/// Values that already have that precision are unchanged (`40`/`400`, `-600`/`1500`, `400.5`).
pub fn canonical_window(center: f64, width: f64) -> Window {
    // `{:.3e}` rounds to 4 significant digits and says which decimal place that is.
    let sci = format!("{width:.prec$e}", prec = WINDOW_DIGITS - 1);
    let exp = sci.split_once('e').and_then(|(_, e)| e.parse::<i32>().ok()).unwrap_or(0);
    let width = sci.parse::<f64>().unwrap_or(width);
    let place = exp - (WINDOW_DIGITS as i32 - 1);
    let center = if place >= 0 {
        let step = 10f64.powi(place);
        (center / step).round() * step
    } else {
        // Decimal rounding through the formatter: `40.1000001` → "40.1" → the f64 nearest 40.1.
        let decimals = usize::try_from(-place).unwrap_or(0);
        format!("{center:.decimals$}").parse::<f64>().unwrap_or(center)
    };
    Window { center: center + 0.0, width: width + 0.0 }
}

/// `window-center` and `window-width` come together: finite numbers, width > 0; canonical.
fn parse_window(query: &[(String, String)]) -> Result<Option<Window>, ParamError> {
    let num = |k: &str| -> Result<Option<f64>, ParamError> {
        lookup(query, k)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && x.abs() <= 1e7)
                    .ok_or_else(|| param_err(k, "must be a number"))
            })
            .transpose()
    };
    match (num("window-center")?, num("window-width")?) {
        (None, None) => Ok(None),
        (Some(center), Some(width)) if width > 0.0 => Ok(Some(canonical_window(center, width))),
        (Some(_), Some(_)) => Err(param_err("window-width", "must be greater than 0")),
        (Some(_), None) => Err(param_err("window-width", "is required with `window-center`")),
        (None, Some(_)) => Err(param_err("window-center", "is required with `window-width`")),
    }
}

/// `quality`, `q` and DICOMweb `quality`: an integer in [`QUALITY`].
fn parse_quality(param: &str, v: &str) -> Result<u8, ParamError> {
    v.parse::<u8>()
        .ok()
        .filter(|q| QUALITY.contains(q))
        .ok_or_else(|| param_err(param, "must be an integer from 1 to 100"))
}

fn lookup<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The presets and limits every route's variant goes through.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub presets: &'a BTreeMap<String, Preset>,
    pub limits: &'a Limits,
    /// The preset of a DICOMweb thumbnail asked for without a viewport (`grid.thumbnail_preset`).
    pub thumbnail_preset: &'a str,
    /// `render.mode = orthanc`: Orthanc's `/rendered` makes DICOMweb images, so only what it can
    /// do is accepted (a linear window, no source region).
    pub orthanc_renders: bool,
}

/// What one request asks for, as its route names it (query values already split, not checked).
#[derive(Debug, Clone, Copy)]
pub enum Ask<'a> {
    /// `/instances/{id}/preview|rendered`, their `/frames/{n}/` forms, `/series/{id}/preview`:
    /// the decoded query. `default_format` is Orthanc's choice from Accept (PNG or JPEG).
    Native { query: &'a [(String, String)], rendered: bool, default_format: ImageFormat, accept: &'a str },
    /// DICOMweb `thumbnail` and `rendered`: `viewport`, `window` and `quality` as sent, the
    /// format chosen from `accept`/Accept.
    DicomWeb {
        viewport: Option<&'a str>,
        window: Option<&'a str>,
        quality: Option<&'a str>,
        thumbnail: bool,
        format: ImageFormat,
    },
}

/// What to serve for a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Orthanc's own `/preview` bytes in `format` (PNG or JPEG), at its JPEG `quality` if given.
    Orthanc { format: ImageFormat, quality: Option<u8> },
    /// Made at the edge; `negotiated`: the bytes depend on Accept.
    Edge { source: Rendering, variant: VariantSpec, negotiated: bool },
}

/// The one place a request becomes a variant, for every route: parameters checked, defaults
/// filled, presets-only enforced (see README "Presets-only mode").
pub fn plan(ask: &Ask, rules: &Rules) -> Result<Plan, ParamError> {
    let limits = rules.limits;
    match *ask {
        Ask::Native { query, rendered, default_format, accept } => {
            let mut variant = parse_params(query, rules.presets, limits)?;
            let mut quality = lookup(query, "quality").map(|q| parse_quality("quality", q)).transpose()?;
            if quality.is_some() {
                presets_only(limits, "quality", "Orthanc's default JPEG quality applies")?;
            }
            if rendered {
                // Orthanc's own /rendered parameters are the variant they name.
                if let Some(v) = orthanc_rendered(query, variant.is_some(), quality, limits)? {
                    (variant, quality) = (Some(v), None);
                }
            }
            let window = if rendered { parse_window(query)? } else { None };
            if window.is_some() {
                presets_only(limits, "window-center", "/rendered uses the instance's own window")?;
            }
            let source = if rendered { Rendering::Rendered { window } } else { Rendering::Preview };
            match (source, variant) {
                (Rendering::Preview, None) => Ok(Plan::Orthanc { format: default_format, quality }),
                (_, Some(_)) if quality.is_some() => {
                    Err(param_err("quality", "with variant parameters use `q`"))
                }
                (source, v) => {
                    let (variant, negotiated) =
                        resolve(&v.unwrap_or_default(), default_format, accept, limits);
                    Ok(Plan::Edge { source, variant, negotiated })
                }
            }
        }
        Ask::DicomWeb { viewport, window, quality, thumbnail, format } => {
            plan_dicomweb(viewport, window, quality, thumbnail, format, rules)
        }
    }
}

/// DICOMweb: the PS3.18 rendering (`Rendering::Dicomweb`: the instance's window, or `window`; the
/// viewport's source region), sized to fit the viewport; a thumbnail without one is the grid
/// thumbnail's size, a rendering without one is full size.
fn plan_dicomweb(
    viewport: Option<&str>,
    window: Option<&str>,
    quality: Option<&str>,
    thumbnail: bool,
    format: ImageFormat,
    rules: &Rules,
) -> Result<Plan, ParamError> {
    let limits = rules.limits;
    let quality = quality.map(|q| parse_quality("quality", q)).transpose()?;
    let viewport = viewport.map(|v| dicomweb::parse_viewport(v, limits.max_dimension)).transpose()?;
    let window = window.map(dicomweb::parse_window).transpose()?;
    let region = viewport.and_then(|v| v.region);
    if rules.orthanc_renders {
        if window.is_some_and(|w| w.function != VoiFunction::Linear) {
            return Err(param_err("window", "render.mode = orthanc renders linear windows only"));
        }
        if region.is_some() {
            return Err(param_err("viewport", "a source region needs render.mode = edge or fallback"));
        }
    }
    let size = viewport.filter(|v| v.w.is_some() || v.h.is_some());
    let thumb = rules.presets.get(rules.thumbnail_preset);
    let params = if limits.allow_arbitrary {
        let (w, h) = match (size, thumbnail) {
            (Some(v), _) => (v.w, v.h),
            (None, true) => {
                (Some(thumb.and_then(|p| p.w).unwrap_or(128)), Some(thumb.and_then(|p| p.h).unwrap_or(128)))
            }
            (None, false) => (None, None),
        };
        // The format is the negotiated one (below), a preset's included.
        VariantParams { w, h, fit: Some(Fit::Contain), format: None, q: quality }
    } else {
        if quality.is_some() {
            presets_only(limits, "quality", "the preset's quality applies")?;
        }
        if window.is_some() {
            presets_only(limits, "window", "the instance's own window applies")?;
        }
        if region.is_some() {
            presets_only(limits, "viewport", "give `vw,vh` only, no source region")?;
        }
        let preset =
            match size {
                Some(vp) => Some(preset_for_viewport(rules.presets, vp)?),
                None if thumbnail => Some(thumb.ok_or_else(|| {
                    param_err("viewport", "required: grid.thumbnail_preset names no preset")
                })?),
                None => None,
            };
        VariantParams { format: None, ..preset.map(VariantParams::from).unwrap_or_default() }
    };
    let (variant, _) = resolve(&params, format, "", limits);
    Ok(Plan::Edge { source: Rendering::Dicomweb { window, region }, variant, negotiated: false })
}

/// Orthanc's `/rendered` sizing, `width` and `height` (fit inside, as Orthanc; over
/// `transform.max_dimension` clamped to it) and `smooth` (taken and ignored: the edge always
/// resamples smoothly), with `quality`: the variant `w`, `h`, `q` name, so they share its cache
/// entry. `None` when the request uses none of them (or only `quality` on its own, without a
/// variant: then it is the JPEG quality of the full-size image, as `q`).
fn orthanc_rendered(
    query: &[(String, String)],
    has_variant: bool,
    quality: Option<u8>,
    limits: &Limits,
) -> Result<Option<VariantParams>, ParamError> {
    let side = |k: &str| -> Result<Option<u32>, ParamError> {
        lookup(query, k)
            .map(|v| {
                v.parse::<u32>()
                    .map(|d| (d > 0).then(|| d.min(limits.max_dimension)))
                    .map_err(|_| param_err(k, "must be an integer (0: not given, as Orthanc)"))
            })
            .transpose()
            .map(Option::flatten)
    };
    let (w, h) = (side("width")?, side("height")?);
    if let Some(v) = lookup(query, "smooth") {
        if !matches!(v, "0" | "1" | "true" | "false") {
            return Err(param_err("smooth", "must be 0, 1, true or false"));
        }
    }
    if w.is_none() && h.is_none() {
        return Ok(
            (quality.is_some() && !has_variant).then(|| VariantParams { q: quality, ..Default::default() })
        );
    }
    if let Some(which) = ["width", "height"].into_iter().find(|k| lookup(query, k).is_some()) {
        presets_only(limits, which, "use ?preset=NAME")?;
    }
    if has_variant {
        return Err(param_err(
            "width",
            "Orthanc's width/height cannot be combined with w, h, fit, format, q or preset",
        ));
    }
    Ok(Some(VariantParams { w, h, fit: Some(Fit::Contain), format: None, q: quality }))
}

/// Presets-only DICOMweb: the largest preset (with both `w` and `h`) that fits inside the
/// viewport, as PS3.18 asks; for a viewport smaller than every preset, the smallest preset (a
/// viewer scales it down) rather than a broken image.
fn preset_for_viewport(presets: &BTreeMap<String, Preset>, vp: Viewport) -> Result<&Preset, ParamError> {
    // A side left empty does not bound the preset.
    let (vw, vh) = (vp.w.unwrap_or(u32::MAX), vp.h.unwrap_or(u32::MAX));
    let boxed = || presets.values().filter_map(|p| Some((u64::from(p.w?) * u64::from(p.h?), p)));
    let inside = boxed()
        .filter(|(_, p)| p.w.is_some_and(|w| w <= vw) && p.h.is_some_and(|h| h <= vh))
        .max_by_key(|(area, _)| *area);
    inside.or_else(|| boxed().min_by_key(|(area, _)| *area)).map(|(_, p)| p).ok_or_else(|| {
        param_err("viewport", "no preset has both `w` and `h` to serve it (presets-only mode)")
    })
}

/// Does this Accept header allow WebP (listed explicitly with a non-zero q)?
pub fn accepts_webp(accept: &str) -> bool {
    accept.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let mime = parts.next().unwrap_or("");
        let zero = parts.any(|p| {
            p.strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()).is_some_and(|q| q <= 0.0)
        });
        mime.eq_ignore_ascii_case("image/webp") && !zero
    })
}

/// Fill defaults and resolve the format. `default_format` is what a request without
/// `format` gets; `accept` resolves `auto`. Returns the spec and whether it depends on Accept.
pub fn resolve(
    params: &VariantParams,
    default_format: ImageFormat,
    accept: &str,
    limits: &Limits,
) -> (VariantSpec, bool) {
    let (format, negotiated) = match params.format {
        Some(FormatChoice::Jpeg) => (ImageFormat::Jpeg, false),
        Some(FormatChoice::Png) => (ImageFormat::Png, false),
        Some(FormatChoice::Webp) => (ImageFormat::Webp, false),
        Some(FormatChoice::Auto) => {
            (if accepts_webp(accept) { ImageFormat::Webp } else { ImageFormat::Jpeg }, true)
        }
        None => (default_format, true),
    };
    let q = match format {
        ImageFormat::Png | ImageFormat::Pam => None,
        _ => Some(params.q.unwrap_or(limits.default_quality)),
    };
    // Cover needs a box; with one side only it is the same as contain.
    let fit = match (params.fit.unwrap_or(Fit::Contain), params.w, params.h) {
        (Fit::Cover, Some(_), Some(_)) => Fit::Cover,
        _ => Fit::Contain,
    };
    (VariantSpec { w: params.w, h: params.h, fit, format, q }, negotiated)
}

/// `[presets]`, checked against `[transform]` and typed; a refusal names the key.
pub fn presets_from_config(cfg: &Config) -> Result<BTreeMap<String, Preset>, ConfigError> {
    let max = cfg.transform.max_dimension;
    cfg.presets.iter().map(|(name, p)| Ok((name.clone(), preset_from_config(name, p, max)?))).collect()
}

fn preset_from_config(name: &str, p: &PresetConfig, max_dimension: u32) -> Result<Preset, ConfigError> {
    for (k, v) in [("w", p.w), ("h", p.h)] {
        if v.is_some_and(|v| v == 0 || v > max_dimension) {
            return Err(invalid(
                &format!("presets.{name}.{k}"),
                format!("must be from 1 to {max_dimension}"),
            ));
        }
    }
    if p.q.is_some_and(|q| !QUALITY.contains(&q)) {
        return Err(invalid(&format!("presets.{name}.q"), "must be from 1 to 100"));
    }
    fn word<T: DeserializeOwned>(
        name: &str,
        key: &str,
        v: &Option<String>,
    ) -> Result<Option<T>, ConfigError> {
        v.as_deref()
            .map(|s| {
                T::deserialize(s.into_deserializer())
                    .map_err(|e: serde::de::value::Error| invalid(&format!("presets.{name}.{key}"), e))
            })
            .transpose()
    }
    Ok(Preset {
        w: p.w,
        h: p.h,
        fit: word(name, "fit", &p.fit)?,
        format: word(name, "format", &p.format)?,
        q: p.q,
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { allow_arbitrary: true, max_dimension: 2048, default_quality: 80 }
    }

    fn pairs(qs: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(qs.as_bytes()).into_owned().collect()
    }

    fn presets() -> BTreeMap<String, Preset> {
        let mut m = BTreeMap::new();
        m.insert(
            "thumb".to_owned(),
            Preset { w: Some(128), h: Some(128), fit: None, format: Some(FormatChoice::Auto), q: Some(80) },
        );
        m.insert(
            "grid".to_owned(),
            Preset { w: Some(256), h: Some(256), fit: None, format: Some(FormatChoice::Auto), q: Some(70) },
        );
        m.insert("wide".to_owned(), Preset { w: Some(512), h: None, fit: None, format: None, q: None });
        m
    }

    fn spec(qs: &str, accept: &str) -> VariantSpec {
        let p = parse_params(&pairs(qs), &presets(), &limits()).unwrap().unwrap();
        resolve(&p, ImageFormat::Png, accept, &limits()).0
    }

    #[test]
    fn order_and_defaults_do_not_change_the_key() {
        assert_eq!(spec("w=128&format=jpeg", ""), spec("format=jpeg&w=128", ""));
        assert_eq!(spec("w=128&format=jpeg", ""), spec("format=jpeg&w=128&q=80&fit=contain", ""));
        assert_eq!(spec("w=128&format=jpeg", "").canonical(), "w128.h-.contain.jpeg.q80");
        assert_eq!(spec("w=64&h=64&fit=cover&format=png&q=5", "").canonical(), "w64.h64.cover.png");
        // cover with one side is contain
        assert_eq!(spec("w=64&fit=cover&format=png", ""), spec("w=64&format=png", ""));
    }

    #[test]
    fn auto_picks_webp_only_when_accepted() {
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert_eq!(spec("format=auto&w=10", chrome).format, ImageFormat::Webp);
        assert_eq!(spec("format=auto&w=10", "image/jpeg").format, ImageFormat::Jpeg);
        assert_eq!(spec("format=auto&w=10", "*/*").format, ImageFormat::Jpeg);
        assert_eq!(spec("format=auto&w=10", "image/webp;q=0").format, ImageFormat::Jpeg);
        assert_eq!(spec("preset=thumb", chrome).canonical(), "w128.h128.contain.webp.q80");
    }

    #[test]
    fn bad_params_name_the_parameter() {
        let err = |qs: &str| parse_params(&pairs(qs), &presets(), &limits()).unwrap_err().param;
        assert_eq!(err("w=0"), "w");
        assert_eq!(err("w=99999"), "w");
        assert_eq!(err("h=-1"), "h");
        assert_eq!(err("q=101"), "q");
        assert_eq!(err("q=0"), "q");
        assert_eq!(err("fit=zoom"), "fit");
        assert_eq!(err("format=gif"), "format");
        assert_eq!(err("preset=nope"), "preset");
        assert_eq!(err("preset=thumb&w=5"), "preset");
        let strict = Limits { allow_arbitrary: false, ..limits() };
        assert_eq!(parse_params(&pairs("w=5"), &presets(), &strict).unwrap_err().param, "w");
        assert!(parse_params(&pairs("preset=thumb"), &presets(), &strict).unwrap().is_some());
        assert!(parse_params(&pairs(""), &presets(), &limits()).unwrap().is_none());
    }

    fn strict() -> Limits {
        Limits { allow_arbitrary: false, ..limits() }
    }

    fn plan_of(ask: Ask, limits: &Limits) -> Result<Plan, ParamError> {
        plan(&ask, &Rules { presets: &presets(), limits, thumbnail_preset: "thumb", orthanc_renders: false })
    }

    fn native(qs: &str, rendered: bool, limits: &Limits) -> Result<Plan, ParamError> {
        let q = pairs(qs);
        plan_of(Ask::Native { query: &q, rendered, default_format: ImageFormat::Png, accept: "*/*" }, limits)
    }

    fn dicomweb(
        viewport: Option<&str>,
        quality: Option<&str>,
        thumbnail: bool,
        limits: &Limits,
    ) -> Result<Plan, ParamError> {
        plan_of(
            Ask::DicomWeb { viewport, window: None, quality, thumbnail, format: ImageFormat::Jpeg },
            limits,
        )
    }

    fn variant(p: Result<Plan, ParamError>) -> String {
        match p.unwrap() {
            Plan::Edge { variant, .. } => variant.canonical(),
            other => panic!("not an edge variant: {other:?}"),
        }
    }

    #[test]
    fn windows_are_canonical_to_four_significant_digits() {
        let w = |c: f64, wd: f64| {
            let w = canonical_window(c, wd);
            (w.center.to_string(), w.width.to_string())
        };
        let s = |c: &str, wd: &str| (c.to_owned(), wd.to_owned());
        // Near-identical windows are one window, written the short way.
        for c in [40.1, 40.10, 40.1000001, 40.09999, 40.1049] {
            assert_eq!(w(c, 400.0), s("40.1", "400"), "{c}");
        }
        assert_eq!(w(40.01, 400.0), s("40", "400"));
        assert_eq!(w(40.001, 400.0), s("40", "400"));
        // Windows that already have that precision keep their names (cache keys stay stable).
        assert_eq!(w(40.0, 400.0), s("40", "400"));
        assert_eq!(w(-600.0, 1500.0), s("-600", "1500"));
        assert_eq!(w(-0.0, 400.5), s("0", "400.5"));
        assert_eq!(w(-0.01, 400.0), s("0", "400"), "-0 after rounding is 0");
        // The precision follows the width: narrow windows keep their decimals, wide ones lose units.
        assert_eq!(w(0.12344, 0.5), s("0.1234", "0.5"));
        assert_eq!(w(1023.4567, 1.0), s("1023.457", "1"));
        assert_eq!(w(16383.0, 32767.0), s("16380", "32770"));
        assert_eq!(w(5.0, 9999.6), s("10", "10000"), "rounding up a digit moves the place");
        // Parsed windows are canonical.
        let parsed = |qs: &str| parse_window(&pairs(qs)).unwrap().unwrap();
        assert_eq!(parsed("window-center=40.1000001&window-width=400.00"), canonical_window(40.1, 400.0));
    }

    #[test]
    fn dicomweb_windows_regions_and_what_orthanc_can_render() {
        let ask = |viewport, window| Ask::DicomWeb {
            viewport,
            window,
            quality: None,
            thumbnail: false,
            format: ImageFormat::Png,
        };
        let rules = |limits, orthanc_renders| Rules {
            presets: Box::leak(Box::new(presets())),
            limits,
            thumbnail_preset: "thumb",
            orthanc_renders,
        };
        let a = limits();
        let planned = |viewport, window| plan(&ask(viewport, window), &rules(&a, false)).unwrap();
        match planned(Some("64,,10,10,-100,100"), Some("40,400,sigmoid")) {
            Plan::Edge {
                source: Rendering::Dicomweb { window: Some(w), region: Some(r) }, variant, ..
            } => {
                assert_eq!((w.center, w.width, w.function), (40.0, 400.0, VoiFunction::Sigmoid));
                assert!(r.flip_x && !r.flip_y && r.w == Some(100));
                assert_eq!(variant.canonical(), "w64.h-.contain.png");
            }
            other => panic!("{other:?}"),
        }
        match planned(None, None) {
            Plan::Edge { source, variant, .. } => {
                assert_eq!(source, Rendering::Dicomweb { window: None, region: None });
                assert_eq!(variant.canonical(), "w-.h-.contain.png", "a rendering is full size");
            }
            other => panic!("{other:?}"),
        }
        // Orthanc's /rendered has linear windows and no regions; presets-only has neither.
        let o = plan(&ask(None, Some("40,400,linear")), &rules(&a, true));
        assert!(matches!(o, Ok(Plan::Edge { .. })));
        for (vp, w, param) in
            [(None, Some("40,400,sigmoid"), "window"), (Some("64,64,1,1,10,10"), None, "viewport")]
        {
            assert_eq!(plan(&ask(vp, w), &rules(&a, true)).unwrap_err().param, param);
        }
        let s = strict();
        for (vp, w, param) in
            [(None, Some("40,400,linear"), "window"), (Some("128,128,1,1,10,10"), None, "viewport")]
        {
            assert_eq!(plan(&ask(vp, w), &rules(&s, false)).unwrap_err().param, param);
        }
    }

    #[test]
    fn orthancs_rendered_parameters_are_the_variant_they_name() {
        let v = |qs: &str| variant(native(qs, true, &limits()));
        assert_eq!(v("width=128"), v("w=128"));
        assert_eq!(v("width=128&height=64&smooth=1"), v("w=128&h=64"));
        assert_eq!(v("height=64&smooth=false"), v("h=64"));
        assert_eq!(v("width=99999"), v("w=2048"), "clamped to transform.max_dimension");
        assert_eq!(v("width=100&quality=50"), "w100.h-.contain.png", "PNG has no quality");
        let jpeg = |qs: &str| {
            let q = pairs(qs);
            let ask = Ask::Native {
                query: &q,
                rendered: true,
                default_format: ImageFormat::Jpeg,
                accept: "image/jpeg",
            };
            variant(plan_of(ask, &limits()))
        };
        assert_eq!(jpeg("width=100&quality=50"), jpeg("w=100&q=50"));
        assert_eq!(jpeg("quality=50"), "w-.h-.contain.jpeg.q50");
        assert_eq!(v("width=0&height=64"), v("h=64"), "0 is not given, as Orthanc");
        for (qs, param) in [
            ("width=64.0", "width"),
            ("height=x", "height"),
            ("width=5&w=5", "width"),
            ("smooth=yes", "smooth"),
            ("width=5&preset=thumb", "width"),
        ] {
            assert_eq!(native(qs, true, &limits()).unwrap_err().param, param, "{qs}");
        }
        assert_eq!(native("width=5", true, &strict()).unwrap_err().param, "width");
    }

    #[test]
    fn presets_only_holds_on_native_routes() {
        let err = |qs: &str, rendered: bool| native(qs, rendered, &strict()).unwrap_err().param;
        assert_eq!(err("w=5", false), "w");
        assert_eq!(err("quality=37", false), "quality");
        assert_eq!(err("window-center=40.1&window-width=400", true), "window-center");
        assert_eq!(err("preset=thumb&window-center=40&window-width=400", true), "window-center");
        // What presets-only still allows: Orthanc's own preview, presets, the instance's own window.
        assert_eq!(
            native("", false, &strict()).unwrap(),
            Plan::Orthanc { format: ImageFormat::Png, quality: None }
        );
        assert_eq!(variant(native("preset=thumb", false, &strict())), "w128.h128.contain.jpeg.q80");
        match native("preset=thumb", true, &strict()).unwrap() {
            Plan::Edge { source, .. } => assert_eq!(source, Rendering::Rendered { window: None }),
            other => panic!("{other:?}"),
        }
        assert_eq!(variant(native("", true, &strict())), "w-.h-.contain.png");
        // Arbitrary mode as before: quality, windows, sizes.
        assert_eq!(
            native("quality=37", false, &limits()).unwrap(),
            Plan::Orthanc { format: ImageFormat::Png, quality: Some(37) }
        );
        match native("window-center=40.10&window-width=400&w=64", true, &limits()).unwrap() {
            Plan::Edge { source, .. } => {
                assert_eq!(source, Rendering::Rendered { window: Some(canonical_window(40.1, 400.0)) })
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(native("w=10&quality=5", false, &limits()).unwrap_err().param, "quality");
    }

    #[test]
    fn presets_only_dicomweb_serves_the_preset_that_fits() {
        let s = strict();
        let thumb = "w128.h128.contain.jpeg.q80";
        let grid = "w256.h256.contain.jpeg.q70";
        assert_eq!(variant(dicomweb(Some("128,128"), None, true, &s)), thumb);
        assert_eq!(variant(dicomweb(Some("255,1000"), None, true, &s)), thumb, "largest preset inside");
        assert_eq!(variant(dicomweb(Some("300,300"), None, false, &s)), grid);
        assert_eq!(variant(dicomweb(Some("2048,2048"), None, false, &s)), grid, "w-only presets have no box");
        assert_eq!(
            variant(dicomweb(Some("101,101"), None, true, &s)),
            thumb,
            "smaller than all: the smallest"
        );
        assert_eq!(variant(dicomweb(None, None, true, &s)), thumb, "no viewport: grid.thumbnail_preset");
        assert_eq!(
            variant(dicomweb(None, None, false, &s)),
            "w-.h-.contain.jpeg.q80",
            "a rendering is full size"
        );
        assert_eq!(dicomweb(Some("128,128"), Some("37"), true, &s).unwrap_err().param, "quality");
        assert_eq!(dicomweb(Some("0,5"), None, true, &s).unwrap_err().param, "viewport");
        // Arbitrary mode as before: the exact viewport and quality.
        let a = limits();
        assert_eq!(variant(dicomweb(Some("101,101"), Some("37"), true, &a)), "w101.h101.contain.jpeg.q37");
        assert_eq!(variant(dicomweb(None, None, true, &a)), thumb);
        assert_eq!(variant(dicomweb(None, None, false, &a)), "w-.h-.contain.jpeg.q80");
    }
}

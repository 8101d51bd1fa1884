//! Variant specs: parse `w`/`h`/`fit`/`format`/`q`/`preset`, apply limits, and name each variant canonically.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

/// A concrete output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
}

impl OutputFormat {
    pub fn mime(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
        }
    }
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

/// A fully resolved variant: what the edge will make from the source pixels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VariantSpec {
    pub w: Option<u32>,
    pub h: Option<u32>,
    pub fit: Fit,
    pub format: OutputFormat,
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

fn param_err(param: &str, why: impl Into<String>) -> ParamError {
    ParamError { param: param.to_owned(), why: why.into() }
}

/// Names of the query parameters that select a variant.
pub const VARIANT_PARAMS: [&str; 6] = ["w", "h", "fit", "format", "q", "preset"];

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
    if !limits.allow_arbitrary {
        let which = ["w", "h", "fit", "format", "q"].into_iter().find(|k| get(k).is_some()).unwrap_or("w");
        return Err(param_err(which, "only presets are allowed here (use ?preset=NAME)"));
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
    let q = get("q")
        .map(|v| {
            v.parse::<u8>()
                .ok()
                .filter(|q| (1..=100).contains(q))
                .ok_or_else(|| param_err("q", "must be an integer from 1 to 100"))
        })
        .transpose()?;
    Ok(Some(VariantParams { w: dim("w")?, h: dim("h")?, fit, format, q }))
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
    default_format: OutputFormat,
    accept: &str,
    limits: &Limits,
) -> (VariantSpec, bool) {
    let (format, negotiated) = match params.format {
        Some(FormatChoice::Jpeg) => (OutputFormat::Jpeg, false),
        Some(FormatChoice::Png) => (OutputFormat::Png, false),
        Some(FormatChoice::Webp) => (OutputFormat::Webp, false),
        Some(FormatChoice::Auto) => {
            (if accepts_webp(accept) { OutputFormat::Webp } else { OutputFormat::Jpeg }, true)
        }
        None => (default_format, true),
    };
    let q = match format {
        OutputFormat::Png => None,
        _ => Some(params.q.unwrap_or(limits.default_quality)),
    };
    // Cover needs a box; with one side only it is the same as contain.
    let fit = match (params.fit.unwrap_or(Fit::Contain), params.w, params.h) {
        (Fit::Cover, Some(_), Some(_)) => Fit::Cover,
        _ => Fit::Contain,
    };
    (VariantSpec { w: params.w, h: params.h, fit, format, q }, negotiated)
}

/// Check a preset from config against the limits: `Err((key, why))`.
pub fn check_preset(name: &str, p: &Preset, max_dimension: u32) -> Result<(), (String, String)> {
    for (k, v) in [("w", p.w), ("h", p.h)] {
        if v.is_some_and(|v| v == 0 || v > max_dimension) {
            return Err((format!("presets.{name}.{k}"), format!("must be from 1 to {max_dimension}")));
        }
    }
    if p.q.is_some_and(|q| !(1..=100).contains(&q)) {
        return Err((format!("presets.{name}.q"), "must be from 1 to 100".into()));
    }
    Ok(())
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
        m
    }

    fn spec(qs: &str, accept: &str) -> VariantSpec {
        let p = parse_params(&pairs(qs), &presets(), &limits()).unwrap().unwrap();
        resolve(&p, OutputFormat::Png, accept, &limits()).0
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
        assert_eq!(spec("format=auto&w=10", chrome).format, OutputFormat::Webp);
        assert_eq!(spec("format=auto&w=10", "image/jpeg").format, OutputFormat::Jpeg);
        assert_eq!(spec("format=auto&w=10", "*/*").format, OutputFormat::Jpeg);
        assert_eq!(spec("format=auto&w=10", "image/webp;q=0").format, OutputFormat::Jpeg);
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
}

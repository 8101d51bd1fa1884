//! Request parsing: path ids, frame numbers, query parameters and Accept, validated before any other work.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, FromRequest, HttpRequest};

use crate::auth::strip_token_param;
use crate::error::AppError;
use crate::ids::OrthancId;
use crate::previews::PreviewSpec;
use crate::upstream::ImageFormat;

/// Highest frame number accepted (Orthanc numbers frames from 0).
const MAX_FRAME: u32 = 99_999;

/// A validated preview request.
#[derive(Debug, Clone)]
pub struct PreviewRequest(pub PreviewSpec);

impl FromRequest for PreviewRequest {
    type Error = AppError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req).map(PreviewRequest))
    }
}

fn parse(req: &HttpRequest) -> Result<PreviewSpec, AppError> {
    let raw_id = req.match_info().get("id").unwrap_or_default();
    let instance = OrthancId::parse(raw_id).ok_or_else(|| {
        AppError::BadId(
            "instance id must be an Orthanc id: 5 groups of 8 lowercase hex digits joined by '-'"
                .into(),
        )
    })?;
    let frame = match req.match_info().get("frame") {
        None => 0,
        Some(f) => parse_frame(f)?,
    };
    // The session token is the auth layer's; other parameters never see it.
    let query = parse_query(&strip_token_param(req.query_string()), &["quality"])?;
    let quality = match query.iter().find(|(k, _)| k == "quality") {
        None => None,
        Some((_, v)) => Some(
            v.parse::<u8>()
                .ok()
                .filter(|q| (1..=100).contains(q))
                .ok_or_else(|| {
                    AppError::BadParam(
                        "parameter `quality` must be an integer from 1 to 100".into(),
                    )
                })?,
        ),
    };
    Ok(PreviewSpec {
        instance,
        frame,
        format: negotiate(req),
        quality,
    })
}

fn parse_frame(s: &str) -> Result<u32, AppError> {
    let bad = || AppError::BadId(format!("frame must be an integer from 0 to {MAX_FRAME}"));
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    s.parse::<u32>()
        .ok()
        .filter(|&n| n <= MAX_FRAME)
        .ok_or_else(bad)
}

/// Decode the query string, refusing unknown and repeated parameters by name.
fn parse_query(qs: &str, allowed: &[&str]) -> Result<Vec<(String, String)>, AppError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(qs.as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            let name: String = k.chars().take(64).collect();
            if !unknown.contains(&name) {
                unknown.push(name);
            }
            continue;
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(AppError::BadParam(format!(
                "parameter `{k}` is given more than once"
            )));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    if !unknown.is_empty() {
        return Err(AppError::BadParam(format!(
            "unknown query parameter(s): {}; allowed: {}",
            unknown
                .iter()
                .map(|u| format!("`{u}`"))
                .collect::<Vec<_>>()
                .join(", "),
            allowed.join(", ")
        )));
    }
    Ok(out)
}

/// Orthanc's rule: JPEG only when Accept is exactly `image/jpeg`, PNG otherwise.
fn negotiate(req: &HttpRequest) -> ImageFormat {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if accept.is_some_and(|a| a.eq_ignore_ascii_case("image/jpeg")) {
        ImageFormat::Jpeg
    } else {
        ImageFormat::Png
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(parse_frame("0").unwrap(), 0);
        assert_eq!(parse_frame("00012").unwrap(), 12);
        for bad in ["", "-1", "+1", "1.0", "123456", "abc", "１"] {
            assert!(parse_frame(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_rules() {
        assert!(parse_query("", &["quality"]).unwrap().is_empty());
        assert_eq!(parse_query("quality=80", &["quality"]).unwrap()[0].1, "80");
        let e = parse_query("quality=1&quality=2", &["quality"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`quality`"), "{e}");
        let e = parse_query("foo=1&bar&foo=2", &["quality"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`foo`") && e.contains("`bar`"), "{e}");
    }
}

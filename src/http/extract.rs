//! Request parsing: path ids, frame numbers, query parameters and Accept, validated before any other work.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;

use super::client::client_addr;
use super::error::AppError;
use super::middleware::AccessRecord;
use crate::auth::{check_link, strip_token_param, AuthError, Authenticator, LinkRoute, Principal};
use crate::ids::OrthancId;
use crate::model::ImageFormat;
use crate::previews::{Output, PreviewSpec};
use crate::state::AppState;
use crate::transform::spec::{self, Ask, Plan, Rules};

/// Highest frame number accepted (Orthanc numbers frames from 0).
const MAX_FRAME: u32 = 99_999;

/// A validated image request, and whether its bytes depend on the Accept header.
/// On `/series/{id}/preview`, `spec.instance` holds the series id until the handler resolves it.
#[derive(Debug, Clone)]
pub struct PreviewRequest {
    pub spec: PreviewSpec,
    pub negotiated: bool,
    /// Orthanc's `returnUnsupportedImage`: a tile rather than a 4xx for an undecodable frame.
    pub unsupported_tile: bool,
}

impl FromRequest for PreviewRequest {
    type Error = AppError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.app_data::<web::Data<AppState>>() {
            Some(state) => parse(req, state),
            None => Err(AppError::Internal("state not configured".into())),
        })
    }
}

/// Any authenticated caller (401 without valid credentials); counted against the client address's
/// failed-auth limit.
impl FromRequest for Principal {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let auth = req
                .app_data::<web::Data<Authenticator>>()
                .ok_or_else(|| AppError::Internal("authenticator not configured".into()))?;
            Ok(auth.authenticate(&req, client_addr(&req)).await?)
        })
    }
}

/// The caller of an image or grid route: authenticated, named on the access line, and held to
/// the one URL a signed link was minted for (403 `forbidden` anywhere else).
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let principal = principal.await?;
            req.extensions_mut()
                .insert(AccessRecord { principal: Some(principal.name.clone()), ..AccessRecord::default() });
            link_allows(&principal, &req)?;
            Ok(Caller(principal))
        })
    }
}

/// A route that takes no query parameters (besides the auth layer's `token`): anything else is
/// 400 `bad-param`, so that a mistyped option (`DELETE /cache/studies/{id}?dry_run=1`) is not
/// silently ignored.
#[derive(Debug, Clone, Copy)]
pub struct NoQuery;

impl FromRequest for NoQuery {
    type Error = AppError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_query(req.query_string(), &[]).map(|_| NoQuery))
    }
}

const PREVIEW_PARAMS: [&str; 8] = ["quality", "w", "h", "fit", "format", "q", "preset", UNSUPPORTED_IMAGE];
/// `/rendered` takes Orthanc's own `width`, `height`, `smooth` and `quality` too.
const RENDERED_PARAMS: [&str; 13] = [
    "window-center",
    "window-width",
    "w",
    "h",
    "fit",
    "format",
    "q",
    "preset",
    "width",
    "height",
    "smooth",
    "quality",
    UNSUPPORTED_IMAGE,
];
/// Orthanc's flag (any value, or none) for an image instead of 415.
const UNSUPPORTED_IMAGE: &str = "returnUnsupportedImage";

/// Parse a path id (400 `bad-id` when it is not an Orthanc id).
pub fn path_id(req: &HttpRequest, name: &str) -> Result<OrthancId, AppError> {
    OrthancId::parse(req.match_info().get(name).unwrap_or_default()).ok_or_else(|| {
        AppError::BadId("id must be an Orthanc id: 5 groups of 8 lowercase hex digits joined by '-'".into())
    })
}

fn parse(req: &HttpRequest, state: &AppState) -> Result<PreviewRequest, AppError> {
    let raw_id = req.match_info().get("id").unwrap_or_default();
    let instance = OrthancId::parse(raw_id).ok_or_else(|| {
        AppError::BadId("id must be an Orthanc id: 5 groups of 8 lowercase hex digits joined by '-'".into())
    })?;
    let frame = match req.match_info().get("frame") {
        None => 0,
        Some(f) => parse_frame(f)?,
    };
    let rendered = req.path().ends_with("/rendered");
    let allowed: &[&str] = if rendered { &RENDERED_PARAMS } else { &PREVIEW_PARAMS };
    let query = parse_query(req.query_string(), allowed)?;
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    native_request(state, instance, frame, rendered, &query, accept)
}

/// What an image route (`/preview`, `/rendered`, `/series/{id}/preview`) makes of its decoded
/// `query` and `accept`; also how the grid page plans the thumbnails it links to.
pub fn native_request(
    state: &AppState,
    instance: OrthancId,
    frame: u32,
    rendered: bool,
    query: &[(String, String)],
    accept: &str,
) -> Result<PreviewRequest, AppError> {
    let default_format = negotiate(accept);
    let ask = Ask::Native { query, rendered, default_format, accept };
    let (output, negotiated) = output(spec::plan(&ask, &rules(state))?);
    let unsupported_tile = get(query, UNSUPPORTED_IMAGE).is_some();
    Ok(PreviewRequest { spec: PreviewSpec { instance, frame, output }, negotiated, unsupported_tile })
}

/// Refuse a signed link on any request but the one it was minted for (403 `forbidden`): the
/// route kind and frame of this request's path, and its query parameters besides `token`.
pub fn link_allows(principal: &Principal, req: &HttpRequest) -> Result<(), AuthError> {
    let (route, frame) = link_route(req);
    check_link(principal, route, frame, req.query_string())
}

/// The route kind and the frame named in the path (`None`: the path names no frame).
fn link_route(req: &HttpRequest) -> (LinkRoute, Option<u32>) {
    let path = req.path();
    let route = if path.starts_with("/dicom-web/") {
        LinkRoute::Dicomweb
    } else if path.starts_with("/studies/") {
        LinkRoute::Grid
    } else if path.starts_with("/series/") {
        LinkRoute::SeriesPreview
    } else if path.starts_with("/auth/") {
        LinkRoute::Session
    } else if path.ends_with("/rendered") {
        LinkRoute::InstanceRendered
    } else {
        LinkRoute::InstancePreview
    };
    // An unparsable frame was already refused by the extractor; here it would match nothing.
    let frame = req.match_info().get("frame").map(|f| parse_frame(f).unwrap_or(u32::MAX));
    (route, frame)
}

/// The presets and limits of this server, for [`spec::plan`].
pub fn rules(state: &AppState) -> Rules<'_> {
    Rules {
        presets: &state.presets,
        limits: &state.limits,
        thumbnail_preset: &state.config.grid.thumbnail_preset,
        orthanc_renders: state.config.render.mode == crate::config::RenderMode::Orthanc,
    }
}

/// What the preview service makes for a plan, and whether its bytes depend on Accept.
pub fn output(plan: Plan) -> (Output, bool) {
    match plan {
        Plan::Orthanc { format, quality } => (Output::Orthanc { format, quality }, true),
        Plan::Edge { source, variant, negotiated } => {
            (Output::Edge { rendering: source, variant }, negotiated)
        }
    }
}

pub fn get<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn parse_frame(s: &str) -> Result<u32, AppError> {
    let bad = || AppError::BadId(format!("frame must be an integer from 0 to {MAX_FRAME}"));
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    s.parse::<u32>().ok().filter(|&n| n <= MAX_FRAME).ok_or_else(bad)
}

/// Decode the query string, refusing unknown and repeated parameters by name.
/// The session `token` parameter belongs to the auth layer: it is removed first, never echoed.
pub fn parse_query(qs: &str, allowed: &[&str]) -> Result<Vec<(String, String)>, AppError> {
    let qs = strip_token_param(qs);
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
            return Err(AppError::BadParam(format!("parameter `{k}` is given more than once")));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    if !unknown.is_empty() {
        let allowed = match allowed {
            [] => "this route takes no query parameters".to_owned(),
            some => format!("allowed: {}", some.join(", ")),
        };
        return Err(AppError::BadParam(format!(
            "unknown query parameter(s): {}; {allowed}",
            unknown.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", "),
        )));
    }
    Ok(out)
}

/// A request body that must be a JSON object, as `T`. serde would also build a struct from a JSON
/// array (fields by position), which the API does not document: refused like any other bad body.
pub fn json_object<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, AppError> {
    if !body.is_object() {
        return Err(AppError::BadParam("invalid JSON body: expected an object".into()));
    }
    serde_json::from_value(body).map_err(|e| AppError::BadParam(format!("invalid JSON body: {e}")))
}

/// Orthanc's rule: JPEG only when Accept is exactly `image/jpeg`, PAM when it is exactly
/// `image/x-portable-arbitrarymap`, PNG otherwise.
fn negotiate(accept: &str) -> ImageFormat {
    let accept = accept.trim();
    if accept.eq_ignore_ascii_case("image/jpeg") {
        ImageFormat::Jpeg
    } else if accept.eq_ignore_ascii_case(ImageFormat::Pam.mime()) {
        ImageFormat::Pam
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
    fn bodies_are_objects() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct B {
            #[serde(default)]
            a: Option<u8>,
        }
        assert_eq!(json_object::<B>(serde_json::json!({"a": 1})).unwrap().a, Some(1));
        for bad in [
            serde_json::json!([1]),
            serde_json::json!([]),
            serde_json::json!(null),
            serde_json::json!({"b": 1}),
        ] {
            assert!(json_object::<B>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_rules() {
        assert!(parse_query("", &["quality"]).unwrap().is_empty());
        assert_eq!(parse_query("quality=80", &["quality"]).unwrap()[0].1, "80");
        let e = parse_query("quality=1&quality=2", &["quality"]).unwrap_err().to_string();
        assert!(e.contains("`quality`"), "{e}");
        let e = parse_query("foo=1&bar&foo=2", &["quality"]).unwrap_err().to_string();
        assert!(e.contains("`foo`") && e.contains("`bar`"), "{e}");
        let e = parse_query("x=1", &[]).unwrap_err().to_string();
        assert!(e.ends_with("this route takes no query parameters"), "{e}");
    }
}

//! Conditional and cacheable responses: ETag, If-None-Match → 304, Cache-Control.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use bytes::Bytes;

/// Does an `If-None-Match` value match `etag`? Weak comparison, as RFC 9110 asks for this header.
pub fn none_match(if_none_match: &str, etag: &str) -> bool {
    let want = etag.trim_start_matches("W/");
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || (!tag.is_empty() && tag.trim_start_matches("W/") == want))
}

/// What a cacheable response carries besides its body.
pub struct Cacheable<'a> {
    pub etag: &'a str,
    pub cache_control: HeaderValue,
    pub content_type: &'a str,
    /// Further headers on both the 200 and the 304 (`X-Cache`, `Vary`).
    pub headers: &'a [(HeaderName, &'static str)],
}

/// 200 with `body`, or 304 when the request's `If-None-Match` holds the ETag: every route with
/// an ETag (images, grid JSON and pages) answers through here.
pub fn respond(req: &HttpRequest, c: Cacheable<'_>, body: Bytes) -> HttpResponse {
    let matched = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .any(|v| none_match(v, c.etag));
    let mut resp = if matched { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    // Names as constants and static values as they are: every hit sets these, and a name given
    // as a string is parsed, a value copied.
    resp.insert_header((header::ETAG, c.etag)).insert_header((header::CACHE_CONTROL, c.cache_control));
    for (name, value) in c.headers {
        resp.insert_header((name.clone(), HeaderValue::from_static(value)));
    }
    if matched {
        return resp.finish();
    }
    resp.insert_header((header::CONTENT_TYPE, content_type(c.content_type)))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .body(body)
}

/// The `Content-Type` value: the types the edge makes without a copy, any other as given.
fn content_type(t: &str) -> HeaderValue {
    match t {
        "image/png" => HeaderValue::from_static("image/png"),
        "image/jpeg" => HeaderValue::from_static("image/jpeg"),
        "image/webp" => HeaderValue::from_static("image/webp"),
        "application/json" => HeaderValue::from_static("application/json"),
        other => HeaderValue::from_str(other)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    }
}

#[cfg(test)]
mod tests {
    use super::none_match;

    #[test]
    fn if_none_match_forms() {
        let etag = "\"abc\"";
        assert!(none_match("\"abc\"", etag));
        assert!(none_match("W/\"abc\"", etag));
        assert!(none_match("\"x\", \"abc\"", etag));
        assert!(none_match("\"x\",W/\"abc\"", etag));
        assert!(none_match("*", etag));
        assert!(!none_match("\"abd\"", etag));
        assert!(!none_match("abc", etag));
        assert!(!none_match("", etag));
        assert!(!none_match(",", etag));
    }
}

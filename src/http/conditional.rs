//! Conditional and cacheable responses: ETag, If-None-Match → 304, Cache-Control.

use actix_web::http::header::{self, HeaderValue};
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
    pub headers: &'a [(&'static str, &'a str)],
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
    resp.insert_header((header::ETAG, c.etag)).insert_header((header::CACHE_CONTROL, c.cache_control));
    for &(name, value) in c.headers {
        resp.insert_header((name, value));
    }
    if matched {
        return resp.finish();
    }
    resp.insert_header((header::CONTENT_TYPE, c.content_type))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(super::body::Sliced::new(body))
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

//! Conditional and cacheable responses: ETag, If-None-Match → 304, Cache-Control, Vary, X-Cache.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use crate::previews::Served;

/// Does an `If-None-Match` value match `etag`? Weak comparison, as RFC 9110 asks for this header.
pub fn none_match(if_none_match: &str, etag: &str) -> bool {
    let want = etag.trim_start_matches("W/");
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || (!tag.is_empty() && tag.trim_start_matches("W/") == want))
}

/// 200 with the image, or 304 when the client already holds these bytes.
pub fn image_response(
    req: &HttpRequest,
    served: &Served,
    cache_control: &HeaderValue,
    vary: Option<&'static str>,
) -> HttpResponse {
    let entry = &served.entry;
    let matched = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .any(|v| none_match(v, &entry.etag));
    let mut resp = if matched { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    resp.insert_header((header::ETAG, entry.etag.as_str()))
        .insert_header((header::CACHE_CONTROL, cache_control.clone()))
        .insert_header(("x-cache", served.status.as_str()));
    if let Some(vary) = vary {
        resp.insert_header((header::VARY, vary));
    }
    if matched {
        return resp.finish();
    }
    resp.insert_header((header::CONTENT_TYPE, entry.content_type.as_str()))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(entry.body.clone())
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

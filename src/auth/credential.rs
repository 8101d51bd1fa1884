//! Which credential a request presents, in the documented precedence; the `token` query parameter.

use std::borrow::Cow;

use actix_web::{http::header, HttpRequest};

use super::AuthError;

/// Query parameter carrying a session token (signed links, `<img>` across sites). Never logged.
pub const TOKEN_PARAM: &str = "token";

/// The first credential found, in precedence order.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented<'a> {
    /// `X-Api-Key`.
    ApiKey(&'a str),
    /// `Authorization: Bearer …`: an API key or a session token.
    Bearer(&'a str),
    /// `?token=` (session token).
    Token(String),
    /// The session cookie (session token).
    Cookie(String),
    /// None of the above (delegation may still apply).
    Nothing,
}

/// X-Api-Key, then Authorization: Bearer, then `?token=`, then the session cookie.
/// Explicit credentials beat the ambient cookie: a signed link works next to a stale cookie.
pub fn presented<'a>(req: &'a HttpRequest, cookie: &str) -> Result<Presented<'a>, AuthError> {
    let headers = req.headers();
    if let Some(v) = headers.get("x-api-key") {
        let key = v.to_str().ok().map(str::trim).filter(|s| !s.is_empty()).ok_or(AuthError::Invalid)?;
        return Ok(Presented::ApiKey(key));
    }
    if let Some(b) = bearer(req) {
        return Ok(Presented::Bearer(b));
    }
    let qs = req.query_string();
    if may_hold_token(qs) {
        let mut tokens = url::form_urlencoded::parse(qs.as_bytes())
            .filter(|(k, _)| k == TOKEN_PARAM)
            .map(|(_, v)| v.into_owned());
        if let Some(t) = tokens.next() {
            // Two tokens: which one was meant? Refuse rather than guess.
            if tokens.next().is_some() || t.is_empty() {
                return Err(AuthError::Invalid);
            }
            return Ok(Presented::Token(t));
        }
    }
    if let Some(c) = session_cookie(req, cookie) {
        return Ok(Presented::Cookie(c));
    }
    Ok(Presented::Nothing)
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim()).filter(|s| !s.is_empty())
}

/// The named cookie, read from every `Cookie` header without allocating for the others.
fn session_cookie(req: &HttpRequest, name: &str) -> Option<String> {
    for h in req.headers().get_all(header::COOKIE) {
        let Ok(s) = h.to_str() else { continue };
        for pair in s.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k == name {
                    let v = v.trim().trim_matches('"');
                    if !v.is_empty() {
                        return Some(v.to_owned());
                    }
                }
            }
        }
    }
    None
}

/// Cheap pre-check before decoding the query (`tok%65n` is `token` too).
fn may_hold_token(qs: &str) -> bool {
    qs.contains(TOKEN_PARAM) || qs.contains('%')
}

/// Three base64url segments: a JWS compact serialization.
pub fn looks_like_jwt(s: &str) -> bool {
    s.split('.').count() == 3
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The query string without `token` parameters, for parsers of the other parameters.
pub fn strip_token_param(qs: &str) -> Cow<'_, str> {
    if !may_hold_token(qs) {
        return Cow::Borrowed(qs);
    }
    let kept: Vec<&str> = qs
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            // Decode the key as the form parser would (`tok%65n` is still `token`).
            url::form_urlencoded::parse(key.as_bytes()).next().map_or(true, |(k, _)| k != TOKEN_PARAM)
        })
        .collect();
    Cow::Owned(kept.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn p(req: &HttpRequest) -> Presented<'_> {
        presented(req, "sess").unwrap()
    }

    #[test]
    fn precedence() {
        let r = TestRequest::default()
            .insert_header(("X-Api-Key", " k1 "))
            .insert_header(("Authorization", "Bearer k2"))
            .to_http_request();
        assert_eq!(p(&r), Presented::ApiKey("k1"));
        let r = TestRequest::with_uri("/x?token=t1")
            .insert_header(("Authorization", "bearer   k3"))
            .insert_header(("Cookie", "sess=c1"))
            .to_http_request();
        assert_eq!(p(&r), Presented::Bearer("k3"));
        let r = TestRequest::with_uri("/x?w=1&token=t1")
            .insert_header(("Cookie", "a=b; sess=c1"))
            .to_http_request();
        assert_eq!(p(&r), Presented::Token("t1".into()));
        let r = TestRequest::with_uri("/x").insert_header(("Cookie", "a=b; sess=c1; c=d")).to_http_request();
        assert_eq!(p(&r), Presented::Cookie("c1".into()));
        let r = TestRequest::default()
            .insert_header(("Authorization", "Basic dXNlcjpwdw=="))
            .insert_header(("Cookie", "sessx=1"))
            .to_http_request();
        assert_eq!(p(&r), Presented::Nothing);
        let r = TestRequest::with_uri("/x?token=a&token=b").to_http_request();
        assert!(presented(&r, "sess").is_err());
        let r = TestRequest::with_uri("/x?token=").to_http_request();
        assert!(presented(&r, "sess").is_err());
    }

    #[test]
    fn token_is_stripped_only_by_exact_name() {
        assert_eq!(strip_token_param("quality=5"), "quality=5");
        assert_eq!(strip_token_param("token=abc&quality=5"), "quality=5");
        assert_eq!(strip_token_param("w=1&tok%65n=abc"), "w=1");
        assert_eq!(strip_token_param("tokens=1&token"), "tokens=1");
        assert_eq!(strip_token_param("token=a.b.c"), "");
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJ.eyJ.sig-_"));
        assert!(!looks_like_jwt("plain-api-key"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a.b c.d"));
    }
}

//! Which credential a request presents, in the documented precedence; the `token` query parameter.

use std::borrow::Cow;

use actix_web::{http::header, HttpRequest};

use super::AuthError;

/// The HTTP request credentials are read from: the one request type auth knows.
pub type Request = HttpRequest;

/// Query parameter carrying a session token (signed links, `<img>` across sites). Never logged.
pub const TOKEN_PARAM: &str = "token";

/// The first credential found, in precedence order.
#[derive(Debug, PartialEq, Eq)]
pub enum PresentedCredential<'a> {
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
pub fn presented<'a>(req: &'a HttpRequest, cookie: &str) -> Result<PresentedCredential<'a>, AuthError> {
    let headers = req.headers();
    if let Some(v) = headers.get("x-api-key") {
        let key = v.to_str().ok().map(str::trim).filter(|s| !s.is_empty()).ok_or(AuthError::Invalid)?;
        return Ok(PresentedCredential::ApiKey(key));
    }
    if let Some(b) = bearer(req) {
        return Ok(PresentedCredential::Bearer(b));
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
            return Ok(PresentedCredential::Token(t));
        }
    }
    if let Some(c) = session_cookie(req, cookie) {
        return Ok(PresentedCredential::Cookie(c));
    }
    Ok(PresentedCredential::Nothing)
}

/// Did the request's credential come from the session cookie (the ambient one, which a page's
/// scripts cannot read and so must never be shown)?
pub fn presented_in_cookie(req: &HttpRequest, cookie: &str) -> bool {
    matches!(presented(req, cookie), Ok(PresentedCredential::Cookie(_)))
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim()).filter(|s| !s.is_empty())
}

/// The named cookie, read from every `Cookie` header without allocating for the others.
/// Read as bytes: another cookie of the site holding UTF-8 must not hide the session cookie.
fn session_cookie(req: &HttpRequest, name: &str) -> Option<String> {
    for h in req.headers().get_all(header::COOKIE) {
        for pair in h.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            let Some(eq) = pair.iter().position(|&b| b == b'=') else { continue };
            if &pair[..eq] != name.as_bytes() {
                continue;
            }
            let mut v = pair[eq + 1..].trim_ascii();
            while let [b'"', rest @ ..] = v {
                v = rest;
            }
            while let [rest @ .., b'"'] = v {
                v = rest;
            }
            match std::str::from_utf8(v) {
                Ok(v) if !v.is_empty() => return Some(v.to_owned()),
                _ => {}
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
            url::form_urlencoded::parse(key.as_bytes()).next().is_none_or(|(k, _)| k != TOKEN_PARAM)
        })
        .collect();
    Cow::Owned(kept.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn p(req: &HttpRequest) -> PresentedCredential<'_> {
        presented(req, "sess").unwrap()
    }

    #[test]
    fn precedence() {
        let r = TestRequest::default()
            .insert_header(("X-Api-Key", " k1 "))
            .insert_header(("Authorization", "Bearer k2"))
            .to_http_request();
        assert_eq!(p(&r), PresentedCredential::ApiKey("k1"));
        let r = TestRequest::with_uri("/x?token=t1")
            .insert_header(("Authorization", "bearer   k3"))
            .insert_header(("Cookie", "sess=c1"))
            .to_http_request();
        assert_eq!(p(&r), PresentedCredential::Bearer("k3"));
        let r = TestRequest::with_uri("/x?w=1&token=t1")
            .insert_header(("Cookie", "a=b; sess=c1"))
            .to_http_request();
        assert_eq!(p(&r), PresentedCredential::Token("t1".into()));
        let r = TestRequest::with_uri("/x").insert_header(("Cookie", "a=b; sess=c1; c=d")).to_http_request();
        assert_eq!(p(&r), PresentedCredential::Cookie("c1".into()));
        let r = TestRequest::default()
            .insert_header(("Authorization", "Basic dXNlcjpwdw=="))
            .insert_header(("Cookie", "sessx=1"))
            .to_http_request();
        assert_eq!(p(&r), PresentedCredential::Nothing);
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
    fn a_non_ascii_cookie_does_not_hide_the_session_cookie() {
        let r = TestRequest::default()
            .insert_header(("Cookie", &b"lang=fran\xc3\xa7ais; sess=t1; x=\xff"[..]))
            .to_http_request();
        assert_eq!(p(&r), PresentedCredential::Cookie("t1".into()));
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJ.eyJ.sig-_"));
        assert!(!looks_like_jwt("plain-api-key"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a.b c.d"));
    }

    /// Property tests: any header bytes, structured cookie and Authorization headers.
    mod fuzz {
        use super::*;
        use actix_web::http::header::HeaderValue;
        use proptest::prelude::*;
        use proptest::test_runner::Config;

        fn config() -> Config {
            let cases = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
            Config { cases, failure_persistence: None, ..Config::default() }
        }

        /// Header bytes heavy in the characters the parsers split on, some of them not ASCII.
        fn bytes() -> impl Strategy<Value = Vec<u8>> {
            let byte = prop_oneof![
                4 => prop::sample::select(b"sess=;\" .\t,aB9-_~+/".to_vec()),
                2 => 0x21u8..0x7f,
                1 => 0x80u8..=0xff,
                1 => any::<u8>(),
            ];
            prop::collection::vec(byte, 0..60)
        }

        fn name() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec!["cookie", "authorization", "x-api-key"])
        }

        /// A cookie value as sent, and what the parser must read from it (`None`: nothing).
        type CookieValue = (Vec<u8>, Option<String>);

        fn cookie_value() -> impl Strategy<Value = CookieValue> {
            let token = "[A-Za-z0-9._-]{1,24}";
            prop_oneof![
                Just((vec![], None)),
                Just((b"\"\"".to_vec(), None)),
                token.prop_map(|t| (t.clone().into_bytes(), Some(t))),
                token.prop_map(|t| (format!("\"{t}\"").into_bytes(), Some(t))),
                token.prop_map(|t| (format!(" {t} ").into_bytes(), Some(t))),
                token.prop_map(|t| (format!("{t}=x").into_bytes(), Some(format!("{t}=x")))),
                token.prop_map(|t| (format!("{t}\u{e9}").into_bytes(), Some(format!("{t}\u{e9}")))),
                token.prop_map(|t| {
                    let mut b = t.into_bytes();
                    b.push(0xff);
                    (b, None)
                }),
            ]
        }

        fn cookie_header() -> impl Strategy<Value = Vec<(&'static str, CookieValue)>> {
            let name = prop::sample::select(vec!["sess", "sess", "Sess", "sessx", "xsess", "a", ""]);
            prop::collection::vec((name, cookie_value()), 0..5)
        }

        fn request(headers: &[(&'static str, Vec<u8>)], uri: &str) -> Option<HttpRequest> {
            let mut req = TestRequest::with_uri(uri);
            for (name, value) in headers {
                // append: several Cookie headers stay several.
                req = req.append_header((*name, HeaderValue::from_bytes(value).ok()?));
            }
            Some(req.to_http_request())
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_header_bytes(
                headers in prop::collection::vec((name(), bytes()), 0..4),
                query in prop::sample::select(vec!["/x", "/x?token=t", "/x?tok%65n=", "/x?token=a&token=b"]),
            ) {
                let Some(req) = request(&headers, query) else { return Ok(()) };
                let sent = |n: &str| -> Vec<&[u8]> {
                    headers.iter().filter(|(h, _)| *h == n).map(|(_, v)| v.as_slice()).collect()
                };
                let within = |v: &[u8], n: &str| sent(n).iter().any(|h| h.windows(v.len()).any(|w| w == v));
                let clean = |v: &str| !v.is_empty() && v.trim() == v;
                match presented(&req, "sess") {
                    Ok(PresentedCredential::ApiKey(k)) => prop_assert!(clean(k) && within(k.as_bytes(), "x-api-key")),
                    Ok(PresentedCredential::Bearer(b)) => {
                        prop_assert!(clean(b) && within(b.as_bytes(), "authorization"));
                        prop_assert!(sent("x-api-key").is_empty());
                    }
                    Ok(PresentedCredential::Token(t)) => prop_assert_eq!(t, "t"),
                    Ok(PresentedCredential::Cookie(c)) => {
                        prop_assert!(clean(&c) && !c.contains(';') && !c.starts_with('"') && !c.ends_with('"'));
                        prop_assert!(within(b"sess=", "cookie") && within(c.as_bytes(), "cookie"));
                        prop_assert!(sent("x-api-key").is_empty() && query == "/x");
                    }
                    Ok(PresentedCredential::Nothing) => prop_assert!(sent("x-api-key").is_empty()),
                    Err(e) => prop_assert!(matches!(e, AuthError::Invalid), "{e:?}"),
                }
            }

            /// Several Cookie headers, duplicates, quotes, UTF-8 and bad UTF-8: the first
            /// non-empty `sess` cookie, whatever the other cookies hold.
            #[test]
            fn the_first_session_cookie_wins(
                headers in prop::collection::vec((cookie_header(), prop::sample::select(vec!["; ", ";", " ;  "])), 0..4),
            ) {
                let mut raw = Vec::new();
                let mut expected = None;
                for (pairs, sep) in &headers {
                    let mut h = Vec::new();
                    for (i, (name, (value, effective))) in pairs.iter().enumerate() {
                        if i > 0 {
                            h.extend_from_slice(sep.as_bytes());
                        }
                        h.extend_from_slice(name.as_bytes());
                        h.push(b'=');
                        h.extend_from_slice(value);
                        if *name == "sess" && expected.is_none() {
                            expected.clone_from(effective);
                        }
                    }
                    raw.push(("cookie", h));
                }
                let req = request(&raw, "/x").expect("cookie bytes are header-safe");
                let want = expected.map_or(PresentedCredential::Nothing, PresentedCredential::Cookie);
                prop_assert_eq!(presented(&req, "sess").unwrap(), want);
            }

            #[test]
            fn bearer_needs_the_scheme_a_space_and_a_value(
                lead in prop::sample::select(vec!["", " "]),
                scheme in prop::sample::select(vec!["Bearer", "bearer", "BEARER", "Basic", "Bearerx", "Bear", ""]),
                sep in prop::sample::select(vec![" ", "  ", " \t", "\t"]),
                value in "[A-Za-z0-9._~+/=-]{0,40}",
                trail in prop::sample::select(vec!["", " ", "\t"]),
            ) {
                let header = format!("{lead}{scheme}{sep}{value}{trail}");
                let req = request(&[("authorization", header.clone().into_bytes())], "/x").unwrap();
                let bearer = scheme.eq_ignore_ascii_case("bearer") && sep.starts_with(' ') && !value.is_empty();
                let want = if bearer { PresentedCredential::Bearer(&value) } else { PresentedCredential::Nothing };
                prop_assert_eq!(presented(&req, "sess").unwrap(), want, "{:?}", header);
            }
        }
    }
}

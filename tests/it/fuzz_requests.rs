//! Property-based fuzzing of everything a request carries — path, id, frame, query, credentials
//! (API key, bearer, session token as bearer, cookie or `token` parameter), If-None-Match,
//! Accept, cookies, request id — through the real app in process. Never a 5xx, never a panic;
//! every refusal is JSON with a documented code.
//!
//! Bounded: FUZZ_CASES (default 600) cases, each a single in-process request. The session-token
//! verifier and signed links have their own properties in tests/it/fuzz_tokens.rs.

#![allow(clippy::unwrap_used)]

use crate::support::*;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::test as atest;
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};

/// Codes the API may answer with (the ErrorCode enum of openapi.yaml, checked there too).
fn documented_codes() -> Vec<String> {
    let spec: serde_json::Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap(),
    )
    .unwrap();
    spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Header-safe text: visible ASCII and spaces, sometimes Latin-1 bytes.
fn header_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ -~]{0,120}".prop_map(String::into_bytes),
        proptest::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff], 0..80),
    ]
}

fn id_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(ID.to_owned()),
        "[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}",
        "[0-9a-fA-F-]{40,48}",
        ".{0,60}".prop_map(|s| enc(&s)),
        Just("..%2F..%2Fsystem".to_owned()),
    ]
}

fn frame_segment() -> impl Strategy<Value = String> {
    prop_oneof![(0u32..5).prop_map(|n| n.to_string()), "[0-9+-]{0,8}", ".{0,12}".prop_map(|s| enc(&s))]
}

fn query(token: String) -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("w"),
        Just("h"),
        Just("fit"),
        Just("format"),
        Just("q"),
        Just("quality"),
        Just("preset"),
        Just("window-center"),
        Just("window-width"),
        Just("token"),
        Just("zz"),
    ]
    .prop_map(str::to_owned);
    let value = prop_oneof![
        (0i64..3000).prop_map(|n| n.to_string()),
        Just("contain".to_owned()),
        Just("cover".to_owned()),
        Just("webp".to_owned()),
        Just("auto".to_owned()),
        Just("thumb".to_owned()),
        Just("NaN".to_owned()),
        Just("1e308".to_owned()),
        Just("-0".to_owned()),
        Just(token),
        ".{0,20}",
    ];
    let raw = "[ -~]{0,40}".prop_map(|s| enc(&s));
    prop_oneof![
        proptest::collection::vec((key, value), 0..5).prop_map(|kv| {
            kv.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect::<Vec<_>>().join("&")
        }),
        raw,
    ]
}

/// A session token the edge accepts.
fn session_token() -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "fuzz", "exp": jsonwebtoken::get_current_timestamp() + 3600}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

fn credential(token: String) -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    prop_oneof![
        Just(vec![("x-api-key", PREVIEW_KEY.as_bytes().to_vec())]),
        Just(vec![("authorization", format!("Bearer {token}").into_bytes())]),
        Just(vec![("cookie", format!("orthanc_edge_session={token}").into_bytes())]),
        Just(vec![("authorization", format!("Bearer {PREVIEW_KEY}").into_bytes())]),
        Just(vec![("x-api-key", ADMIN_KEY.as_bytes().to_vec())]),
        Just(vec![]),
        header_text().prop_map(|v| vec![("x-api-key", v)]),
        header_text().prop_map(|v| vec![("authorization", v)]),
        header_text().prop_map(|v| {
            let mut b = b"Bearer ".to_vec();
            b.extend(v);
            vec![("authorization", b)]
        }),
        header_text().prop_map(|v| vec![("cookie", v)]),
        header_text().prop_map(|v| {
            let mut b = b"orthanc_edge_session=".to_vec();
            b.extend(v);
            vec![("cookie", b)]
        }),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    uri: String,
    headers: Vec<(&'static str, Vec<u8>)>,
}

fn case(token: String) -> impl Strategy<Value = Case> {
    let path = prop_oneof![
        (id_segment(), prop_oneof![Just("preview"), Just("rendered")])
            .prop_map(|(id, kind)| format!("/instances/{id}/{kind}")),
        (id_segment(), frame_segment(), prop_oneof![Just("preview"), Just("rendered")])
            .prop_map(|(id, f, kind)| format!("/instances/{id}/frames/{f}/{kind}")),
        Just("/healthz".to_owned()),
        "(/[a-z0-9%.]{0,12}){0,5}",
    ];
    let method = prop_oneof![4 => Just("GET"), 1 => Just("HEAD"), 1 => Just("POST"), 1 => Just("DELETE")];
    let extra = proptest::collection::vec(
        (
            prop_oneof![Just("if-none-match"), Just("accept"), Just("cookie"), Just("x-request-id")],
            header_text(),
        ),
        0..4,
    );
    (method, path, query(token.clone()), credential(token), extra).prop_map(
        |(method, path, q, mut headers, extra)| {
            headers.extend(extra);
            let uri = if q.is_empty() { path } else { format!("{path}?{q}") };
            Case { method, uri, headers }
        },
    )
}

#[test]
fn arbitrary_requests_get_documented_answers() {
    let cases: u32 = std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    let codes = documented_codes();
    let sys = actix_web::rt::System::new();
    let dir = tempfile::tempdir().unwrap();
    let (fake, app) = sys.block_on(async {
        let fake = FakeOrthanc::start().await;
        let state = orthanc_edge::state::AppState::build(test_config(
            &fake.url,
            dir.path(),
            &[("ORTHANC_EDGE__AUTH__JWT__SECRET", JWT_SECRET)],
        ))
        .unwrap();
        let app = in_process(state).await;
        (fake, app)
    });
    let mut runner = TestRunner::new(PtConfig { cases, failure_persistence: None, ..PtConfig::default() });
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::new());
    runner
        .run(&case(session_token()), |c| {
            let Ok(uri) = c.uri.parse::<actix_web::http::Uri>() else {
                return Ok(()); // not a request a client could send
            };
            let mut req =
                atest::TestRequest::default().method(c.method.parse().unwrap()).uri(&uri.to_string());
            for (name, value) in &c.headers {
                if let Ok(v) = HeaderValue::from_bytes(value) {
                    req = req.insert_header((HeaderName::from_static(name), v));
                }
            }
            let Reply { status, content_type: ct, body } = sys.block_on(app(req));
            *statuses.borrow_mut().entry(status).or_insert(0u32) += 1;
            prop_assert!(status < 500, "{c:?} → {status}: {}", String::from_utf8_lossy(&body));
            if status >= 400 && c.method != "HEAD" {
                prop_assert_eq!(ct.as_str(), "application/json", "{:?}", c);
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let code = v["code"].as_str().unwrap_or("");
                prop_assert!(codes.iter().any(|k| k == code), "undocumented code {code} for {c:?}");
            }
            Ok(())
        })
        .unwrap();
    let statuses = statuses.into_inner();
    eprintln!("statuses: {statuses:?}");
    assert!(statuses.keys().any(|s| *s == 200), "some cases reached an image");
    assert!(statuses.keys().any(|s| *s == 400), "some cases were refused");
    sys.block_on(fake.stop());
}

//! openapi.yaml is kept true: its paths answer, its parameters are exactly the accepted ones, its
//! error codes are exactly the README's, and each error the edge produces is documented for its path.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::*;

fn spec() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn resolve<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let ptr = r.trim_start_matches('#');
            spec.pointer(ptr).unwrap_or_else(|| panic!("dangling $ref {r}"))
        }
        None => v,
    }
}

fn error_codes(spec: &Value) -> BTreeSet<String> {
    spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn error_codes_match_the_readme_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut table = BTreeSet::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() > 3 && cells[1].len() == 3 && cells[1].bytes().all(|b| b.is_ascii_digit()) {
            for code in cells[2].split('/') {
                table.insert(code.trim().trim_matches('`').to_owned());
            }
        }
    }
    let mut spec_codes = error_codes(&spec());
    spec_codes.remove("internal"); // never meant to happen; documented in the schema only
    assert_eq!(spec_codes, table, "openapi.yaml ErrorCode vs README error table");
}

#[actix_web::test]
async fn documented_paths_and_parameters_are_exactly_what_the_edge_accepts() {
    let spec = spec();
    let fake = FakeOrthanc::start().await;
    let dir = tempfile::tempdir().unwrap();
    let edge = TestEdge::start(test_config(&fake.url, dir.path(), &[])).await;
    let c = client();
    let sample = |name: &str| -> &'static str {
        match name {
            "quality" | "q" => "50",
            "w" | "h" => "40",
            "fit" => "cover",
            "format" => "png",
            "preset" => "thumb",
            _ => panic!("no sample value for documented parameter {name}"),
        }
    };
    let paths = spec["paths"].as_object().unwrap();
    assert_eq!(paths.len(), 6);
    for (template, item) in paths {
        let path = template.replace("{id}", ID).replace("{frame}", "0");
        let op = &item["get"];
        assert!(op.is_object(), "{template}: GET documented");
        let is_image = template.starts_with("/instances/");
        let key = if is_image { Some(PREVIEW_KEY) } else { None };
        let send = |url: String| {
            let mut r = c.get(url);
            if let Some(k) = key {
                r = r.header("X-Api-Key", k);
            }
            r.send()
        };
        let r = send(format!("{}{path}", edge.url)).await.unwrap();
        assert_eq!(r.status(), 200, "{template} answers");
        if !is_image {
            continue;
        }
        // Each documented query parameter is accepted...
        let mut documented = BTreeSet::new();
        for p in op["parameters"].as_array().unwrap() {
            let p = resolve(&spec, p);
            if p["in"] != "query" {
                continue;
            }
            documented.insert(p["name"].as_str().unwrap().to_owned());
        }
        for name in &documented {
            let qs = match name.as_str() {
                "window-center" | "window-width" => "window-center=40&window-width=400".to_owned(),
                n => format!("{n}={}", sample(n)),
            };
            let r = send(format!("{}{path}?{qs}", edge.url)).await.unwrap();
            assert_eq!(r.status(), 200, "{template}?{qs}");
        }
        // ...and the edge's list of allowed parameters is exactly the documented one.
        let r = send(format!("{}{path}?undocumented=1", edge.url)).await.unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        let msg = v["message"].as_str().unwrap();
        let allowed: BTreeSet<String> =
            msg.split("allowed: ").nth(1).unwrap().split(", ").map(str::to_owned).collect();
        assert_eq!(allowed, documented, "{template}");
    }
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn every_error_the_edge_makes_is_documented_for_its_path() {
    let spec = spec();
    let codes = error_codes(&spec);
    let fake = FakeOrthanc::start().await;
    let dir = tempfile::tempdir().unwrap();
    let edge = TestEdge::start(test_config(&fake.url, dir.path(), &[])).await;
    let c = client();
    let url = |p: &str| format!("{}{p}", edge.url);
    let pv = |id: &str| format!("/instances/{id}/preview");
    // (template, request, expected status, expected code)
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        ("/instances/{id}/preview", c.get(url("/instances/nope/preview")), 400, "bad-id"),
        ("/instances/{id}/preview", c.get(url(&format!("{}?w=0", pv(ID)))), 400, "bad-param"),
        ("/instances/{id}/preview", c.get(url(&pv(ID))), 401, "unauthenticated"),
        ("/instances/{id}/preview", c.get(url(&pv(ID))).header("X-Api-Key", "x"), 401, "invalid-credentials"),
        ("/instances/{id}/preview", c.get(url(&pv(ID))).header("X-Api-Key", ADMIN_KEY), 403, "forbidden"),
        (
            "/instances/{id}/preview",
            c.get(url(&format!("{}?w={}", pv(ID), "1".repeat(3000)))),
            414,
            "uri-too-long",
        ),
        (
            "/instances/{id}/preview",
            c.get(url(&pv(ID))).header("X-Api-Key", PREVIEW_KEY).header("X-Big", "b".repeat(20_000)),
            431,
            "headers-too-large",
        ),
    ];
    let mut seen = BTreeSet::new();
    for (template, req, status, code) in cases {
        let r = req.send().await.unwrap();
        check(&spec, &codes, template, r, status, code).await;
        seen.insert(code);
    }
    for (n, (mode, status, code)) in [
        (Mode::Status(404), 404, "not-found"),
        (Mode::Status(415), 415, "unsupported-image"),
        (Mode::Status(500), 502, "upstream-error"),
        (Mode::Garbage, 502, "upstream-bad-response"),
    ]
    .into_iter()
    .enumerate()
    {
        fake.set_mode(mode);
        // A fresh id each time: a 404 is remembered for its id.
        let other = format!("0000000{n}-00000000-00000000-0000000a-00000000");
        let r = c.get(url(&pv(&other))).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
        check(&spec, &codes, "/instances/{id}/preview", r, status, code).await;
        fake.set_mode(Mode::Normal);
    }
    // Outside the documented operations: JSON too, with a documented code.
    let r = c.post(url(&pv(ID))).send().await.unwrap();
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    assert_eq!(code_of(r, 405).await, "method-not-allowed");
    assert_eq!(code_of(c.get(url("/system")).send().await.unwrap(), 404).await, "no-route");
    edge.stop().await;
    fake.stop().await;

    async fn code_of(r: reqwest::Response, status: u16) -> String {
        assert_eq!(r.status(), status);
        let v: Value = r.json().await.unwrap();
        v["code"].as_str().unwrap().to_owned()
    }
}

async fn check(
    spec: &Value,
    codes: &BTreeSet<String>,
    template: &str,
    r: reqwest::Response,
    status: u16,
    code: &str,
) {
    assert_eq!(r.status().as_u16(), status, "{code}");
    let responses = &spec["paths"][template]["get"]["responses"];
    assert!(responses.get(status.to_string()).is_some(), "{template}: status {status} not documented");
    if status == 503 || status == 504 {
        assert!(r.headers().contains_key("retry-after"));
    }
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], code);
    assert!(codes.contains(code), "{code} not in ErrorCode");
    let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["code", "message"]), "error body is exactly {{code, message}}");
}

//! openapi.yaml is kept true: its paths and methods are exactly the edge's routes, every operation
//! answers a documented status with a body and headers that match its schemas, its query
//! parameters are exactly the accepted ones, its scopes and credentials are the ones enforced, and
//! its error codes are exactly the README's, each documented for the statuses that carry it.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use crate::support::*;
use serde_json::{json, Value};

/// The fake Orthanc's tree: STUDY → SERIES → ID, and their DICOM UIDs.
const STUDY: &str = "0e1437e1-8e289db9-3ecf395f-d8aae463-f4bb49fe";
const SERIES: &str = "3ecf395f-0e1437e1-8e289db9-d8aae463-f4bb49fe";
const STUDY_UID: &str = "1.2.826.0.1.3680043.8.498.1";
const SERIES_UID: &str = "1.2.826.0.1.3680043.8.498.1.7";
const INSTANCE_UID: &str = "1.2.826.0.1.3680043.8.498.1.7.1";

const METHODS: [&str; 8] = ["get", "head", "post", "put", "delete", "patch", "options", "trace"];

fn spec() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Follow `$ref`s (local ones only: the spec is one file).
fn resolve<'a>(spec: &'a Value, mut v: &'a Value) -> &'a Value {
    while let Some(r) = v.get("$ref").and_then(Value::as_str) {
        v = spec.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling $ref {r}"));
    }
    v
}

/// One documented operation.
struct Op<'a> {
    template: String,
    method: String,
    op: &'a Value,
    /// Path-level and operation-level parameters, resolved.
    params: Vec<&'a Value>,
}

impl Op<'_> {
    fn label(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.template)
    }

    fn query_params(&self) -> BTreeSet<String> {
        self.params
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn scope(&self) -> Option<&str> {
        self.op.get("x-scope").and_then(Value::as_str)
    }

    /// Names of the security schemes any one of which the operation accepts.
    fn schemes(&self, spec: &Value) -> BTreeSet<String> {
        let reqs = self.op.get("security").unwrap_or(&spec["security"]);
        reqs.as_array().unwrap().iter().flat_map(|r| r.as_object().unwrap().keys().cloned()).collect()
    }
}

impl<'a> Op<'a> {
    fn response(&self, spec: &'a Value, status: u16) -> Option<&'a Value> {
        self.op["responses"].get(status.to_string()).map(|r| resolve(spec, r))
    }
}

fn operations(spec: &Value) -> Vec<Op<'_>> {
    let mut out = Vec::new();
    for (template, item) in spec["paths"].as_object().unwrap() {
        let shared: Vec<&Value> =
            item.get("parameters").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let mut params: Vec<&Value> = shared.iter().map(|p| resolve(spec, p)).collect();
            if let Some(own) = op.get("parameters").and_then(Value::as_array) {
                params.extend(own.iter().map(|p| resolve(spec, p)));
            }
            out.push(Op { template: template.clone(), method: method.to_owned(), op, params });
        }
    }
    out
}

fn error_codes(spec: &Value) -> BTreeSet<String> {
    spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The keywords `check_schema` understands; a schema using any other one fails the test, so the
/// checker never silently accepts what it does not check.
const KEYWORDS: [&str; 20] = [
    "$ref",
    "allOf",
    "anyOf",
    "type",
    "nullable",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "pattern",
    "maxLength",
    "description",
    "format",
    "example",
];

/// Does `v` match `schema`? The subset of OpenAPI 3.0 schemas openapi.yaml uses. Errors are
/// pushed with their JSON path.
fn check_schema(spec: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    let obj = schema.as_object().unwrap_or_else(|| panic!("{at}: schema is not an object"));
    for k in obj.keys() {
        assert!(KEYWORDS.contains(&k.as_str()), "{at}: the test's schema checker does not know `{k}`");
    }
    if v.is_null() && schema["nullable"] == true {
        return;
    }
    for s in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        check_schema(spec, s, v, at, errors);
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let ok = any.iter().any(|s| {
            let mut e = Vec::new();
            check_schema(spec, s, v, at, &mut e);
            e.is_empty()
        });
        if !ok {
            errors.push(format!("{at}: matches none of anyOf"));
        }
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            other => panic!("{at}: unknown type {other}"),
        };
        if !ok {
            errors.push(format!("{at}: {v} is not of type {t}"));
            return;
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            errors.push(format!("{at}: {v} not in {e:?}"));
        }
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            let exclusive = schema["exclusiveMinimum"] == true;
            if n < min || (exclusive && n == min) {
                errors.push(format!("{at}: {n} below the minimum {min}"));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if n > max {
                errors.push(format!("{at}: {n} above the maximum {max}"));
            }
        }
    }
    if let Some(s) = v.as_str() {
        if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
            if !regex::Regex::new(p).unwrap().is_match(s) {
                errors.push(format!("{at}: {s:?} does not match {p}"));
            }
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if s.chars().count() as u64 > max {
                errors.push(format!("{at}: longer than {max}"));
            }
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                errors.push(format!("{at}: fewer than {min} items"));
            }
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
            if items.len() as u64 > max {
                errors.push(format!("{at}: more than {max} items"));
            }
        }
        if let Some(s) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                check_schema(spec, s, item, &format!("{at}[{i}]"), errors);
            }
        }
    }
    if let Some(o) = v.as_object() {
        for r in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !o.contains_key(r.as_str().unwrap()) {
                errors.push(format!("{at}: missing {r}"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, val) in o {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check_schema(spec, s, val, &format!("{at}.{k}"), errors),
                None if schema["additionalProperties"] == false => {
                    errors.push(format!("{at}: undocumented property {k}"))
                }
                None => {}
            }
        }
    }
}

fn assert_schema(spec: &Value, schema: &Value, v: &Value, what: &str) {
    let mut errors = Vec::new();
    check_schema(spec, schema, v, "$", &mut errors);
    assert!(errors.is_empty(), "{what}: {v}\n{}", errors.join("\n"));
}

/// A response (status, headers, body) matches what `op` documents for its status.
fn check_response(spec: &Value, op: &Op, status: u16, headers: &reqwest::header::HeaderMap, body: &[u8]) {
    let label = op.label();
    let doc = op.response(spec, status).unwrap_or_else(|| panic!("{label}: status {status} not documented"));
    for (name, h) in doc.get("headers").and_then(Value::as_object).into_iter().flatten() {
        let h = resolve(spec, h);
        let Some(value) = headers.get(name.as_str()) else {
            assert!(h["required"] != true, "{label} {status}: required header {name} missing");
            continue;
        };
        let value = value.to_str().unwrap();
        let schema = resolve(spec, &h["schema"]);
        let v = match schema["type"].as_str() {
            Some("integer") => json!(value.parse::<i64>().unwrap_or_else(|_| panic!("{name}: {value}"))),
            _ => json!(value),
        };
        assert_schema(spec, schema, &v, &format!("{label} {status} header {name}"));
    }
    let content = doc.get("content").and_then(Value::as_object);
    let Some(content) = content else {
        assert!(body.is_empty(), "{label} {status}: body where none is documented");
        return;
    };
    if op.method == "head" {
        assert!(body.is_empty(), "{label}: HEAD with a body");
    }
    let ct = headers.get("content-type").map(|v| v.to_str().unwrap()).unwrap_or("");
    let mime = ct.split(';').next().unwrap().trim();
    let media =
        content.get(mime).unwrap_or_else(|| panic!("{label} {status}: content type {ct} not documented"));
    if mime == "application/json" && op.method != "head" {
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_schema(spec, &media["schema"], &v, &format!("{label} {status} body"));
    }
}

/// The edge the walks run against: a fake Orthanc holding STUDY → SERIES → ID, minting on, no
/// failure limit (the walks send wrong credentials on purpose).
async fn setup(env: &[(&str, &str)]) -> (FakeOrthanc, tempfile::TempDir, TestEdge) {
    let fake = FakeOrthanc::start().await;
    fake.add_instance(ID, SERIES, STUDY);
    fake.add_uid(STUDY_UID, "Study", STUDY);
    fake.add_uid(SERIES_UID, "Series", SERIES);
    fake.add_uid(INSTANCE_UID, "Instance", ID);
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![("ORTHANC_EDGE__AUTH__RATE_LIMIT__FAILURES_PER_MINUTE", "0")];
    all.extend_from_slice(env);
    let edge = TestEdge::builder(&fake.url).envs(&all).cache_dir(dir.path()).start().await;
    (fake, dir, edge)
}

const JWT_ENV: (&str, &str) = ("ORTHANC_EDGE__AUTH__JWT__SECRET", JWT_SECRET);

fn key_for(scope: &str) -> &'static str {
    match scope {
        "preview" => PREVIEW_KEY,
        "admin" => ADMIN_KEY,
        "warm" => WARM_KEY,
        "mint" => MINT_KEY,
        other => panic!("x-scope {other}: no test key"),
    }
}

/// A concrete path for a template: the fake Orthanc's resources, a running job's id.
fn concrete(template: &str, job: &str) -> String {
    let id = if template.starts_with("/studies/") || template.starts_with("/cache/studies/") {
        STUDY
    } else if template.starts_with("/series/") || template.starts_with("/cache/series/") {
        SERIES
    } else {
        ID
    };
    // DICOMweb counts frames from 1, Orthanc from 0.
    let frame = if template.starts_with("/dicom-web/") { "1" } else { "0" };
    template
        .replace("{id}", id)
        .replace("{frame}", frame)
        .replace("{study}", STUDY_UID)
        .replace("{series}", SERIES_UID)
        .replace("{instance}", INSTANCE_UID)
        .replace("{job}", job)
}

/// A request for `op` with its documented example body, if any.
fn request(
    c: &reqwest::Client,
    spec: &Value,
    base: &str,
    op: &Op,
    path_and_query: &str,
) -> reqwest::RequestBuilder {
    let method = reqwest::Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
    let mut r = c.request(method, format!("{base}{path_and_query}"));
    if let Some(body) = op.op.get("requestBody") {
        let media = &resolve(spec, body)["content"]["application/json"];
        let example = media.get("example").unwrap_or_else(|| panic!("{}: no example body", op.label()));
        r = r.json(example);
    }
    r
}

async fn start_job(edge: &TestEdge) -> String {
    let r = client()
        .post(format!("{}/warm", edge.url))
        .header("X-Api-Key", WARM_KEY)
        .json(&json!({"series": [SERIES], "presets": ["thumb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

async fn session_token(edge: &TestEdge) -> String {
    let r = client()
        .post(format!("{}/auth/session", edge.url))
        .header("X-Api-Key", MINT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
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

#[test]
fn examples_and_error_schemas_are_consistent() {
    let spec = spec();
    let codes: Vec<Value> = error_codes(&spec).into_iter().map(Value::from).collect();
    // Every status-specific error code is an ErrorCode.
    for (name, s) in spec["components"]["schemas"].as_object().unwrap() {
        if name.ends_with("Error") && name != "Error" {
            for code in s["allOf"][1]["properties"]["code"]["enum"].as_array().unwrap() {
                assert!(codes.contains(code), "{name}: {code} is not an ErrorCode");
            }
        }
    }
    // Every example body matches its schema.
    for op in operations(&spec) {
        if let Some(body) = op.op.get("requestBody") {
            let media = &resolve(&spec, body)["content"]["application/json"];
            assert_schema(&spec, &media["schema"], &media["example"], &op.label());
        }
    }
}

/// The public route table (`http::ROUTES`), `{name:a|b}` alternatives spelt out.
fn served_paths() -> BTreeSet<String> {
    let alternatives = regex::Regex::new(r"\{\w+:([\w|]+)\}").unwrap();
    let mut out = BTreeSet::new();
    for route in orthanc_edge::http::ROUTES {
        let path = route.path;
        match alternatives.captures(path) {
            Some(alt) => {
                for word in alt[1].split('|') {
                    out.insert(alternatives.replace(path, word).into_owned());
                }
            }
            None => {
                out.insert(path.to_owned());
            }
        }
    }
    out
}

#[actix_web::test]
async fn documented_routes_and_methods_are_exactly_the_served_ones() {
    let spec = spec();
    let documented: BTreeSet<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(documented, served_paths(), "openapi.yaml paths vs src/http/routes.rs");

    let (fake, _dir, edge) = setup(&[JWT_ENV]).await;
    let c = client();
    let job = start_job(&edge).await;
    let mut methods: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for op in operations(&spec) {
        methods.entry(op.template.clone()).or_default().insert(op.method.to_uppercase());
    }
    for (template, documented) in &methods {
        let path = concrete(template, &job);
        // A method no path serves: 405, and Allow names exactly the documented methods.
        let r = c.put(format!("{}{path}", edge.url)).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
        assert_eq!(r.status(), 405, "PUT {template}");
        let allow: BTreeSet<String> =
            r.headers()["allow"].to_str().unwrap().split(',').map(|m| m.trim().to_owned()).collect();
        assert_eq!(&allow, documented, "{template}: Allow vs documented methods");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "method-not-allowed");
        // Nothing hangs below a documented path (unless a parameter does: /warm/{job}).
        let depth = template.matches('/').count() + 1;
        if methods.keys().any(|t| t.starts_with(&format!("{template}/{{")) && t.matches('/').count() == depth)
        {
            continue;
        }
        let r =
            c.get(format!("{}{path}/more", edge.url)).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
        assert_eq!(r.status(), 404, "{template}/more");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "no-route");
    }
    // Neighbours of documented paths that are not routes (Orthanc's own, admin-only, other levels).
    for path in [
        "/system".to_owned(),
        "/metrics".to_owned(),
        format!("/instances/{ID}"),
        format!("/series/{SERIES}"),
        format!("/studies/{STUDY}"),
        format!("/patients/{ID}/preview"),
        format!("/cache/patients/{ID}"),
        format!("/dicom-web/studies/{STUDY_UID}"),
        format!("/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}"),
        format!("/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}/instances/1.2.3/frames/1"),
        "/auth".to_owned(),
        "/warm/".to_owned(),
    ] {
        let r = c.get(format!("{}{path}", edge.url)).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "no-route", "{path}");
    }
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn every_operation_answers_as_documented() {
    let spec = spec();
    let (fake, _dir, edge) = setup(&[JWT_ENV]).await;
    let c = client();
    let job = start_job(&edge).await;
    let ops = operations(&spec);
    assert!(ops.len() >= 30, "{} operations", ops.len());
    for op in &ops {
        let label = op.label();
        let path = concrete(&op.template, &job);
        let mut req = request(&c, &spec, &edge.url, op, &path);
        if let Some(scope) = op.scope() {
            req = req.header("X-Api-Key", key_for(scope));
        } else {
            assert!(op.schemes(&spec).is_empty(), "{label}: credentials but no x-scope");
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        assert!((200..300).contains(&status), "{label}: {status}");
        let headers = r.headers().clone();
        let body = r.bytes().await.unwrap();
        check_response(&spec, op, status, &headers, &body);
        // A documented 304 is what the ETag gets back.
        if op.response(&spec, 304).is_some() {
            let etag = headers["etag"].to_str().unwrap();
            let r = request(&c, &spec, &edge.url, op, &path)
                .header("X-Api-Key", key_for(op.scope().unwrap()))
                .header("If-None-Match", etag)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 304, "{label} If-None-Match");
            let headers = r.headers().clone();
            check_response(&spec, op, 304, &headers, &r.bytes().await.unwrap());
        }
    }
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn scopes_and_credentials_are_the_documented_ones() {
    let spec = spec();
    let (fake, _dir, edge) = setup(&[JWT_ENV]).await;
    let c = client();
    let job = start_job(&edge).await;
    let token = session_token(&edge).await;
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["apiKey"]["name"], "X-Api-Key");
    let token_param = schemes["signedLink"]["name"].as_str().unwrap();
    let cookie = schemes["sessionCookie"]["name"].as_str().unwrap();
    for op in operations(&spec) {
        let label = op.label();
        let Some(scope) = op.scope() else { continue };
        let path = concrete(&op.template, &job);
        let send = |r: reqwest::RequestBuilder| async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            (status, headers, r.bytes().await.unwrap())
        };
        // No credential: 401; a key without the scope: 403.
        let (status, headers, body) = send(request(&c, &spec, &edge.url, &op, &path)).await;
        assert_eq!(status, 401, "{label} without a credential");
        check_response(&spec, &op, status, &headers, &body);
        let other = if scope == "preview" { ADMIN_KEY } else { PREVIEW_KEY };
        let (status, headers, body) =
            send(request(&c, &spec, &edge.url, &op, &path).header("X-Api-Key", other)).await;
        assert_eq!(status, 403, "{label} with a key lacking `{scope}`");
        check_response(&spec, &op, status, &headers, &body);
        // The key in Authorization: Bearer works as in X-Api-Key.
        let (status, ..) = send(request(&c, &spec, &edge.url, &op, &path).bearer_auth(key_for(scope))).await;
        assert!((200..300).contains(&status), "{label} with Bearer KEY: {status}");
        // A session token (unrestricted) works exactly where a session scheme is documented.
        let documented = op.schemes(&spec);
        let sep = if path.contains('?') { '&' } else { '?' };
        for (scheme, req) in [
            ("bearer", request(&c, &spec, &edge.url, &op, &path).bearer_auth(&token)),
            ("signedLink", request(&c, &spec, &edge.url, &op, &format!("{path}{sep}{token_param}={token}"))),
            (
                "sessionCookie",
                request(&c, &spec, &edge.url, &op, &path).header("Cookie", format!("{cookie}={token}")),
            ),
        ] {
            let (status, headers, body) = send(req).await;
            let accepts_sessions = documented.contains("signedLink");
            if accepts_sessions {
                assert!(documented.contains(scheme), "{label}: {scheme} not documented");
                assert!((200..300).contains(&status), "{label} with a session token ({scheme}): {status}");
            } else {
                assert!(!documented.contains("sessionCookie"), "{label}");
                assert_eq!(status, 403, "{label}: a session token ({scheme}) must not do `{scope}`");
            }
            check_response(&spec, &op, status, &headers, &body);
        }
    }
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn documented_query_parameters_are_exactly_the_accepted_ones() {
    let spec = spec();
    let (fake, _dir, edge) = setup(&[JWT_ENV]).await;
    let c = client();
    let job = start_job(&edge).await;
    let sample = |name: &str| -> &'static str {
        match name {
            "quality" => "quality=50",
            "q" => "q=50",
            "w" => "w=40",
            "h" => "h=40",
            "fit" => "fit=cover",
            "format" => "format=png",
            "preset" => "preset=thumb",
            "window-center" | "window-width" => "window-center=40&window-width=400",
            "viewport" => "viewport=40,30",
            "window" => "window=40,400,sigmoid",
            "width" => "width=40",
            "height" => "height=40",
            "smooth" => "smooth=1",
            "returnUnsupportedImage" => "returnUnsupportedImage",
            "accept" => "accept=image/png",
            _ => panic!("no sample value for documented parameter {name}"),
        }
    };
    let ops = operations(&spec);
    for op in &ops {
        let label = op.label();
        let documented = op.query_params();
        if op.method == "head" {
            // HEAD is answered by the GET handler: the same parameters.
            let get = ops.iter().find(|o| o.method == "get" && o.template == op.template).unwrap();
            assert_eq!(documented, get.query_params(), "{label}");
            continue;
        }
        let path = concrete(&op.template, &job);
        let key = op.scope().map(key_for);
        let send = |pq: String| {
            let mut r = request(&c, &spec, &edge.url, op, &pq);
            if let Some(k) = key {
                r = r.header("X-Api-Key", k);
            }
            r.send()
        };
        // Each documented query parameter is accepted...
        for name in &documented {
            let qs = sample(name);
            let r = send(format!("{path}?{qs}")).await.unwrap();
            assert!(r.status().is_success(), "{label}?{qs}: {}", r.status());
        }
        // ...and the edge's list of allowed parameters is exactly the documented one; a route that
        // reports no such list takes no parameters.
        let r = send(format!("{path}?undocumented=1")).await.unwrap();
        let status = r.status().as_u16();
        if status == 400 {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["code"], "bad-param");
            let msg = v["message"].as_str().unwrap();
            let allowed: BTreeSet<String> = if msg.ends_with("this route takes no query parameters") {
                BTreeSet::new()
            } else {
                let list = msg.split("allowed: ").nth(1).unwrap_or_else(|| panic!("{label}: {msg}"));
                list.split(", ").map(str::to_owned).collect()
            };
            assert_eq!(allowed, documented, "{label}");
        } else {
            assert!(r.status().is_success(), "{label}?undocumented=1: {status}");
            assert!(documented.is_empty(), "{label}: documents query parameters it does not check");
        }
    }
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn every_error_the_edge_makes_is_documented_for_its_path() {
    let spec = spec();
    let codes = error_codes(&spec);
    // Minting off here (no auth.jwt.secret).
    let (fake, _dir, edge) = setup(&[]).await;
    let c = client();
    let url = |p: &str| format!("{}{p}", edge.url);
    let pv = |id: &str| format!("/instances/{id}/preview");
    let unknown = "00000000-00000000-00000000-0000000b-00000000";
    let dw = |study: &str, series: &str| format!("/dicom-web/studies/{study}/series/{series}/thumbnail");
    // (method, template, request, expected status, expected code)
    let cases: Vec<(&str, &str, reqwest::RequestBuilder, u16, &str)> = vec![
        ("get", "/instances/{id}/preview", c.get(url("/instances/nope/preview")), 400, "bad-id"),
        ("get", "/instances/{id}/preview", c.get(url(&format!("{}?w=0", pv(ID)))), 400, "bad-param"),
        ("get", "/instances/{id}/preview", c.get(url(&pv(ID))), 401, "unauthenticated"),
        (
            "get",
            "/instances/{id}/preview",
            c.get(url(&pv(ID))).header("X-Api-Key", "x"),
            401,
            "invalid-credentials",
        ),
        (
            "get",
            "/instances/{id}/preview",
            c.get(url(&pv(ID))).header("X-Api-Key", ADMIN_KEY),
            403,
            "forbidden",
        ),
        (
            "get",
            "/instances/{id}/preview",
            c.get(url(&format!("{}?w={}", pv(ID), "1".repeat(3000)))),
            414,
            "uri-too-long",
        ),
        (
            "get",
            "/instances/{id}/preview",
            c.get(url(&pv(ID))).header("X-Api-Key", PREVIEW_KEY).header("X-Big", "b".repeat(20_000)),
            431,
            "headers-too-large",
        ),
        (
            "get",
            "/series/{id}/preview",
            c.get(url(&format!("/series/{unknown}/preview"))).header("X-Api-Key", PREVIEW_KEY),
            404,
            "not-found",
        ),
        (
            "get",
            "/studies/{id}/grid.json",
            c.get(url("/studies/x/grid.json")).header("X-Api-Key", PREVIEW_KEY),
            400,
            "bad-id",
        ),
        (
            "get",
            "/studies/{id}/grid",
            c.get(url(&format!("/studies/{STUDY}/grid?w=1"))).header("X-Api-Key", PREVIEW_KEY),
            400,
            "bad-param",
        ),
        (
            "head",
            "/studies/{id}/grid",
            c.head(url(&format!("/studies/{unknown}/grid"))).header("X-Api-Key", PREVIEW_KEY),
            404,
            "",
        ),
        (
            "get",
            "/studies/{id}/grid.json",
            c.get(url(&format!("/studies/{unknown}/grid.json"))).header("X-Api-Key", PREVIEW_KEY),
            404,
            "not-found",
        ),
        (
            "get",
            "/dicom-web/studies/{study}/series/{series}/thumbnail",
            c.get(url(&dw("1..2", SERIES_UID))).header("X-Api-Key", PREVIEW_KEY),
            400,
            "bad-id",
        ),
        (
            "get",
            "/dicom-web/studies/{study}/series/{series}/thumbnail",
            c.get(url(&format!("{}?viewport=0,5", dw(STUDY_UID, SERIES_UID))))
                .header("X-Api-Key", PREVIEW_KEY),
            400,
            "bad-param",
        ),
        (
            "get",
            "/dicom-web/studies/{study}/series/{series}/thumbnail",
            c.get(url(&dw(STUDY_UID, "1.2.3"))).header("X-Api-Key", PREVIEW_KEY),
            404,
            "not-found",
        ),
        (
            "post",
            "/auth/sign",
            c.post(url("/auth/sign")).header("X-Api-Key", MINT_KEY).json(&json!({"instances": [ID]})),
            404,
            "minting-disabled",
        ),
        (
            "post",
            "/auth/session",
            c.post(url("/auth/session")).header("X-Api-Key", MINT_KEY),
            404,
            "minting-disabled",
        ),
        (
            "post",
            "/auth/session",
            c.post(url("/auth/session")).header("Authorization", "Bearer a.b.c"),
            401,
            "invalid-credentials",
        ),
        (
            "post",
            "/auth/session",
            c.post(url("/auth/session")).header("X-Api-Key", MINT_KEY).header("Origin", "http://evil.test"),
            403,
            "origin-not-allowed",
        ),
        (
            "delete",
            "/auth/session",
            c.delete(url("/auth/session")).header("Origin", "http://evil.test"),
            403,
            "origin-not-allowed",
        ),
        (
            "post",
            "/warm",
            c.post(url("/warm")).header("X-Api-Key", WARM_KEY).json(&json!({"presets": ["thumb"]})),
            400,
            "bad-param",
        ),
        (
            "post",
            "/warm",
            c.post(url("/warm"))
                .header("X-Api-Key", WARM_KEY)
                .json(&json!({"series": ["x"], "presets": ["thumb"]})),
            400,
            "bad-id",
        ),
        ("post", "/warm", c.post(url("/warm")).header("X-Api-Key", WARM_KEY).body("{}"), 400, "bad-param"),
        (
            "get",
            "/warm/{job}",
            c.get(url("/warm/0123456789abcdef0123456789abcdef")).header("X-Api-Key", WARM_KEY),
            404,
            "not-found",
        ),
        (
            "delete",
            "/warm/{job}",
            c.delete(url("/warm/nope")).header("X-Api-Key", WARM_KEY),
            404,
            "not-found",
        ),
        (
            "delete",
            "/cache/instances/{id}",
            c.delete(url("/cache/instances/nope")).header("X-Api-Key", ADMIN_KEY),
            400,
            "bad-id",
        ),
        // Routes without query parameters refuse them: a mistyped option is not ignored.
        (
            "delete",
            "/cache/instances/{id}",
            c.delete(url(&format!("/cache/instances/{ID}?dry_run=1"))).header("X-Api-Key", ADMIN_KEY),
            400,
            "bad-param",
        ),
        (
            "get",
            "/warm/{job}",
            c.get(url("/warm/0123456789abcdef0123456789abcdef?verbose=1")).header("X-Api-Key", WARM_KEY),
            400,
            "bad-param",
        ),
        (
            "delete",
            "/cache/series/{id}",
            c.delete(url(&format!("/cache/series/{unknown}"))).header("X-Api-Key", ADMIN_KEY),
            404,
            "not-found",
        ),
        (
            "delete",
            "/cache/studies/{id}",
            c.delete(url(&format!("/cache/studies/{unknown}"))).header("X-Api-Key", WARM_KEY),
            403,
            "forbidden",
        ),
    ];
    let ops = operations(&spec);
    let op = |method: &str, template: &str| {
        ops.iter()
            .find(|o| o.method == method && o.template == template)
            .unwrap_or_else(|| panic!("{method} {template} not documented"))
    };
    let mut seen = BTreeSet::new();
    for (method, template, req, status, code) in cases {
        let r = req.send().await.unwrap();
        let got = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.unwrap();
        assert_eq!(got, status, "{method} {template} {code}: {}", String::from_utf8_lossy(&body));
        check_response(&spec, op(method, template), status, &headers, &body);
        if !code.is_empty() {
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["code"], code);
            assert!(codes.contains(code), "{code} not in ErrorCode");
            seen.insert(code);
        }
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
        assert_eq!(r.status(), status, "{code}");
        let headers = r.headers().clone();
        check_response(
            &spec,
            op("get", "/instances/{id}/preview"),
            status,
            &headers,
            &r.bytes().await.unwrap(),
        );
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

#[actix_web::test]
async fn request_bodies_are_objects_as_documented() {
    // serde would build a struct from a JSON array, fields by position; the schemas say object.
    let spec = spec();
    let ops = operations(&spec);
    let (fake, _dir, edge) = setup(&[JWT_ENV]).await;
    let c = client();
    for (template, key, body) in [
        ("/auth/sign", MINT_KEY, json!([[ID]])),
        ("/auth/sign", MINT_KEY, json!({"instances": [ID], "sizes": [[64, 64]]})),
        ("/auth/session", MINT_KEY, json!([null, null])),
        ("/auth/session", MINT_KEY, json!("x")),
        ("/warm", WARM_KEY, json!([[], [SERIES], ["thumb"]])),
    ] {
        let r = c
            .post(format!("{}{template}", edge.url))
            .header("X-Api-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{template} {body}");
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap();
        let op = ops.iter().find(|o| o.method == "post" && o.template == template).unwrap();
        check_response(&spec, op, 400, &headers, &bytes);
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap()["code"], "bad-param");
    }
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn expired_tokens_and_failure_limits_are_documented() {
    let spec = spec();
    let ops = operations(&spec);
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url)
        .jwt_secret(JWT_SECRET)
        .envs(&[
            ("ORTHANC_EDGE__AUTH__JWT__LEEWAY_S", "0"),
            ("ORTHANC_EDGE__AUTH__RATE_LIMIT__FAILURES_PER_MINUTE", "1"),
            ("ORTHANC_EDGE__AUTH__RATE_LIMIT__BURST", "1"),
        ])
        .start()
        .await;
    let c = client();
    let now = jsonwebtoken::get_current_timestamp();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "x", "iat": now - 100, "exp": now - 50}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let op = |method: &str, template: &str| {
        ops.iter().find(|o| o.method == method && o.template == template).unwrap()
    };
    // Every operation that takes credentials documents an expired token (401) and the failure
    // limit (429): send each the expired token, then trip the limit and send each a right key.
    let mut tripped = false;
    for round in ["expired", "limited"] {
        for o in ops.iter().filter(|o| o.scope().is_some()) {
            let path = concrete(&o.template, "0123456789abcdef0123456789abcdef");
            let mut r = request(&c, &spec, &edge.url, o, &path);
            r = match round {
                "expired" => r.bearer_auth(&expired),
                _ => r.header("X-Api-Key", key_for(o.scope().unwrap())),
            };
            let r = r.send().await.unwrap();
            let (status, code) =
                if round == "expired" { (401, "token-expired") } else { (429, "too-many-failures") };
            assert_eq!(r.status().as_u16(), status, "{} ({round})", o.label());
            let headers = r.headers().clone();
            let body = r.bytes().await.unwrap();
            check_response(&spec, o, status, &headers, &body);
            if o.method != "head" {
                assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["code"], code);
            }
        }
        if !tripped {
            for _ in 0..5 {
                let r =
                    c.get(format!("{}/warm/x", edge.url)).header("X-Api-Key", "wrong").send().await.unwrap();
                if r.status() == 429 {
                    tripped = true;
                    break;
                }
            }
            assert!(tripped, "the failure limit never tripped");
        }
    }
    // The unauthenticated routes do not look at credentials, so the limit does not reach them.
    let r = c.delete(format!("{}/auth/session", edge.url)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let headers = r.headers().clone();
    check_response(&spec, op("delete", "/auth/session"), 204, &headers, &r.bytes().await.unwrap());
    edge.stop().await;
    fake.stop().await;
}

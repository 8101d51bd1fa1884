//! Two patients in a real Orthanc: a study-A credential of every kind, on every image and metadata route, never gets patient B's pixels.
//!
//! Patient 1 (study A) and patient 2 (study B) are uploaded by scripts/ci/it-orthanc.sh
//! (scripts/dev/gen_dicom.py `--patient 2`); their Orthanc ids and DICOM UIDs are found here through
//! Orthanc's REST API. Each test starts one in-process edge for one auth mode and tries, in this
//! order, the mixed-lineage DICOMweb URLs (study A's UID with series or instance UIDs of B), then
//! every native route and every canonical DICOMweb route for B's resources. Expected:
//! - no 200 with B's bytes (compared with what an unrestricted key gets for the canonical B URL),
//!   and only 401/403/404 for B;
//! - restricted credentials (token claims, signed links) get the same status and code for a real
//!   B id/UID as for a random one, mixed-lineage URLs included (no existence oracle);
//! - for a delegated credential (no restriction of its own) a mixed-lineage URL is 404
//!   `not-found`, decided before the validator is asked;
//! - the same routes for A's resources answer 200 (the credential is not simply refused).
//!
//! API keys are not tried: `auth.api_keys` has no resource restriction (an API key with
//! `preview` sees every study by design).
//!
//! Needs ORTHANC_EDGE_IT_URL / _USER / _PASSWORD / _MANIFEST; skipped without them unless
//! ORTHANC_EDGE_IT_REQUIRED=1.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::{client, hs, RealOrthanc, TestEdge, JWT_SECRET, MINT_KEY, PREVIEW_KEY};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// What Chrome sends for an `<img>`.
const ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
/// The app's own session cookie, which only the validator understands.
const APP_COOKIE: &str = "app_session=alice-may-see-study-a";
/// gen_dicom.py's StudyInstanceUID of patient 1.
const A_STUDY_UID: &str = "1.2.826.0.1.3680043.8.498.77001.1";

/// One study as Orthanc knows it: its ids and UIDs, and one series (the one with most
/// instances) with one of its instances.
#[derive(Debug, Clone)]
struct Study {
    id: String,
    uid: String,
    series: String,
    series_uid: String,
    instance: String,
    instance_uid: String,
    /// Every series and instance id of the study (what a real app's database knows).
    all_ids: HashSet<String>,
}

async fn post_json(r: &RealOrthanc, path: &str, body: &Value) -> Value {
    client()
        .post(format!("{}{path}", r.url))
        .basic_auth(&r.user, Some(&r.password))
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The study found by `query` (a `/tools/find` query at study level), read from Orthanc.
async fn find_study(r: &RealOrthanc, query: Value) -> Study {
    let found = post_json(r, "/tools/find", &json!({"Level": "Study", "Query": query})).await;
    let ids = found.as_array().unwrap();
    assert_eq!(
        ids.len(),
        1,
        "exactly one study for {query} in Orthanc (scripts/ci/it-orthanc.sh uploads patient 2): {found}"
    );
    let id = ids[0].as_str().unwrap().to_owned();
    let study = r.json(&format!("/studies/{id}")).await;
    let uid = study["MainDicomTags"]["StudyInstanceUID"].as_str().unwrap().to_owned();
    let all_series = r.json(&format!("/studies/{id}/series")).await;
    let all_series = all_series.as_array().unwrap();
    let mut all_ids = HashSet::new();
    for s in all_series {
        all_ids.insert(s["ID"].as_str().unwrap().to_owned());
        for i in s["Instances"].as_array().unwrap() {
            all_ids.insert(i.as_str().unwrap().to_owned());
        }
    }
    let series = all_series.iter().max_by_key(|s| s["Instances"].as_array().unwrap().len()).unwrap();
    let mut instances: Vec<&str> =
        series["Instances"].as_array().unwrap().iter().map(|i| i.as_str().unwrap()).collect();
    instances.sort();
    let instance = instances[0].to_owned();
    let tags = r.json(&format!("/instances/{instance}")).await;
    Study {
        id,
        uid,
        series: series["ID"].as_str().unwrap().to_owned(),
        series_uid: series["MainDicomTags"]["SeriesInstanceUID"].as_str().unwrap().to_owned(),
        instance_uid: tags["MainDicomTags"]["SOPInstanceUID"].as_str().unwrap().to_owned(),
        instance,
        all_ids,
    }
}

/// Study A (patient 1) and study B (patient 2).
async fn two_patients(r: &RealOrthanc) -> (Study, Study) {
    let a = find_study(r, json!({"PatientID": "EDGE-TEST-1", "StudyInstanceUID": A_STUDY_UID})).await;
    let b = find_study(r, json!({"PatientID": "EDGE-TEST-2"})).await;
    assert_ne!(a.id, b.id);
    (a, b)
}

/// A study that does not exist: random ids and UIDs of the right shapes.
fn nowhere() -> Study {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = || {
        let seed = format!(
            "{:?} {} {}",
            std::time::SystemTime::now(),
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        blake3::hash(seed.as_bytes()).to_hex().to_string()
    };
    let id = || {
        let h = n();
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..16], &h[16..24], &h[24..32], &h[32..40])
    };
    let uid = || {
        let digits: String = n().bytes().filter(u8::is_ascii_digit).take(12).map(char::from).collect();
        format!("1.2.826.0.1.3680043.8.498.99{digits}")
    };
    Study {
        id: id(),
        uid: uid(),
        series: id(),
        series_uid: uid(),
        instance: id(),
        instance_uid: uid(),
        all_ids: HashSet::new(),
    }
}

/// One request of the matrix: a path, and the canonical path of the same image (the bytes a
/// leak would carry).
#[derive(Debug, Clone)]
struct Case {
    name: String,
    path: String,
    canonical: String,
    mixed: bool,
}

/// Every image and metadata route of src/http/routes.rs for target `t`, with `a`'s study (and
/// series) in the mixed-lineage DICOMweb URLs. Mixed-lineage cases come first: a decision made
/// for them must not carry over to the native routes that follow.
fn cases(a: &Study, t: &Study) -> Vec<Case> {
    let series = |st: &Study| format!("/dicom-web/studies/{}/series/{}", st.uid, t.series_uid);
    let instance = |st: &Study, se: &Study| {
        format!("/dicom-web/studies/{}/series/{}/instances/{}", st.uid, se.series_uid, t.instance_uid)
    };
    let mut all = Vec::new();
    for end in ["thumbnail", "rendered"] {
        let mixed = [
            ("dw series, A study + T series", series(a), series(t)),
            ("dw instance, A study + A series + T instance", instance(a, a), instance(t, t)),
            ("dw instance, A study + T series + T instance", instance(a, t), instance(t, t)),
            (
                "dw frame, A study + T series + T instance",
                format!("{}/frames/1", instance(a, t)),
                format!("{}/frames/1", instance(t, t)),
            ),
        ];
        for (name, path, canonical) in mixed {
            let (path, canonical) = (format!("{path}/{end}"), format!("{canonical}/{end}"));
            all.push(Case { name: format!("{name} /{end}"), path, canonical, mixed: true });
        }
    }
    let (i, se, st) = (&t.instance, &t.series, &t.id);
    let plain = [
        ("instance preview", format!("/instances/{i}/preview")),
        ("instance preview ?w=64", format!("/instances/{i}/preview?w=64")),
        ("instance preview ?preset=thumb", format!("/instances/{i}/preview?preset=thumb")),
        ("frame preview", format!("/instances/{i}/frames/0/preview")),
        ("instance rendered ?w=96", format!("/instances/{i}/rendered?w=96")),
        ("frame rendered", format!("/instances/{i}/frames/0/rendered")),
        ("series preview", format!("/series/{se}/preview")),
        ("series preview ?preset=thumb", format!("/series/{se}/preview?preset=thumb")),
        ("study grid JSON", format!("/studies/{st}/grid.json")),
        ("study grid page", format!("/studies/{st}/grid")),
        ("dw series thumbnail", format!("{}/thumbnail", series(t))),
        ("dw series rendered", format!("{}/rendered", series(t))),
        ("dw instance thumbnail", format!("{}/thumbnail", instance(t, t))),
        ("dw instance rendered", format!("{}/rendered", instance(t, t))),
        ("dw instance rendered ?window", format!("{}/rendered?window=40,400,sigmoid", instance(t, t))),
        ("dw frame thumbnail", format!("{}/frames/1/thumbnail", instance(t, t))),
        ("dw frame rendered", format!("{}/frames/1/rendered", instance(t, t))),
        ("dw study thumbnail", format!("/dicom-web/studies/{}/thumbnail", t.uid)),
        ("dw study rendered", format!("/dicom-web/studies/{}/rendered", t.uid)),
    ];
    for (name, path) in plain {
        all.push(Case { name: name.to_owned(), canonical: path.clone(), path, mixed: false });
    }
    all
}

/// How a request proves who it is.
#[derive(Debug, Clone)]
enum Cred {
    ApiKey(&'static str),
    Bearer(String),
    /// A whole `Cookie` header value.
    Cookie(String),
    /// The `token` query parameter (signed links).
    Query(String),
}

#[derive(Debug)]
struct Got {
    status: u16,
    code: String,
    body: Vec<u8>,
}

async fn get(base: &str, path: &str, cred: &Cred) -> Got {
    let url = match cred {
        Cred::Query(t) => format!("{base}{path}{}token={t}", if path.contains('?') { '&' } else { '?' }),
        _ => format!("{base}{path}"),
    };
    let mut req = client().get(url).header("Accept", ACCEPT);
    req = match cred {
        Cred::ApiKey(k) => req.header("X-Api-Key", *k),
        Cred::Bearer(t) => req.bearer_auth(t),
        Cred::Cookie(c) => req.header("Cookie", c.as_str()),
        Cred::Query(_) => req,
    };
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap().to_vec();
    let code = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Got { status, code, body }
}

/// Is this 200 body B's data: the bytes an unrestricted key gets for the canonical URL, or a
/// grid naming B's study, series or instances?
fn is_b(body: &[u8], reference: &Got, b: &Study) -> bool {
    if reference.status == 200 && body == reference.body.as_slice() {
        return true;
    }
    let text = String::from_utf8_lossy(body);
    text.contains(&b.id) || b.all_ids.iter().any(|id| text.contains(id.as_str()))
}

/// Runs the matrix for one credential and returns every broken expectation, one line each.
/// `a_paths` are the paths the credential must be able to read (A's resources). `restricted`:
/// the principal carries a resource restriction (token claims, a link), so "not yours" and
/// "does not exist" must look alike; otherwise (delegated) a mixed-lineage URL must be 404.
async fn matrix(
    edge: &TestEdge,
    reference: &TestEdge,
    cred: &Cred,
    a: &Study,
    b: &Study,
    a_paths: &[String],
    restricted: bool,
) -> Vec<String> {
    let mut broken = Vec::new();
    let random = nowhere();
    let (real, fake) = (cases(a, b), cases(a, &random));
    for (case, twin) in real.iter().zip(&fake) {
        let got = get(&edge.url, &case.path, cred).await;
        let line = format!("{:<55} {} {:<22}", case.name, got.status, got.code);
        if got.status == 200 {
            let r = get(&reference.url, &case.canonical, &Cred::ApiKey(PREVIEW_KEY)).await;
            assert_eq!(r.status, 200, "the unrestricted reference for {}: {}", case.canonical, r.code);
            if is_b(&got.body, &r, b) {
                broken.push(format!("{line} LEAK: patient B's bytes for {}", case.path));
            } else {
                broken.push(format!("{line} 200 (not B's bytes) for {}", case.path));
            }
        } else if !matches!(got.status, 401 | 403 | 404) {
            broken.push(format!("{line} unexpected status for {}", case.path));
        } else if !restricted && case.mixed && (got.status, got.code.as_str()) != (404, "not-found") {
            broken.push(format!("{line} mixed lineage must be 404 not-found: {}", case.path));
        }
        let other = get(&edge.url, &twin.path, cred).await;
        if restricted && (other.status, &other.code) != (got.status, &got.code) {
            broken.push(format!(
                "{line} existence oracle: a random id/UID gets {} {} ({})",
                other.status, other.code, twin.path
            ));
        } else if !restricted {
            eprintln!("  (oracle, informational) {line} vs random: {} {}", other.status, other.code);
        }
    }
    for path in a_paths {
        let got = get(&edge.url, path, cred).await;
        if got.status != 200 {
            broken.push(format!("A's own resource refused: {path} → {} {}", got.status, got.code));
        }
    }
    broken
}

/// The canonical A paths of every route (what a study-A credential must read).
fn a_paths(a: &Study) -> Vec<String> {
    cases(a, a).into_iter().filter(|c| !c.mixed).map(|c| c.path).collect()
}

fn report(mode: &str, broken: &[String]) {
    if !broken.is_empty() {
        panic!("{mode}: {} broken expectations:\n{}", broken.len(), broken.join("\n"));
    }
}

struct Setup {
    r: RealOrthanc,
    a: Study,
    b: Study,
    reference: TestEdge,
    _dirs: Vec<tempfile::TempDir>,
}

/// The two studies and an unrestricted reference edge; `None` when no real Orthanc is set up.
async fn setup() -> Option<Setup> {
    let r = RealOrthanc::from_env()?;
    let (a, b) = two_patients(&r).await;
    let dir = tempfile::tempdir().unwrap();
    let reference = TestEdge::start(r.config(&r.url, dir.path(), &[])).await;
    Some(Setup { r, a, b, reference, _dirs: vec![dir] })
}

impl Setup {
    async fn edge(&mut self, env: &[(&str, &str)]) -> TestEdge {
        let dir = tempfile::tempdir().unwrap();
        let edge = TestEdge::start(self.r.config(&self.r.url, dir.path(), env)).await;
        self._dirs.push(dir);
        edge
    }
}

const JWT_ENV: (&str, &str) = ("ORTHANC_EDGE__AUTH__JWT__SECRET", JWT_SECRET);

#[actix_web::test]
async fn session_token_minted_by_the_edge_for_study_a_gets_nothing_of_b() {
    let Some(mut s) = setup().await else { return };
    let edge = s.edge(&[JWT_ENV]).await;
    let resp = client()
        .post(format!("{}/auth/session", edge.url))
        .header("X-Api-Key", MINT_KEY)
        .json(&json!({"sub": "alice", "studies": [s.a.id]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let token = resp.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let cred = Cred::Cookie(format!("orthanc_edge_session={token}"));
    let broken = matrix(&edge, &s.reference, &cred, &s.a, &s.b, &a_paths(&s.a), true).await;
    report("session token minted by /auth/session, as the cookie", &broken);
}

#[actix_web::test]
async fn jwt_signed_by_the_app_for_study_a_gets_nothing_of_b() {
    let Some(mut s) = setup().await else { return };
    let edge = s.edge(&[JWT_ENV]).await;
    let claims =
        json!({"sub": "alice", "exp": jsonwebtoken::get_current_timestamp() + 600, "studies": [s.a.id]});
    let token = hs(claims);
    let broken = matrix(&edge, &s.reference, &Cred::Bearer(token), &s.a, &s.b, &a_paths(&s.a), true).await;
    report("JWT signed by the test, as Bearer", &broken);
}

#[actix_web::test]
async fn signed_link_for_an_a_instance_gets_nothing_of_b() {
    let Some(mut s) = setup().await else { return };
    let edge = s.edge(&[JWT_ENV]).await;
    let resp = client()
        .post(format!("{}/auth/sign", edge.url))
        .header("X-Api-Key", MINT_KEY)
        .json(&json!({"instances": [s.a.instance]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let url = resp.json::<Value>().await.unwrap()["links"][0]["url"].as_str().unwrap().to_owned();
    let (path, token) = url.split_once("?token=").unwrap();
    assert_eq!(path, format!("/instances/{}/preview", s.a.instance));
    // A link is for the image it was minted for: that exact URL is the one that must work.
    let cred = Cred::Query(token.to_owned());
    let broken = matrix(&edge, &s.reference, &cred, &s.a, &s.b, &[path.to_owned()], true).await;
    report("signed link for an A instance, as ?token=", &broken);
}

/// A validator as a real app would write it, deciding every call afresh: the session cookie must
/// be the app's, and the resource must be in study A — by the `X-Edge-Study-UID` / `X-Edge-Study`
/// headers when the edge sends them, otherwise by the path of `X-Original-URI` (a segment that is
/// study A's UID or id, or the id of one of A's series or instances, which the app's database
/// knows).
struct Validator {
    url: String,
    calls: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
    handle: actix_web::dev::ServerHandle,
}

fn validator_decides(req: &HttpRequest, a: &Study) -> u16 {
    let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let cookie = h("cookie").unwrap_or_default();
    if !cookie.split(';').any(|c| c.trim() == APP_COOKIE) {
        return 401;
    }
    if let Some(uid) = h("x-edge-study-uid") {
        return if uid == a.uid { 200 } else { 403 };
    }
    if let Some(id) = h("x-edge-study") {
        return if id == a.id { 200 } else { 403 };
    }
    let uri = h("x-original-uri").unwrap_or_default();
    let path = uri.split('?').next().unwrap_or("");
    let mine = path.split('/').any(|seg| seg == a.uid || seg == a.id || a.all_ids.contains(seg));
    if mine {
        200
    } else {
        403
    }
}

impl Validator {
    async fn start(a: Study) -> Self {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/check", listener.local_addr().unwrap());
        let (c, sn, a) = (calls.clone(), seen.clone(), Arc::new(a));
        let server = HttpServer::new(move || {
            let (c, sn, a) = (c.clone(), sn.clone(), a.clone());
            App::new().default_service(web::to(move |req: HttpRequest| {
                let (c, sn, a) = (c.clone(), sn.clone(), a.clone());
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    let status = validator_decides(&req, &a);
                    let uri = req.headers().get("x-original-uri").and_then(|v| v.to_str().ok()).unwrap_or("");
                    let study =
                        req.headers().get("x-edge-study").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    sn.lock().unwrap().push(format!("{status} {uri} (X-Edge-Study {study})"));
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self { url, calls, seen, handle }
    }
}

#[actix_web::test]
async fn delegated_session_allowed_study_a_gets_nothing_of_b() {
    let Some(mut s) = setup().await else { return };
    let validator = Validator::start(s.a.clone()).await;
    let edge = s.edge(&[("ORTHANC_EDGE__AUTH__DELEGATE__URL", validator.url.as_str())]).await;
    let cred = Cred::Cookie(APP_COOKIE.to_owned());
    // Delegated principals carry no restriction of their own: "not yours" comes from the
    // validator, so the existence-oracle comparison is printed, not asserted.
    let broken = matrix(&edge, &s.reference, &cred, &s.a, &s.b, &a_paths(&s.a), false).await;
    eprintln!("validator calls: {}", validator.calls.load(Ordering::SeqCst));
    for call in validator.seen.lock().unwrap().iter() {
        eprintln!("  validator: {call}");
    }
    validator.handle.stop(false).await;
    report("delegated (validator allows study A)", &broken);
}

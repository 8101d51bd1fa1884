//! Test support: a fake Orthanc with request counters and fault modes, and the real edge on an ephemeral port.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::rc::Rc;

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::test::{self as atest, TestRequest};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use futures_util::future::LocalBoxFuture;
use orthanc_edge::auth::hash_key;
use orthanc_edge::config::Config;
use orthanc_edge::state::AppState;

pub const ORTHANC_USER: &str = "edge-svc";
pub const ORTHANC_PASSWORD: &str = "orthanc-pw-Z9q";
pub const PREVIEW_KEY: &str = "preview-key-123";
pub const ADMIN_KEY: &str = "admin-key-456";
pub const WARM_KEY: &str = "warm-key-789";
pub const ID: &str = "8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe";
pub const ID2: &str = "11111111-22222222-33333333-44444444-55555555";
pub const MINT_KEY: &str = "mint-key-789";
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef-0123";

/// The `n`th synthetic Orthanc id with a given one-hex-digit `kind` prefix (distinct per (kind, n)).
pub fn synth_id(kind: char, n: u32) -> String {
    format!("{kind}{:07x}-00000000-00000000-00000000-{n:08x}", n)
}

/// How the fake Orthanc answers image requests.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    Status(u16),
    /// 200 with `Content-Type: image/png` and a body that is not a PNG.
    Garbage,
    /// 200 with a PNG body but `Content-Type: text/html`.
    WrongType,
    /// A valid PNG much bigger than usual (padded with a large ancillary chunk).
    Huge(usize),
    /// Wait before answering.
    Slow(Duration),
}

#[derive(Default)]
struct FakeState {
    mode: Mutex<Option<Mode>>,
    /// PAM source size (width, height, channels); default 300x200 grayscale.
    source: Mutex<Option<(u32, u32, u8)>>,
    images: AtomicUsize,
    other: AtomicUsize,
    bad_auth: AtomicUsize,
    gzip_asked: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    paths: Mutex<Vec<String>>,
    /// child id → parent id (instance → series, series → study).
    parents: Mutex<HashMap<String, String>>,
    lookups: AtomicUsize,
    /// DICOM UID → (Orthanc resource type, id), for `POST /tools/lookup`.
    uids: Mutex<HashMap<String, (String, String)>>,
    /// `GET /system` and `POST /tools/lookup` requests received.
    pings: AtomicUsize,
    uid_lookups: AtomicUsize,
    /// Delay of parent and UID lookups, and how many of them ran at once at most.
    metadata_delay: Mutex<Option<Duration>>,
    metadata_in_flight: AtomicUsize,
    max_metadata_in_flight: AtomicUsize,
}

impl FakeState {
    /// Count one metadata request as running while it waits the configured delay.
    async fn metadata_delay(&self) {
        let delay = *self.metadata_delay.lock().unwrap();
        let now = self.metadata_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_metadata_in_flight.fetch_max(now, Ordering::SeqCst);
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        self.metadata_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct FakeOrthanc {
    pub url: String,
    state: Arc<FakeState>,
    handle: ServerHandle,
}

impl FakeOrthanc {
    pub async fn start() -> Self {
        let state = Arc::new(FakeState::default());
        let data = web::Data::from(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/instances/{id}/frames/{frame}/preview", web::get().to(fake_preview))
                .route("/instances/{id}/frames/{frame}/rendered", web::get().to(fake_preview))
                .route("/system", web::get().to(fake_system))
                .route("/instances/{id}", web::get().to(fake_instance))
                .route("/series/{id}", web::get().to(fake_series))
                .route("/series/{id}/instances", web::get().to(fake_series_instances))
                .route("/studies/{id}", web::get().to(fake_study))
                .route("/studies/{id}/series", web::get().to(fake_study_series))
                .route("/tools/lookup", web::post().to(fake_lookup))
        })
        .workers(2)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self { url, state, handle }
    }

    /// Size and channels of the PAM the fake renders for sources.
    pub fn set_source(&self, width: u32, height: u32, channels: u8) {
        *self.state.source.lock().unwrap() = Some((width, height, channels));
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = Some(mode);
    }

    /// Image requests received (whatever the answer).
    pub fn image_requests(&self) -> usize {
        self.state.images.load(Ordering::SeqCst)
    }

    /// Declare `instance` to be in `series`, itself in `study`.
    pub fn add_instance(&self, instance: &str, series: &str, study: &str) {
        let mut p = self.state.parents.lock().unwrap();
        p.insert(instance.to_owned(), series.to_owned());
        p.insert(series.to_owned(), study.to_owned());
    }

    /// Make `uid` resolve (`POST /tools/lookup`) to the resource `id` of `kind` (Study, Series, Instance).
    pub fn add_uid(&self, uid: &str, kind: &str, id: &str) {
        self.state.uids.lock().unwrap().insert(uid.to_owned(), (kind.to_owned(), id.to_owned()));
    }

    /// `GET /instances/{id}` and `/series/{id}` requests received.
    pub fn parent_lookups(&self) -> usize {
        self.state.lookups.load(Ordering::SeqCst)
    }

    /// `GET /system` requests received (readiness pings, breaker probes).
    pub fn pings(&self) -> usize {
        self.state.pings.load(Ordering::SeqCst)
    }

    /// `POST /tools/lookup` requests received.
    pub fn uid_lookups(&self) -> usize {
        self.state.uid_lookups.load(Ordering::SeqCst)
    }

    /// Make parent and UID lookups take `d`.
    pub fn set_metadata_delay(&self, d: Duration) {
        *self.state.metadata_delay.lock().unwrap() = Some(d);
    }

    /// Most parent and UID lookups the fake was answering at the same time.
    pub fn max_metadata_in_flight(&self) -> usize {
        self.state.max_metadata_in_flight.load(Ordering::SeqCst)
    }

    pub fn bad_auth_requests(&self) -> usize {
        self.state.bad_auth.load(Ordering::SeqCst)
    }

    /// Most image requests the fake was answering at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn gzip_requests(&self) -> usize {
        self.state.gzip_asked.load(Ordering::SeqCst)
    }

    pub fn paths(&self) -> Vec<String> {
        self.state.paths.lock().unwrap().clone()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

fn authorized(req: &HttpRequest) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ORTHANC_USER}:{ORTHANC_PASSWORD}"))
    );
    req.headers().get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

async fn fake_system(req: HttpRequest, state: web::Data<FakeState>) -> HttpResponse {
    state.other.fetch_add(1, Ordering::SeqCst);
    state.pings.fetch_add(1, Ordering::SeqCst);
    if !authorized(&req) {
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Basic realm=\"Orthanc\""))
            .finish();
    }
    // A failing server (5xx) fails its system route too; 4xx modes are about images only.
    if let Some(Mode::Status(s)) = state.mode.lock().unwrap().clone() {
        if s >= 500 {
            return HttpResponse::build(actix_web::http::StatusCode::from_u16(s).unwrap()).finish();
        }
    }
    HttpResponse::Ok().json(serde_json::json!({"Version": "1.10.1"}))
}

async fn fake_parent(req: HttpRequest, id: String, field: &str, state: web::Data<FakeState>) -> HttpResponse {
    state.lookups.fetch_add(1, Ordering::SeqCst);
    state.metadata_delay().await;
    if !authorized(&req) {
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Basic realm=\"Orthanc\""))
            .finish();
    }
    let Some(parent) = state.parents.lock().unwrap().get(&id).cloned() else {
        return HttpResponse::NotFound().finish();
    };
    // The UID registered for this id (add_uid), as Orthanc's MainDicomTags carry it.
    let (tag, kind) = match field {
        "ParentSeries" => ("SOPInstanceUID", "Instance"),
        _ => ("SeriesInstanceUID", "Series"),
    };
    let uid =
        state.uids.lock().unwrap().iter().find(|(_, (k, i))| k == kind && *i == id).map(|(u, _)| u.clone());
    let tags = match uid {
        Some(u) => serde_json::json!({ tag: u }),
        None => serde_json::json!({}),
    };
    HttpResponse::Ok().json(serde_json::json!({"ID": id, field: parent, "MainDicomTags": tags}))
}

async fn fake_instance(req: HttpRequest, id: web::Path<String>, state: web::Data<FakeState>) -> HttpResponse {
    fake_parent(req, id.into_inner(), "ParentSeries", state).await
}

async fn fake_series(req: HttpRequest, id: web::Path<String>, state: web::Data<FakeState>) -> HttpResponse {
    fake_parent(req, id.into_inner(), "ParentStudy", state).await
}

/// The children of `id` in the declared tree (a study's series, a series' instances), sorted.
fn children(state: &FakeState, id: &str) -> Vec<String> {
    let mut c: Vec<String> =
        state.parents.lock().unwrap().iter().filter(|(_, p)| *p == id).map(|(k, _)| k.clone()).collect();
    c.sort();
    c
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized().insert_header(("WWW-Authenticate", "Basic realm=\"Orthanc\"")).finish()
}

async fn fake_study(req: HttpRequest, id: web::Path<String>, state: web::Data<FakeState>) -> HttpResponse {
    state.other.fetch_add(1, Ordering::SeqCst);
    if !authorized(&req) {
        return unauthorized();
    }
    let series = children(&state, &id);
    if series.is_empty() {
        return HttpResponse::NotFound().finish();
    }
    let uid = state
        .uids
        .lock()
        .unwrap()
        .iter()
        .find(|(_, (k, i))| k == "Study" && *i == *id)
        .map(|(u, _)| u.clone());
    let mut tags = serde_json::json!({"StudyDescription": "Fake study", "StudyDate": "20260101"});
    if let Some(u) = uid {
        tags["StudyInstanceUID"] = serde_json::Value::String(u);
    }
    HttpResponse::Ok()
        .json(serde_json::json!({"ID": *id, "IsStable": true, "Series": series, "MainDicomTags": tags}))
}

async fn fake_study_series(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<FakeState>,
) -> HttpResponse {
    state.other.fetch_add(1, Ordering::SeqCst);
    if !authorized(&req) {
        return unauthorized();
    }
    let series = children(&state, &id);
    if series.is_empty() {
        return HttpResponse::NotFound().finish();
    }
    let list: Vec<serde_json::Value> = series
        .iter()
        .enumerate()
        .map(|(n, s)| {
            serde_json::json!({
                "ID": s, "Instances": children(&state, s), "ParentStudy": *id,
                "MainDicomTags": {"Modality": "CT", "SeriesNumber": (n + 1).to_string(), "SeriesDescription": "Fake"},
            })
        })
        .collect();
    HttpResponse::Ok().json(list)
}

async fn fake_series_instances(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<FakeState>,
) -> HttpResponse {
    state.other.fetch_add(1, Ordering::SeqCst);
    if !authorized(&req) {
        return unauthorized();
    }
    if !state.parents.lock().unwrap().contains_key(id.as_str()) {
        return HttpResponse::NotFound().finish();
    }
    let list: Vec<serde_json::Value> = children(&state, &id)
        .iter()
        .enumerate()
        .map(|(n, i)| serde_json::json!({"ID": i, "IndexInSeries": n + 1, "MainDicomTags": {"InstanceNumber": (n + 1).to_string()}}))
        .collect();
    HttpResponse::Ok().json(list)
}

async fn fake_lookup(req: HttpRequest, body: String, state: web::Data<FakeState>) -> HttpResponse {
    state.other.fetch_add(1, Ordering::SeqCst);
    state.uid_lookups.fetch_add(1, Ordering::SeqCst);
    state.metadata_delay().await;
    if !authorized(&req) {
        return unauthorized();
    }
    let hits: Vec<serde_json::Value> = match state.uids.lock().unwrap().get(body.trim()) {
        Some((kind, id)) => vec![serde_json::json!({"ID": id, "Type": kind, "Path": format!("/x/{id}")})],
        None => vec![],
    };
    HttpResponse::Ok().json(hits)
}

/// A deterministic image per (id, frame): different instances give different bytes.
pub fn fake_png(id: &str, frame: u32) -> Vec<u8> {
    let seed = blake3::hash(format!("{id}/{frame}").as_bytes());
    let s = seed.as_bytes();
    let img = image::GrayImage::from_fn(64, 48, |x, y| {
        image::Luma([(x as u8).wrapping_mul(s[0]) ^ (y as u8).wrapping_add(s[1])])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// A deterministic PAM (`P7`) rendering, as Orthanc answers `Accept: image/x-portable-arbitrarymap`.
pub fn fake_pam(id: &str, frame: u32, w: u32, h: u32, channels: u8) -> Vec<u8> {
    let s = *blake3::hash(format!("{id}/{frame}").as_bytes()).as_bytes();
    let tuple = if channels == 1 { "GRAYSCALE" } else { "RGB" };
    let mut out =
        format!("P7\nWIDTH {w}\nHEIGHT {h}\nDEPTH {channels}\nMAXVAL 255\nTUPLTYPE {tuple}\nENDHDR\n")
            .into_bytes();
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels as u32 {
                out.push(((x * 255 / w.max(1)) as u8).wrapping_add((y * 3 + c * 60) as u8) ^ s[0]);
            }
        }
    }
    out
}

pub fn fake_jpeg(id: &str, frame: u32) -> Vec<u8> {
    let png = fake_png(id, frame);
    let img = image::load_from_memory(&png).unwrap();
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg).unwrap();
    out
}

async fn fake_preview(
    req: HttpRequest,
    path: web::Path<(String, u32)>,
    state: web::Data<FakeState>,
) -> HttpResponse {
    state.images.fetch_add(1, Ordering::SeqCst);
    state.paths.lock().unwrap().push(req.uri().to_string());
    if req.headers().get("accept-encoding").and_then(|v| v.to_str().ok()) != Some("identity") {
        state.gzip_asked.fetch_add(1, Ordering::SeqCst);
    }
    if !authorized(&req) {
        state.bad_auth.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Basic realm=\"Orthanc\""))
            .finish();
    }
    let (id, frame) = path.into_inner();
    let mode = state.mode.lock().unwrap().clone().unwrap_or(Mode::Normal);
    let accept = req.headers().get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
    let (ct, body) = match accept {
        "image/jpeg" => ("image/jpeg", fake_jpeg(&id, frame)),
        "image/x-portable-arbitrarymap" => {
            let (w, h, c) = state.source.lock().unwrap().unwrap_or((300, 200, 1));
            ("image/x-portable-arbitrarymap", fake_pam(&id, frame, w, h, c))
        }
        _ => ("image/png", fake_png(&id, frame)),
    };
    match mode {
        Mode::Normal => HttpResponse::Ok().content_type(ct).body(body),
        Mode::Status(s) => HttpResponse::build(actix_web::http::StatusCode::from_u16(s).unwrap()).finish(),
        Mode::Garbage => HttpResponse::Ok().content_type(ct).body("<html>definitely not an image</html>"),
        Mode::WrongType => HttpResponse::Ok().content_type("text/html").body(body),
        Mode::Huge(n) => {
            let mut big = body;
            // resize is a memset: an iterator extend of 70 MB takes seconds unoptimized under load.
            big.resize(big.len() + n, 0);
            HttpResponse::Ok().content_type(ct).body(big)
        }
        Mode::Slow(d) => {
            let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            state.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(d).await;
            state.in_flight.fetch_sub(1, Ordering::SeqCst);
            HttpResponse::Ok().content_type(ct).body(body)
        }
    }
}

/// A config for tests: the given Orthanc, a cache folder, three API keys; `env` overrides on top.
pub fn test_config(orthanc_url: &str, cache_dir: &Path, env: &[(&str, &str)]) -> Config {
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 2
flight_wait_ms = 5000
[orthanc]
url = "{orthanc_url}"
username = "{ORTHANC_USER}"
password = "{ORTHANC_PASSWORD}"
timeout_ms = 2000
max_body_bytes = 1048576
[cache]
dir = "{dir}"
memory_bytes = 33554432
disk_bytes = 67108864
negative_ttl_s = 5
[[auth.api_keys]]
name = "viewer"
hash = "{h1}"
scopes = ["preview"]
[[auth.api_keys]]
name = "ops"
hash = "{h2}"
scopes = ["admin"]
[[auth.api_keys]]
name = "warmer"
hash = "{h3}"
scopes = ["warm"]
[[auth.api_keys]]
name = "app"
hash = "{h4}"
scopes = ["mint"]
"#,
        dir = cache_dir.display(),
        h1 = hash_key(PREVIEW_KEY),
        h2 = hash_key(ADMIN_KEY),
        h3 = hash_key(WARM_KEY),
        h4 = hash_key(MINT_KEY),
    );
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(toml.as_bytes()).unwrap();
    let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::load_from(Some(f.path()), env).unwrap()
}

/// The real edge app, in process, on an ephemeral port.
pub struct TestEdge {
    pub url: String,
    /// The admin listener (metrics, probes).
    pub admin_url: String,
    pub state: AppState,
    handle: ServerHandle,
    admin: ServerHandle,
}

impl TestEdge {
    pub async fn start(config: Config) -> Self {
        // The previous run's sled may still be closing: retry the open briefly.
        let mut state = None;
        for _ in 0..50 {
            match AppState::build(config.clone()) {
                Ok(s) => {
                    state = Some(s);
                    break;
                }
                Err(e) if e.to_string().contains("in use") => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("edge failed to start: {e:#}"),
            }
        }
        let state = state.expect("cache folder stayed locked");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = orthanc_edge::start(state.clone(), listener).unwrap();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let admin_url = format!("http://{}", listener.local_addr().unwrap());
        let server = orthanc_edge::start_admin(state.clone(), listener).unwrap();
        let admin = server.handle();
        actix_web::rt::spawn(server);
        Self { url, admin_url, state, handle, admin }
    }

    /// Graceful stop; flushes and releases the disk tier.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.admin.stop(true).await;
        self.state.cache.settle_writes(Duration::from_secs(5)).await;
        let disk = self.state.cache.disk().clone();
        tokio::task::spawn_blocking(move || disk.flush().unwrap()).await.unwrap();
    }

    pub fn preview_url(&self, id: &str) -> String {
        format!("{}/instances/{id}/preview", self.url)
    }
}

/// What an in-process request got.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: web::Bytes,
}

impl Reply {
    /// The `code` of a JSON error body ("" for anything else).
    pub fn code(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// The edge's app (routes, request context, CORS) in process, without sockets, for property
/// tests that make thousands of requests. Call the function it returns on the runtime that made it.
pub async fn in_process(state: AppState) -> impl Fn(TestRequest) -> LocalBoxFuture<'static, Reply> {
    let app = Rc::new(
        atest::init_service(
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(web::Data::new(state.auth.clone()))
                .app_data(web::Data::new(state.cors.clone()))
                .wrap(from_fn(orthanc_edge::http::cors))
                .wrap(from_fn(orthanc_edge::http::request_context))
                .configure(orthanc_edge::http::configure),
        )
        .await,
    );
    move |req: TestRequest| -> LocalBoxFuture<'static, Reply> {
        let app = app.clone();
        Box::pin(async move {
            let resp = atest::call_service(&*app, req.to_request()).await;
            let status = resp.status().as_u16();
            let content_type =
                resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            Reply { status, content_type, body: atest::read_body(resp).await }
        })
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_gzip().build().unwrap()
}

/// A pass-through proxy in front of a real Orthanc that counts image renders (in process).
pub struct CountingProxy {
    pub url: String,
    renders: Arc<AtomicUsize>,
    handle: ServerHandle,
}

impl CountingProxy {
    pub async fn start(target: &str) -> Self {
        let (proxy, server) = Self::bind(target);
        actix_web::rt::spawn(server);
        proxy
    }

    /// For tests without a runtime of their own (blocking clients): the proxy runs on its own
    /// thread until the test process ends.
    pub fn start_detached(target: &str) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let target = target.to_owned();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let (proxy, server) = Self::bind(&target);
                tx.send(proxy).unwrap();
                server.await
            })
        });
        rx.recv().unwrap()
    }

    fn bind(target: &str) -> (Self, actix_web::dev::Server) {
        let renders = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (counter, target) = (renders.clone(), target.to_owned());
        let client = reqwest::Client::new();
        let server = HttpServer::new(move || {
            let (counter, target, client) = (counter.clone(), target.clone(), client.clone());
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let (counter, target, client) = (counter.clone(), target.clone(), client.clone());
                async move {
                    let path = req.uri().path();
                    if path.ends_with("/preview") || path.ends_with("/rendered") {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
                    let mut fwd =
                        client.request(method, format!("{target}{}", req.uri())).body(body.to_vec());
                    for name in ["authorization", "accept", "accept-encoding", "content-type"] {
                        if let Some(v) = req.headers().get(name) {
                            fwd = fwd.header(name, v.as_bytes());
                        }
                    }
                    let resp = fwd.send().await.unwrap();
                    let mut out = HttpResponse::build(
                        actix_web::http::StatusCode::from_u16(resp.status().as_u16()).unwrap(),
                    );
                    if let Some(ct) = resp.headers().get("content-type") {
                        out.insert_header(("content-type", ct.as_bytes()));
                    }
                    out.body(resp.bytes().await.unwrap())
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        (Self { url, renders, handle }, server)
    }

    pub fn renders(&self) -> usize {
        self.renders.load(Ordering::SeqCst)
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// The real Orthanc of scripts/ci/it-orthanc.sh, if the environment names one.
pub struct RealOrthanc {
    pub url: String,
    pub user: String,
    pub password: String,
    pub manifest: serde_json::Value,
}

impl RealOrthanc {
    /// `None` (test skipped) without ORTHANC_EDGE_IT_*; a failure if ORTHANC_EDGE_IT_REQUIRED=1.
    pub fn from_env() -> Option<Self> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        match (
            var("ORTHANC_EDGE_IT_URL"),
            var("ORTHANC_EDGE_IT_USER"),
            var("ORTHANC_EDGE_IT_PASSWORD"),
            var("ORTHANC_EDGE_IT_MANIFEST"),
        ) {
            (Some(url), Some(user), Some(password), Some(m)) => {
                let manifest = serde_json::from_str(&std::fs::read_to_string(m).unwrap()).unwrap();
                Some(Self { url, user, password, manifest })
            }
            _ => {
                assert!(var("ORTHANC_EDGE_IT_REQUIRED").as_deref() != Some("1"), "ORTHANC_EDGE_IT_* not set");
                eprintln!("skipped: no real Orthanc (run scripts/test.sh)");
                None
            }
        }
    }

    pub fn instance(&self, name: &str, field: &str) -> String {
        self.manifest["instances"][name][field].as_str().unwrap().to_owned()
    }

    /// Edge config for this Orthanc (or a proxy in front of it at `url`).
    pub fn config(&self, url: &str, cache_dir: &Path, env: &[(&str, &str)]) -> Config {
        let mut all = vec![
            ("ORTHANC_EDGE__ORTHANC__USERNAME", self.user.as_str()),
            ("ORTHANC_EDGE__ORTHANC__PASSWORD", self.password.as_str()),
            ("ORTHANC_EDGE__ORTHANC__TIMEOUT_MS", "10000"),
        ];
        all.extend_from_slice(env);
        test_config(url, cache_dir, &all)
    }

    /// Orthanc's own answer for `path` (the reference an edge answer must equal), from a
    /// blocking test.
    pub fn direct_blocking(&self, path: &str, accept: &str) -> (u16, Vec<u8>) {
        let resp = reqwest::blocking::Client::builder()
            .no_gzip()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
            .get(format!("{}{path}", self.url))
            .basic_auth(&self.user, Some(&self.password))
            .header("Accept", accept)
            .header("Accept-Encoding", "identity")
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.bytes().unwrap().to_vec())
    }

    /// GET a JSON resource from Orthanc itself.
    pub async fn json(&self, path: &str) -> serde_json::Value {
        client()
            .get(format!("{}{path}", self.url))
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// What a `Canned` server answers.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
    /// When set, `status` only for requests whose header (lowercase name) has this value, 403
    /// otherwise: a validator that decides by what it is told.
    pub only_if: Option<(String, String)>,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self { status, headers: vec![], body: String::new(), delay: Duration::ZERO, only_if: None }
    }

    pub fn only_if(mut self, header: &str, value: &str) -> Self {
        self.only_if = Some((header.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }
}

struct CannedState {
    answer: Mutex<Answer>,
    calls: AtomicUsize,
    seen: Mutex<Vec<HashMap<String, String>>>,
}

/// A tiny HTTP server answering every GET with a settable canned answer, counting calls and
/// keeping the headers it saw: a fake auth validator, a fake JWKS endpoint.
pub struct Canned {
    pub url: String,
    state: Arc<CannedState>,
    handle: ServerHandle,
}

impl Canned {
    pub async fn start(answer: Answer) -> Self {
        let state = Arc::new(CannedState {
            answer: Mutex::new(answer),
            calls: AtomicUsize::new(0),
            seen: Mutex::new(vec![]),
        });
        let data = web::Data::from(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/check", listener.local_addr().unwrap());
        let server =
            HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(canned)))
                .workers(2)
                .listen(listener)
                .unwrap()
                .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self { url, state, handle }
    }

    pub fn set(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Request headers (lowercase names) of every call so far.
    pub fn seen(&self) -> Vec<HashMap<String, String>> {
        self.state.seen.lock().unwrap().clone()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

async fn canned(req: HttpRequest, state: web::Data<CannedState>) -> HttpResponse {
    state.calls.fetch_add(1, Ordering::SeqCst);
    state.seen.lock().unwrap().push(
        req.headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
    );
    let a = state.answer.lock().unwrap().clone();
    if !a.delay.is_zero() {
        tokio::time::sleep(a.delay).await;
    }
    let status = match &a.only_if {
        Some((h, v)) if req.headers().get(h.as_str()).and_then(|x| x.to_str().ok()) != Some(v.as_str()) => {
            403
        }
        _ => a.status,
    };
    let mut resp = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    for (k, v) in &a.headers {
        resp.insert_header((k.as_str(), v.as_str()));
    }
    resp.body(a.body)
}

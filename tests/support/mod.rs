//! Test support: a fake Orthanc with request counters and fault modes, and the real edge on an ephemeral port.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use orthanc_edge::auth::hash_key;
use orthanc_edge::config::Config;
use orthanc_edge::state::AppState;

pub const ORTHANC_USER: &str = "edge-svc";
pub const ORTHANC_PASSWORD: &str = "orthanc-pw-Z9q";
pub const PREVIEW_KEY: &str = "preview-key-123";
pub const ADMIN_KEY: &str = "admin-key-456";
pub const ID: &str = "8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe";
pub const ID2: &str = "11111111-22222222-33333333-44444444-55555555";

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
    paths: Mutex<Vec<String>>,
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

    pub fn bad_auth_requests(&self) -> usize {
        self.state.bad_auth.load(Ordering::SeqCst)
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
    if !authorized(&req) {
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Basic realm=\"Orthanc\""))
            .finish();
    }
    HttpResponse::Ok().json(serde_json::json!({"Version": "1.10.1"}))
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
            big.extend(std::iter::repeat(0u8).take(n));
            HttpResponse::Ok().content_type(ct).body(big)
        }
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
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
workers = 2
flight_wait_ms = 5000
[orthanc]
url = "{orthanc_url}"
username = "{ORTHANC_USER}"
password = "{ORTHANC_PASSWORD}"
timeout_ms = 2000
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
"#,
        dir = cache_dir.display(),
        h1 = hash_key(PREVIEW_KEY),
        h2 = hash_key(ADMIN_KEY),
    );
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(toml.as_bytes()).unwrap();
    let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::load_from(Some(f.path()), env).unwrap()
}

/// The real edge app, in process, on an ephemeral port.
pub struct TestEdge {
    pub url: String,
    pub state: AppState,
    handle: ServerHandle,
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
        Self { url, state, handle }
    }

    /// Graceful stop; flushes and releases the disk tier.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.state.cache.settle_writes(Duration::from_secs(5)).await;
        let disk = self.state.cache.disk().clone();
        tokio::task::spawn_blocking(move || disk.flush().unwrap()).await.unwrap();
    }

    pub fn preview_url(&self, id: &str) -> String {
        format!("{}/instances/{id}/preview", self.url)
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_gzip().build().unwrap()
}

//! A fake Orthanc with request counters and fault modes: images, parents, studies, UID lookups.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;

use super::images::{fake_dicom, fake_jpeg, fake_pam, fake_png};
use super::{ORTHANC_PASSWORD, ORTHANC_USER};

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
    /// The stored DICOM file `GET /instances/{id}/file` answers for every instance; unset, a
    /// small 8-bit ramp of the source size, different per instance ([`fake_dicom`]).
    file: Mutex<Option<Vec<u8>>>,
    files: AtomicUsize,
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
                .route("/instances/{id}/file", web::get().to(fake_file))
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

    /// The DICOM file every instance's `/file` answers with.
    pub fn set_file(&self, file: Vec<u8>) {
        *self.state.file.lock().unwrap() = Some(file);
    }

    /// `GET /instances/{id}/file` requests received.
    pub fn file_requests(&self) -> usize {
        self.state.files.load(Ordering::SeqCst)
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

/// `GET /instances/{id}/file`. The mode applies as to images (a missing instance, a failing
/// server, a slow one), except that under `Status(415)` (Orthanc cannot render) only a file set
/// with `set_file` is served: without one the fake is a storage without files, and 415 stays 415.
async fn fake_file(req: HttpRequest, id: web::Path<String>, state: web::Data<FakeState>) -> HttpResponse {
    state.files.fetch_add(1, Ordering::SeqCst);
    if !authorized(&req) {
        return unauthorized();
    }
    let set = state.file.lock().unwrap().clone();
    let mode = state.mode.lock().unwrap().clone().unwrap_or(Mode::Normal);
    match mode {
        Mode::Status(415) if set.is_none() => return HttpResponse::NotFound().finish(),
        Mode::Status(415) => {}
        Mode::Status(s) => {
            return HttpResponse::build(actix_web::http::StatusCode::from_u16(s).unwrap()).finish()
        }
        Mode::Slow(d) => tokio::time::sleep(d).await,
        _ => {}
    }
    let (w, h, _) = state.source.lock().unwrap().unwrap_or((300, 200, 1));
    let body = set.unwrap_or_else(|| fake_dicom(&id, w, h));
    HttpResponse::Ok().content_type("application/dicom").body(body)
}

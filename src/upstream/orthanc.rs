//! Typed Orthanc client: service credentials, pooling, timeouts, render and metadata gates, answer classification.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;

use super::breaker::Breaker;
use super::gate::RenderGate;
use super::metadata::{MetadataGate, NotFoundMemo};
use super::model::{Changes, InstanceInfo, LookupHit, Node, RawNode, SeriesInfo, StudyInfo};
use super::UpstreamError;
use crate::config::{OrthancConfig, Secret};
use crate::ids::OrthancId;
use crate::model::{ImageFormat, Level, Rendering};

const PAM_MIME: &str = "image/x-portable-arbitrarymap";
const DICOM_MIME: &str = "application/dicom";

/// Who is waiting for a render: a person, or a warm-up job that must leave room for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Priority {
    Interactive,
    Background,
}

/// An image as Orthanc rendered it.
#[derive(Debug, Clone)]
pub struct UpstreamImage {
    pub format: ImageFormat,
    pub body: Bytes,
    pub elapsed: Duration,
}

/// What `upstream_requests` cannot tell apart, exported on `/metrics` (see RELIABILITY.md).
/// Requests refused as busy and failures are outcomes of `upstream_requests` already.
#[derive(Debug, Default)]
pub struct UpstreamStats {
    /// Gave up waiting for a render or metadata slot within `timeout_ms` (counted among the
    /// `upstream-timeout` outcomes, with requests Orthanc was too slow to answer).
    pub queue_timeouts: AtomicU64,
}

/// The only code that talks to Orthanc. Cheap to clone.
#[derive(Clone)]
pub struct OrthancClient {
    http: reqwest::Client,
    base: Arc<str>,
    renders: RenderGate,
    /// Slots for stored-file downloads (`render.mode` edge and fallback), apart from renders:
    /// Orthanc serves a file without decoding it, so files never wait behind its render limit.
    files: RenderGate,
    /// Requests waiting for a render slot, bounded by `max_waiting`.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    /// Bound on one image request, queueing for a slot included.
    timeout: Duration,
    max_body: u64,
    breaker: Arc<Breaker>,
    /// Slots for metadata requests, apart from renders.
    metadata: MetadataGate,
    /// Metadata requests Orthanc recently answered 404 for.
    not_found: NotFoundMemo,
    /// Set once Orthanc has answered a ping with our credentials; readiness waits for it.
    answered: Arc<AtomicBool>,
    pub stats: Arc<UpstreamStats>,
}

/// Holds one place in the render queue while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize, max: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| Waiting(count))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for OrthancClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrthancClient").field("base", &self.base).finish_non_exhaustive()
    }
}

impl OrthancClient {
    pub fn new(cfg: &OrthancConfig, password: &Secret) -> Result<Self, reqwest::Error> {
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            cfg.username,
            password.expose()
        ));
        let mut auth =
            HeaderValue::from_str(&format!("Basic {token}")).unwrap_or_else(|_| HeaderValue::from_static(""));
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        // Orthanc <= 1.12.1 gzips PNG/JPEG replies otherwise: wasted CPU on both sides.
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .connect_timeout(Duration::from_millis(cfg.timeout_ms.min(5000)))
            .pool_idle_timeout(ORTHANC_IDLE)
            .pool_max_idle_per_host(cfg.max_concurrency.max(8))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            base: cfg.url.trim_end_matches('/').into(),
            renders: RenderGate::new(cfg.max_concurrency),
            files: RenderGate::new(cfg.max_concurrency),
            waiting: Arc::default(),
            max_waiting: cfg.max_waiting,
            timeout: Duration::from_millis(cfg.timeout_ms),
            max_body: cfg.max_body_bytes,
            breaker: Breaker::new(cfg.breaker_failures, Duration::from_millis(cfg.breaker_probe_ms)),
            metadata: MetadataGate::new(cfg.max_metadata_concurrency, cfg.max_waiting),
            not_found: NotFoundMemo::new(Duration::ZERO),
            answered: Arc::default(),
            stats: Arc::default(),
        })
    }

    /// Remember metadata 404s for `ttl` (`cache.negative_ttl_s`; zero: never).
    pub fn with_negative_ttl(mut self, ttl: Duration) -> Self {
        self.not_found = NotFoundMemo::new(ttl);
        self
    }

    /// The circuit breaker (state and counters).
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Metadata requests holding a slot, and queued for one.
    pub fn metadata_load(&self) -> (usize, usize) {
        (self.metadata.in_flight(), self.metadata.waiting())
    }

    /// Orthanc's `/preview` of one frame, in `format` (JPEG `quality` 1..=100 when given). Only
    /// formats Orthanc encodes reach here: `spec::plan` sends WebP to the edge's encoder.
    pub async fn preview(
        &self,
        id: &OrthancId,
        frame: u32,
        format: ImageFormat,
        quality: Option<u8>,
    ) -> Result<UpstreamImage, UpstreamError> {
        debug_assert!(format.orthanc_encodes(), "Orthanc cannot encode {}", format.name());
        let mut url = format!("{}/instances/{}/frames/{}/preview", self.base, id, frame);
        if let (ImageFormat::Jpeg, Some(q)) = (format, quality) {
            url.push_str(&format!("?quality={q}"));
        }
        let (body, elapsed) =
            self.fetch_image(&url, format.mime(), |b| format.matches_magic(b), Priority::Interactive).await?;
        Ok(UpstreamImage { format, body, elapsed })
    }

    /// Lossless 8-bit pixels of one frame as PAM: the cheapest rendering Orthanc makes.
    pub async fn pixels(
        &self,
        id: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
    ) -> Result<(Bytes, Duration), UpstreamError> {
        let url = match rendering {
            Rendering::Preview => format!("{}/instances/{}/frames/{}/preview", self.base, id, frame),
            // DICOMweb in `render.mode = orthanc`: Orthanc's own window arithmetic (the handler
            // refuses what it cannot do: another function, a source region).
            Rendering::Rendered { window: None } | Rendering::Dicomweb { window: None, .. } => {
                format!("{}/instances/{}/frames/{}/rendered", self.base, id, frame)
            }
            Rendering::Dicomweb { window: Some(w), .. } => format!(
                "{}/instances/{}/frames/{}/rendered?window-center={}&window-width={}",
                self.base, id, frame, w.center, w.width
            ),
            Rendering::Rendered { window: Some(w) } => format!(
                "{}/instances/{}/frames/{}/rendered?window-center={}&window-width={}",
                self.base, id, frame, w.center, w.width
            ),
        };
        self.fetch_image(&url, PAM_MIME, |b| b.starts_with(b"P7\n"), priority).await
    }

    /// The stored DICOM file of one instance (`GET /instances/{id}/file`), as uploaded: what the
    /// edge decodes itself. Capped by `max_body_bytes`; takes a file slot, not a render slot.
    pub async fn file(&self, id: &OrthancId, priority: Priority) -> Result<(Bytes, Duration), UpstreamError> {
        let url = format!("{}/instances/{}/file", self.base, id);
        let part10 = |b: &[u8]| b.len() >= 132 && &b[128..132] == b"DICM";
        // A file that large is an instance the edge refuses, not Orthanc misbehaving.
        let too_big = |limit| UpstreamError::TooLarge { limit };
        self.fetch("file", &self.files, &url, Expect { mime: DICOM_MIME, magic: part10, too_big }, priority)
            .await
    }

    /// One image request; see `fetch`.
    async fn fetch_image(
        &self,
        url: &str,
        mime: &'static str,
        magic: impl Fn(&[u8]) -> bool,
        priority: Priority,
    ) -> Result<(Bytes, Duration), UpstreamError> {
        self.fetch("image", &self.renders, url, Expect { mime, magic, too_big: bad_response_over }, priority)
            .await
    }

    /// One request for a body: refused at once while the circuit is open or the queue is full;
    /// otherwise under one of `gate`'s slots, within `timeout_ms` all told, classified and checked.
    async fn fetch(
        &self,
        kind: &'static str,
        gate: &RenderGate,
        url: &str,
        expect: Expect<impl Fn(&[u8]) -> bool>,
        priority: Priority,
    ) -> Result<(Bytes, Duration), UpstreamError> {
        let queued = Instant::now();
        let result = self.fetch_gated(gate, url, expect, priority).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        crate::telemetry::metrics::upstream(kind, outcome, queued.elapsed());
        result
    }

    async fn fetch_gated(
        &self,
        gate: &RenderGate,
        url: &str,
        expect: Expect<impl Fn(&[u8]) -> bool>,
        priority: Priority,
    ) -> Result<(Bytes, Duration), UpstreamError> {
        if let Some(retry_after) = self.breaker.refuse() {
            return Err(UpstreamError::CircuitOpen(retry_after));
        }
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + self.timeout);
        let _permit = match gate.try_acquire(priority) {
            Some(p) => p,
            None => {
                // People queue within `max_waiting`; warm-up jobs are bounded by their own
                // concurrency and never take a person's place in that queue.
                let _place = match priority {
                    Priority::Interactive => match Waiting::enter(&self.waiting, self.max_waiting) {
                        Some(place) => Some(place),
                        None => {
                            return Err(UpstreamError::Busy);
                        }
                    },
                    Priority::Background => None,
                };
                match tokio::time::timeout_at(deadline, gate.acquire(priority)).await {
                    Ok(p) => p,
                    Err(_) => {
                        self.stats.queue_timeouts.fetch_add(1, Ordering::Relaxed);
                        return Err(UpstreamError::Timeout);
                    }
                }
            }
        };
        let result = tokio::time::timeout_at(deadline, self.request(url, expect))
            .await
            .unwrap_or(Err(UpstreamError::Timeout));
        match &result {
            Err(e) if e.is_upstream_failure() => {
                if self.breaker.failure() {
                    self.spawn_probe();
                }
            }
            _ => self.breaker.success(),
        }
        result.map(|body| (body, started.elapsed()))
    }

    async fn request(
        &self,
        url: &str,
        expect: Expect<impl Fn(&[u8]) -> bool>,
    ) -> Result<Bytes, UpstreamError> {
        let Expect { mime, magic, too_big } = expect;
        let resp = self.http.get(url).header(ACCEPT, mime).send().await.map_err(classify)?;
        check_status(resp.status())?;
        let claimed = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = self.read_capped(resp, too_big).await?;
        if !claimed.starts_with(mime) {
            return Err(UpstreamError::BadResponse(format!(
                "asked for {mime}, got content type {claimed:?}"
            )));
        }
        if !magic(&body) {
            return Err(UpstreamError::BadResponse(format!("body is not {mime}")));
        }
        Ok(body)
    }

    /// While the circuit is open: ping Orthanc every `breaker_probe_ms` until it answers, then close.
    fn spawn_probe(&self) {
        let this = self.clone();
        let probe = async move {
            loop {
                tokio::time::sleep(this.breaker.probe_every()).await;
                let ok = this.ping().await.is_ok();
                this.breaker.probed(ok);
                if ok {
                    break;
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(probe);
            }
            // No runtime to probe from: never leave the circuit open for good.
            Err(_) => self.breaker.probed(true),
        }
    }

    /// `GET /studies/{id}`.
    pub async fn study(&self, id: &OrthancId) -> Result<StudyInfo, UpstreamError> {
        self.get_json("study", &format!("/studies/{id}")).await
    }

    /// `GET /studies/{id}/series`: every series with its tags and instance ids.
    pub async fn study_series(&self, id: &OrthancId) -> Result<Vec<SeriesInfo>, UpstreamError> {
        self.get_json("study-series", &format!("/studies/{id}/series")).await
    }

    /// `GET /series/{id}`.
    pub async fn series(&self, id: &OrthancId) -> Result<SeriesInfo, UpstreamError> {
        self.get_json("series", &format!("/series/{id}")).await
    }

    /// `GET /series/{id}/instances`: instances with `IndexInSeries` and instance numbers.
    pub async fn series_instances(&self, id: &OrthancId) -> Result<Vec<InstanceInfo>, UpstreamError> {
        self.get_json("series-instances", &format!("/series/{id}/instances")).await
    }

    /// `POST /tools/lookup` of a DICOM UID (validated by the caller). A UID Orthanc does not know
    /// (an empty answer) is `NotFound`, remembered like a 404.
    pub async fn lookup(&self, uid: &str) -> Result<Vec<LookupHit>, UpstreamError> {
        let req = self.http.post(format!("{}/tools/lookup", self.base)).body(uid.to_owned());
        self.metadata("lookup", &format!("POST /tools/lookup {uid}"), async {
            let hits: Vec<LookupHit> = self.json(req).await?;
            if hits.is_empty() {
                return Err(UpstreamError::NotFound);
            }
            Ok(hits)
        })
        .await
    }

    /// `GET /changes?since=N&limit=M`.
    pub async fn changes(&self, since: u64, limit: u32) -> Result<Changes, UpstreamError> {
        self.get_json("changes", &format!("/changes?since={since}&limit={limit}")).await
    }

    /// Sequence number of Orthanc's newest change (`GET /changes?last`).
    pub async fn last_change_seq(&self) -> Result<u64, UpstreamError> {
        let page: Changes = self.get_json("changes", "/changes?last").await?;
        Ok(page.last)
    }

    /// `GET {path}` as JSON, through [`Self::metadata`]: the usual shape of a new metadata call.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        path: &str,
    ) -> Result<T, UpstreamError> {
        let req = self.http.get(format!("{}{path}", self.base));
        self.metadata(op, &format!("GET {path}"), self.json(req)).await
    }

    /// The one way metadata requests (lineage, listings, UID lookups, /changes) reach Orthanc.
    ///
    /// `request` names the request exactly (method, path and any body, e.g. `GET /instances/{id}`):
    /// if Orthanc answered it 404 within `cache.negative_ttl_s`, it is `NotFound` again at once.
    /// Otherwise it is refused while the circuit is open, waits for one of
    /// `orthanc.max_metadata_concurrency` slots (at most `max_waiting` queued, else `Busy`), runs
    /// within `timeout_ms` all told, counts for or against the breaker and is timed under `op`.
    /// A new call: `self.metadata("op", &request, async { ... self.json(req).await ... }).await`.
    pub(crate) async fn metadata<T>(
        &self,
        op: &'static str,
        request: &str,
        call: impl Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, UpstreamError> {
        if self.not_found.contains(request) {
            return Err(UpstreamError::NotFound);
        }
        if let Some(retry_after) = self.breaker.refuse() {
            return Err(UpstreamError::CircuitOpen(retry_after));
        }
        let started = Instant::now();
        let result = self.gated(call).await;
        match &result {
            // Refused before reaching Orthanc: says nothing about its health.
            Err(UpstreamError::Busy) => {}
            Err(e) if e.is_upstream_failure() => {
                if self.breaker.failure() {
                    self.spawn_probe();
                }
            }
            Err(UpstreamError::NotFound) => {
                self.not_found.insert(request).await;
                self.breaker.success();
            }
            _ => self.breaker.success(),
        }
        let outcome = result.as_ref().map_or_else(|e| e.code(), |_| "ok");
        crate::telemetry::metrics::upstream(op, outcome, started.elapsed());
        result
    }

    /// `call` under a metadata slot, within `timeout_ms` from now, queueing included.
    async fn gated<T>(
        &self,
        call: impl Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, UpstreamError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let _slot = match tokio::time::timeout_at(deadline, self.metadata.acquire()).await {
            Ok(Ok(slot)) => slot,
            Ok(Err(_full)) => {
                return Err(UpstreamError::Busy);
            }
            Err(_) => {
                self.stats.queue_timeouts.fetch_add(1, Ordering::Relaxed);
                return Err(UpstreamError::Timeout);
            }
        };
        tokio::time::timeout_at(deadline, call).await.unwrap_or(Err(UpstreamError::Timeout))
    }

    /// A JSON request, classified like image requests, body capped.
    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, UpstreamError> {
        let resp = req.header(ACCEPT, "application/json").send().await.map_err(classify)?;
        check_status(resp.status())?;
        let body = self.read_capped(resp, bad_response_over).await?;
        // Position only: serde's message may quote values, and values may be patient data.
        serde_json::from_slice(&body).map_err(|e| {
            UpstreamError::BadResponse(format!("unexpected JSON at line {} column {}", e.line(), e.column()))
        })
    }

    /// One node of the hierarchy (`GET /{instances|series|studies}/{id}`): its parent's id and
    /// its own DICOM UID, as Orthanc indexed them.
    pub async fn node(&self, level: Level, id: &OrthancId) -> Result<Node, UpstreamError> {
        let op = match level {
            Level::Instance => "instance",
            Level::Series => "series",
            Level::Study => "study",
        };
        let raw: RawNode = self.get_json(op, &format!("/{}/{id}", level.orthanc_path())).await?;
        let parent = match level {
            Level::Instance => Some(raw.parent_series),
            Level::Series => Some(raw.parent_study),
            Level::Study => None,
        };
        let parent = match parent {
            None => None,
            Some(p) => Some(p.as_deref().and_then(OrthancId::parse).ok_or_else(|| {
                UpstreamError::BadResponse(format!("{} answer has no parent", level.as_str()))
            })?),
        };
        let tags = raw.main_dicom_tags;
        let uid = match level {
            Level::Instance => tags.sop_instance_uid,
            Level::Series => tags.series_instance_uid,
            Level::Study => tags.study_instance_uid,
        };
        Ok(Node { parent, uid: uid.filter(|u| crate::ids::valid_uid(u)) })
    }

    /// Is Orthanc answering with our credentials? (`GET /system`) Under the metadata gate, but
    /// neither refused by the breaker nor counted by it: the breaker's own probe is a ping.
    pub async fn ping(&self) -> Result<(), UpstreamError> {
        let started = Instant::now();
        let request =
            self.http.get(format!("{}/system", self.base)).timeout(self.timeout.min(Duration::from_secs(2)));
        let result = self
            .gated(async {
                match request.send().await {
                    Ok(resp) => check_status(resp.status()),
                    Err(e) => Err(classify(e)),
                }
            })
            .await;
        let outcome = result.as_ref().map_or_else(|e| e.code(), |_| "ok");
        crate::telemetry::metrics::upstream("ping", outcome, started.elapsed());
        if result.is_ok() {
            self.answered.store(true, Ordering::Relaxed);
        }
        result
    }

    /// Has a ping ever succeeded since start (service credentials and URL proven to work)?
    pub fn has_answered(&self) -> bool {
        self.answered.load(Ordering::Relaxed)
    }

    /// The body, or `too_big(max_body_bytes)` as soon as it is known to be over the cap.
    async fn read_capped(
        &self,
        mut resp: reqwest::Response,
        too_big: fn(u64) -> UpstreamError,
    ) -> Result<Bytes, UpstreamError> {
        let too_big = || too_big(self.max_body);
        if resp.content_length().is_some_and(|n| n > self.max_body) {
            return Err(too_big());
        }
        let mut buf = BytesMut::with_capacity(resp.content_length().unwrap_or(64 * 1024) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if (buf.len() + chunk.len()) as u64 > self.max_body {
                return Err(too_big());
            }
            buf.extend_from_slice(&chunk);
        }
        // Bodies may be cached: without a length the buffer grew by doubling, and spare capacity
        // would sit in the memory tier unweighed.
        if buf.capacity() - buf.len() > buf.len() / 8 {
            return Ok(Bytes::copy_from_slice(&buf));
        }
        Ok(buf.freeze())
    }
}

/// What a body request expects back: its content type, a check of its first bytes, and the
/// error for a body over `max_body_bytes`.
struct Expect<M> {
    mime: &'static str,
    magic: M,
    too_big: fn(u64) -> UpstreamError,
}

/// An image or JSON body over the cap: Orthanc misbehaving.
fn bad_response_over(limit: u64) -> UpstreamError {
    UpstreamError::BadResponse(format!("body larger than {limit} bytes"))
}

fn check_status(status: StatusCode) -> Result<(), UpstreamError> {
    match status.as_u16() {
        200 => Ok(()),
        404 => Err(UpstreamError::NotFound),
        415 => Err(UpstreamError::Unsupported),
        s @ (401 | 403) => {
            tracing::error!(
                status = s,
                "Orthanc rejected the service credentials: check orthanc.username / orthanc.password"
            );
            Err(UpstreamError::Auth(s))
        }
        s => Err(UpstreamError::Status(s)),
    }
}

/// How long an idle connection to Orthanc is kept for the next request: below the 1 s after which
/// Orthanc 1.10 closes an idle keep-alive connection (CivetWeb's, not configurable; measured: a
/// connection idle 0.6 s answers, 1.1 s is closed). Kept longer, a request sent as Orthanc closes
/// it fails ("connection closed before message completed"): a 502 for nothing.
const ORTHANC_IDLE: Duration = Duration::from_millis(500);

fn classify(e: reqwest::Error) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout
    } else {
        // Connection refused/reset, broken body: the URL is in the message, the credentials are not.
        UpstreamError::Unavailable(e.without_url().to_string())
    }
}

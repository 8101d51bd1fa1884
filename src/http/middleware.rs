//! Per-request context: the client's address, size limits, request id, a tracing span, admission while shutting down, metrics, one access log line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpRequest, ResponseError};
use tracing::Instrument;

use super::client::{self, ClientAddr};
use super::error::AppError;
use crate::state::AppState;
use crate::telemetry;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// What a handler learned that the access line reports (put in the request's extensions).
#[derive(Debug, Clone, Default)]
pub struct AccessRecord {
    /// The credential's configured name, never the secret.
    pub principal: Option<Arc<str>>,
    pub cache: Option<&'static str>,
    pub upstream: Duration,
    pub transform: Duration,
}

/// Accept a caller's request id only if it is short and plain; otherwise make one.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(new_request_id)
}

/// 32 hex digits: a random per-process prefix and a counter. Unique across replicas and restarts
/// (the prefix), without asking the OS for randomness on every request as a v4 UUID does.
fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::LazyLock;
    static PREFIX: LazyLock<u64> = LazyLock::new(|| uuid::Uuid::new_v4().as_u64_pair().0);
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut id = String::with_capacity(32);
    crate::ids::push_hex(&mut id, &PREFIX.to_be_bytes());
    crate::ids::push_hex(&mut id, &NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    id
}

/// A path as logged: its first 200 characters (a client chooses its length), written only when
/// an event that carries it is recorded.
struct LogPath<'a>(&'a str);

impl std::fmt::Display for LogPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.char_indices().nth(200) {
            Some((end, _)) => f.write_str(&self.0[..end]),
            None => f.write_str(self.0),
        }
    }
}

/// The client's address as logged (`-` when unknown), formatted only when recorded.
struct LogClient(Option<ClientAddr>);

impl std::fmt::Display for LogClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(c) => c.ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// `Server-Timing` of an image response: `cache;desc=miss, upstream;dur=12.1, transform;dur=3.4,
/// total;dur=15.9` (ms), from what the handler put in the access record.
fn server_timing(cache: &str, record: &AccessRecord, total: Duration) -> Option<HeaderValue> {
    use std::fmt::Write;
    let mut v = String::with_capacity(96);
    let _ = write!(v, "cache;desc={cache}");
    if !record.upstream.is_zero() {
        let _ = write!(v, ", upstream;dur={}", ms(record.upstream));
    }
    if !record.transform.is_zero() {
        let _ = write!(v, ", transform;dur={}", ms(record.transform));
    }
    let _ = write!(v, ", total;dur={}", ms(total));
    HeaderValue::from_maybe_shared(bytes::Bytes::from(v)).ok()
}

/// Probes keep answering while shutting down: liveness stays 200, readiness says 503.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// Methods as metric labels: the standard ones, anything else `other` (label values stay bounded).
fn metric_method(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    }
}

/// The route pattern as the static string of the route table (`-` for none): metric labels and
/// the access line without a copy per request.
fn route_label(req: &HttpRequest) -> &'static str {
    req.app_data::<super::RoutePattern>().map_or("-", |p| p.0)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// URL and header block within `server.max_uri_bytes` / `server.max_header_bytes`?
fn too_large(req: &ServiceRequest) -> Option<AppError> {
    let server = &req.app_data::<web::Data<AppState>>()?.config.server;
    let uri = req.uri().path_and_query().map(|pq| pq.as_str().len()).unwrap_or(0);
    if uri > server.max_uri_bytes {
        return Some(AppError::UriTooLong(server.max_uri_bytes));
    }
    let headers: usize = req.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    (headers > server.max_header_bytes).then_some(AppError::HeadersTooLarge(server.max_header_bytes))
}

/// `//instances/...` (a client's base URL with a trailing slash) is `/instances/...`, before
/// routing; a trailing slash stays (`/warm/` is no route). A path without `//` costs one scan:
/// actix's `NormalizePath` allocates and runs a regex on every request.
pub fn merge_slashes(req: &mut ServiceRequest) {
    let uri = &req.head().uri;
    if !uri.path().contains("//") {
        return;
    }
    let mut merged = String::with_capacity(uri.path().len());
    for c in uri.path().chars() {
        if !(c == '/' && merged.ends_with('/')) {
            merged.push(c);
        }
    }
    if let Some(q) = uri.query() {
        merged.push('?');
        merged.push_str(q);
    }
    let mut parts = uri.clone().into_parts();
    let Ok(pq) = merged.parse() else { return };
    parts.path_and_query = Some(pq);
    let Ok(uri) = actix_web::http::Uri::from_parts(parts) else { return };
    req.match_info_mut().get_mut().update(&uri);
    req.head_mut().uri = uri;
}

pub async fn request_context(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    merge_slashes(&mut req);
    let id = request_id(&req);
    // Once per request; `client_addr(req)` reads it back.
    let client = client::compute(req.request());
    if let Some(c) = client {
        req.extensions_mut().insert::<ClientAddr>(c);
    }
    // The path only: a query string is whatever the client put there, secrets included.
    // What an event inside the request says of it; the rest (route, principal, status, cache,
    // timings) is on the access line, found by the request id. Recording fields into the span
    // as they became known re-encoded its JSON each time: an eighth of a hit's CPU. Fields are
    // borrowed: nothing is formatted for a span or a line the filter leaves out.
    let span =
        tracing::info_span!("request", request_id = %id, method = %req.method(), path = %LogPath(req.path()));
    let started = Instant::now();
    let refusing = req.app_data::<web::Data<AppState>>().is_some_and(|s| s.lifecycle.is_refusing());
    let mut res = if refusing && !is_probe(req.path()) {
        let (http_req, _) = req.into_parts();
        ServiceResponse::new(http_req, AppError::ShuttingDown.error_response()).map_into_right_body()
    } else if let Some(refusal) = too_large(&req) {
        req.into_response(refusal.error_response()).map_into_right_body()
    } else {
        next.call(req).instrument(span.clone()).await?.map_into_left_body()
    };
    let elapsed = started.elapsed();
    let route = route_label(res.request());
    let status = res.status().as_u16();
    let code = res.response().error().and_then(|e| e.as_error::<AppError>()).map(|e| {
        if let AppError::Auth(a) = e {
            telemetry::auth_denied(a.code());
        }
        e.code()
    });
    telemetry::metrics::request(route, metric_method(res.request().method().as_str()), status, elapsed);
    let record = res.request().extensions_mut().remove::<AccessRecord>().unwrap_or_default();
    let bytes = match res.response().body().size() {
        BodySize::Sized(n) => n,
        _ => 0,
    };
    let timing = record.cache.and_then(|cache| server_timing(cache, &record, elapsed));
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID, v);
    }
    if let Some(v) = timing {
        headers.insert(SERVER_TIMING, v);
    }
    let req = res.request();
    tracing::info!(
        target: "orthanc_edge::access",
        parent: None,
        request_id = %id,
        client = %LogClient(client),
        method = %req.method(),
        path = %LogPath(req.path()),
        route = %route,
        status,
        code = code.unwrap_or("-"),
        principal = record.principal.as_deref().unwrap_or("-"),
        cache = record.cache.unwrap_or("-"),
        bytes,
        upstream_ms = ms(record.upstream),
        transform_ms = ms(record.transform),
        elapsed_ms = ms(elapsed),
        "request"
    );
    Ok(res)
}

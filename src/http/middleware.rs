//! Per-request context: request id, a tracing span carrying route/status/cache/timings, one log line.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::Error;
use tracing::field::Empty;
use tracing::Instrument;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = request_id(&req);
    // The path only: query strings may carry credentials in later versions of the API.
    let path: String = req.path().chars().take(200).collect();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %path,
        route = Empty,
        principal = Empty,
        status = Empty,
        cache = Empty,
        upstream_ms = Empty,
        elapsed_ms = Empty,
    );
    let started = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    let route = res.request().match_pattern().unwrap_or_else(|| "-".to_owned());
    span.record("route", route.as_str());
    span.record("status", res.status().as_u16());
    span.record("elapsed_ms", started.elapsed().as_secs_f64() * 1000.0);
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    tracing::info!(parent: &span, "request");
    Ok(res)
}

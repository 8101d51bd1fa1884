//! Per-request context: size limits, request id, a tracing span carrying route/status/cache/timings, one log line.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, ResponseError};
use tracing::field::Empty;
use tracing::Instrument;

use crate::error::AppError;
use crate::state::AppState;

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

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
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
    let mut res = match too_large(&req) {
        Some(refusal) => req.into_response(refusal.error_response()).map_into_right_body(),
        None => next.call(req).instrument(span.clone()).await?.map_into_left_body(),
    };
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

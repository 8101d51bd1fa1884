//! Preview handlers: parse, authorize, ask the preview service, shape the response.

use actix_web::http::header::HeaderValue;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use super::conditional::{respond, Cacheable};
use super::error::AppError;
use super::extract::Caller;
use super::middleware::{AccessRecord, SERVER_TIMING};
use super::PreviewRequest;
use crate::auth::{Resource, Scope};
use crate::previews::Served;
use crate::state::AppState;

pub async fn preview(
    request: PreviewRequest,
    Caller(principal): Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let instance = &request.spec.instance;
    let grant = state.auth.authorize(&principal, Scope::Preview, Resource::Instance(instance)).await?;
    serve(&req, &state, &request, &grant.client).await
}

/// The image of a checked request (`returnUnsupportedImage` honoured), as a response.
pub async fn serve(
    req: &HttpRequest,
    state: &AppState,
    request: &PreviewRequest,
    client: &std::sync::Arc<str>,
) -> Result<HttpResponse, AppError> {
    let served = if request.unsupported_tile {
        state.previews.get_or_unsupported_tile(&request.spec, client).await?
    } else {
        state.previews.get(&request.spec, client).await?
    };
    Ok(image_response(req, state, &served, request.negotiated.then_some("Accept")))
}

/// The image response (conditional), with the cache outcome and timings on the access line
/// and in `Server-Timing`.
pub fn image_response(
    req: &HttpRequest,
    state: &AppState,
    served: &Served,
    vary: Option<&'static str>,
) -> HttpResponse {
    if let Some(rec) = req.extensions_mut().get_mut::<AccessRecord>() {
        rec.cache = Some(served.status.as_str());
        rec.upstream = served.upstream;
        rec.transform = served.transform;
    }
    let entry = &served.entry;
    // No allocation on the hit path: the headers that apply, in a fixed array.
    let mut all = [("x-cache", served.status.as_str()), ("", ""), ("", "")];
    let mut n = 1;
    for header in [vary.map(|v| ("vary", v)), served.placeholder.map(|kind| ("x-placeholder", kind))]
        .into_iter()
        .flatten()
    {
        all[n] = header;
        n += 1;
    }
    let headers = &all[..n];
    let cacheable = Cacheable {
        etag: &entry.etag,
        cache_control: state.cache_control.clone(),
        content_type: &entry.content_type,
        headers,
    };
    let mut resp = respond(req, cacheable, entry.body.clone());
    if let Ok(v) = HeaderValue::from_str(&server_timing(served)) {
        resp.headers_mut().insert(SERVER_TIMING, v);
    }
    resp
}
/// `cache;desc=miss, upstream;dur=12.1, transform;dur=3.4` (ms); the middleware appends `total`.
fn server_timing(served: &Served) -> String {
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let mut v = format!("cache;desc={}", served.status.as_str());
    if !served.upstream.is_zero() {
        v.push_str(&format!(", upstream;dur={}", ms(served.upstream)));
    }
    if !served.transform.is_zero() {
        v.push_str(&format!(", transform;dur={}", ms(served.transform)));
    }
    v
}

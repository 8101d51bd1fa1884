//! Preview handlers: parse, authorize, ask the preview service, shape the response.

use actix_web::http::header::{self, HeaderName};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

use super::conditional::{respond, Cacheable};
use super::error::AppError;
use super::extract::Caller;
use super::middleware::AccessRecord;
use super::PreviewRequest;
use crate::auth::{Resource, Scope};
use crate::previews::Served;
use crate::state::AppState;

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
const X_PLACEHOLDER: HeaderName = HeaderName::from_static("x-placeholder");

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

/// The image response (conditional), with the cache outcome and timings in the access record:
/// the middleware puts them on the access line and in `Server-Timing`.
pub fn image_response(
    req: &HttpRequest,
    state: &AppState,
    served: &Served,
    vary: Option<&'static str>,
) -> HttpResponse {
    {
        let mut ext = req.extensions_mut();
        if ext.get::<AccessRecord>().is_none() {
            ext.insert(AccessRecord::default());
        }
        if let Some(rec) = ext.get_mut::<AccessRecord>() {
            rec.cache = Some(served.status.as_str());
            rec.upstream = served.upstream;
            rec.transform = served.transform;
        }
    }
    let entry = &served.entry;
    // No allocation on the hit path: the headers that apply, in a fixed array.
    let none = || (X_CACHE, "");
    let mut all = [(X_CACHE, served.status.as_str()), none(), none()];
    let mut n = 1;
    for header in [vary.map(|v| (header::VARY, v)), served.placeholder.map(|kind| (X_PLACEHOLDER, kind))]
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
    respond(req, cacheable, entry.body.clone())
}

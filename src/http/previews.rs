//! Preview handlers: parse, authorize, ask the preview service, shape the response.

use actix_web::{web, HttpRequest, HttpResponse};

use super::conditional::image_response;
use super::PreviewRequest;
use crate::auth::{Principal, Resource, Scope};
use crate::error::AppError;
use crate::state::AppState;

pub async fn preview(
    PreviewRequest { spec, negotiated }: PreviewRequest,
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    state.auth.authorize(&principal, Scope::Preview, Resource::Instance(&spec.instance)).await?;
    let served = state.previews.get(&spec).await?;
    tracing::Span::current().record("cache", served.status.as_str());
    let vary = negotiated.then_some("Accept");
    Ok(image_response(&req, &served, &state.cache_control, vary))
}

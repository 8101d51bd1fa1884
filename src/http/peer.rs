//! The peer listener (`cluster.listen`): what other edges of the cluster ask this one. Every
//! request must carry the cluster secret, checked before routing, so these routes are never a
//! way around client authorization; the public listener has none of them.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse, ResponseError};

use super::error::AppError;
use crate::cache::CacheStatus;
use crate::cluster::wire::{
    ImageRequest, PositionRequest, PurgeRequest, WarmRequest, WireError, ERROR_STATUS, OWNER_CACHE_HEADER,
    SECRET_HEADER,
};
use crate::previews::PreviewError;
use crate::state::AppState;

/// Refuse (401, before any route runs) a request without the cluster secret.
pub async fn peer_secret(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let given = req.headers().get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    let ok = req.app_data::<web::Data<AppState>>().is_some_and(|s| s.cluster.secret_matches(given));
    if !ok {
        crate::telemetry::metrics::auth_denied("peer-secret");
        let resp = AppError::PeerSecret.error_response();
        return Ok(req.into_response(resp).map_into_right_body());
    }
    next.call(req).await.map(ServiceResponse::map_into_left_body)
}

/// The peer routes, under `/peer/v1`.
pub fn configure_peer(cfg: &mut web::ServiceConfig) {
    let json = web::JsonConfig::default()
        .limit(8 << 20)
        .error_handler(|e, _| AppError::BadParam(format!("peer request body: {e}")).into());
    cfg.app_data(json).service(
        web::scope("/peer/v1")
            .route("/health", web::get().to(health))
            .route("/image", web::post().to(image))
            .route("/warm", web::post().to(warm))
            .route("/warm/{job}", web::get().to(job_progress))
            .route("/warm/{job}", web::delete().to(job_cancel))
            .route("/purge", web::post().to(purge))
            .route("/position", web::post().to(position)),
    );
    cfg.default_service(web::to(|| async { Err::<HttpResponse, AppError>(AppError::NoRoute) }));
}

/// An owner's error, as the asker reads it back.
fn owner_error(e: PreviewError) -> HttpResponse {
    let status = StatusCode::from_u16(ERROR_STATUS).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    HttpResponse::build(status).json(WireError::from(e))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// An image this edge owns, for another edge's request.
async fn image(state: web::Data<AppState>, req: web::Json<ImageRequest>) -> HttpResponse {
    match state.previews.get_for_peer(req.into_inner()).await {
        Ok(served) => {
            let e = &served.entry;
            let cached = if served.status == CacheStatus::Miss { "miss" } else { "hit" };
            HttpResponse::Ok()
                .content_type(e.content_type.as_str())
                .insert_header(("etag", e.etag.as_str()))
                .insert_header(("x-entry-created", e.created.to_string()))
                .insert_header((OWNER_CACHE_HEADER, cached))
                .body(e.body.clone())
        }
        Err(e) => owner_error(e),
    }
}

/// Every variant of an instance this edge owns, for another edge's warm-up job.
async fn warm(state: web::Data<AppState>, req: web::Json<WarmRequest>) -> HttpResponse {
    let WarmRequest { instance, rendering, variants, priority } = req.into_inner();
    let results: Vec<Result<_, WireError>> = state
        .previews
        .warm_here(&instance, rendering, &variants, priority)
        .await
        .into_iter()
        .map(|r| r.map_err(WireError::from))
        .collect();
    HttpResponse::Ok().json(results)
}

/// A warm-up job of this edge, or `null`.
async fn job_progress(state: web::Data<AppState>, id: web::Path<String>) -> HttpResponse {
    HttpResponse::Ok().json(state.warmer.progress(&id))
}

async fn job_cancel(state: web::Data<AppState>, id: web::Path<String>) -> HttpResponse {
    HttpResponse::Ok().json(state.warmer.cancel(&id))
}

/// Another edge's purge: drop these instances here.
async fn purge(state: web::Data<AppState>, req: web::Json<PurgeRequest>) -> HttpResponse {
    match state.previews.drop_here(&req.instances, &req.forget).await {
        Ok(dropped) => HttpResponse::Ok().json(dropped),
        Err(e) => owner_error(e),
    }
}

/// The follower (on another edge) got this far in /changes.
async fn position(state: web::Data<AppState>, req: web::Json<PositionRequest>) -> HttpResponse {
    if let Some(f) = state.follower() {
        f.heard(req.seq).await;
    }
    HttpResponse::NoContent().finish()
}

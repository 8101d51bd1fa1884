//! Warm-up jobs over HTTP: start (202 + id), progress, cancel.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::error::AppError;
use super::extract::{json_object, NoQuery};
use crate::auth::{Principal, Resource, Scope};
use crate::state::AppState;
use crate::warm::{WarmRequest, Warmer};

pub async fn start(
    principal: Principal,
    _: NoQuery,
    state: web::Data<AppState>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, AppError> {
    state.auth.authorize(&principal, Scope::Warm, Resource::Edge).await?;
    let req: WarmRequest = json_object(body.into_inner())?;
    let id = state.warmer.start(req)?;
    tracing::info!(job = %id, principal = %principal.name, "warm-up job started");
    Ok(HttpResponse::Accepted()
        .insert_header(("location", format!("/warm/{id}")))
        .json(json!({"id": id, "status": format!("/warm/{id}")})))
}

pub async fn progress(
    principal: Principal,
    _: NoQuery,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let p = job(&principal, &state, "GET", &path, |w| w.progress(&path)).await?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(p))
}

pub async fn cancel(
    principal: Principal,
    _: NoQuery,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(job(&principal, &state, "DELETE", &path, |w| w.cancel(&path)).await?))
}

/// What `look` says of the job named in the path (scope `warm`), here or, in a cluster, on the
/// edge that runs it (asked with `method`); 404 when no edge has such a job.
async fn job<T: serde::Serialize>(
    principal: &Principal,
    state: &AppState,
    method: &'static str,
    id: &str,
    look: impl FnOnce(&Warmer) -> Option<T>,
) -> Result<serde_json::Value, AppError> {
    state.auth.authorize(principal, Scope::Warm, Resource::Edge).await?;
    if let Some(found) = look(&state.warmer) {
        return serde_json::to_value(found).map_err(|e| AppError::Internal(e.to_string()));
    }
    // Job ids are 32 hex digits: anything else is not asked of the peers.
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        if let Some(found) = state.cluster.job(method, id).await {
            return Ok(found);
        }
    }
    Err(AppError::NotFound("no such warm-up job"))
}

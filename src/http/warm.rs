//! Warm-up jobs over HTTP: start (202 + id), progress, cancel.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::extract::{json_object, NoQuery};
use crate::auth::{Principal, Resource, Scope};
use crate::error::AppError;
use crate::state::AppState;
use crate::warm::WarmRequest;

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
    state.auth.authorize(&principal, Scope::Warm, Resource::Edge).await?;
    let p = state.warmer.progress(&path).ok_or(AppError::NotFound("no such warm-up job"))?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(p))
}

pub async fn cancel(
    principal: Principal,
    _: NoQuery,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    state.auth.authorize(&principal, Scope::Warm, Resource::Edge).await?;
    let p = state.warmer.cancel(&path).ok_or(AppError::NotFound("no such warm-up job"))?;
    Ok(HttpResponse::Ok().json(p))
}

//! Cache purges (scope `admin`): every variant of every affected instance, both tiers.

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::AppError;
use super::extract::{path_id, NoQuery};
use crate::auth::{Principal, Resource, Scope};
use crate::model::Level;
use crate::state::AppState;

pub async fn purge(
    principal: Principal,
    _: NoQuery,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    state.auth.authorize(&principal, Scope::Admin, Resource::Edge).await?;
    let id = path_id(&req, "id")?;
    let segment = req.match_info().get("level").unwrap_or("");
    let level = match segment {
        "instances" => Level::Instance,
        "series" => Level::Series,
        "studies" => Level::Study,
        _ => return Err(AppError::NoRoute),
    };
    let report = state.previews.purge(level, &id).await?;
    tracing::info!(
        principal = %principal.name,
        level = segment,
        instances = report.instances,
        entries = report.entries,
        unreachable = report.unreachable.len(),
        "cache purged"
    );
    if !report.unreachable.is_empty() {
        return Err(AppError::PurgeIncomplete(Box::new(report)));
    }
    Ok(HttpResponse::Ok().json(report))
}

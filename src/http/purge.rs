//! Cache purges (scope `admin`): every variant of every affected instance, both tiers.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::extract::{path_id, NoQuery};
use crate::auth::{Principal, Resource, Scope};
use crate::error::AppError;
use crate::ids::OrthancId;
use crate::state::AppState;

pub async fn purge(
    principal: Principal,
    _: NoQuery,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    state.auth.authorize(&principal, Scope::Admin, Resource::Edge).await?;
    let id = path_id(&req, "id")?;
    let level = req.match_info().get("level").unwrap_or("");
    let instances: Vec<OrthancId> = match level {
        "instances" => vec![id.clone()],
        "series" => state.catalog.series_instances(&id).await?.to_vec(),
        "studies" => {
            let mut all = Vec::new();
            for series in state.catalog.study_series(&id).await? {
                all.extend(state.catalog.series_instances(&series).await?.iter().cloned());
                state.catalog.forget(&series).await;
            }
            all
        }
        _ => return Err(AppError::NoRoute),
    };
    let (mut entries, mut bytes) = (0u64, 0u64);
    for instance in &instances {
        let (n, b) = state.previews.purge_instance(instance).await?;
        entries += n;
        bytes += b;
    }
    state.catalog.forget(&id).await;
    tracing::info!(principal = %principal.name, level, instances = instances.len(), entries, "cache purged");
    Ok(HttpResponse::Ok().json(json!({"instances": instances.len(), "entries": entries, "bytes": bytes})))
}

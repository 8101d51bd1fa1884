//! Liveness and readiness probes (no auth, no details an outsider could use).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

/// The process is alive and serving HTTP.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(json!({"status": "ok"}))
}

/// Ready to serve: caches open, not draining, and Orthanc has answered with the service
/// credentials at least once since start (a wrong URL or password keeps a new edge out of
/// rotation). A later Orthanc outage makes the edge `degraded`, still 200: it keeps serving its
/// cache, and taking every edge out of rotation would turn a PACS outage into a total one.
/// Served from state (`crate::health`): probes never cost Orthanc more than a ping a second.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let r = state.health.readiness().await;
    let mut resp = if r.is_ready() { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    let body = match r.orthanc {
        None => json!({"status": r.status}),
        Some(orthanc) => {
            json!({"status": r.status, "orthanc": orthanc, "cache": "open", "circuit": r.circuit})
        }
    };
    resp.insert_header(("cache-control", "no-store")).json(body)
}

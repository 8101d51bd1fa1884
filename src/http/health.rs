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
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.lifecycle.is_draining() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("cache-control", "no-store"))
            .json(json!({"status": "draining"}));
    }
    let orthanc = state.upstream.ping().await;
    let (mut resp, status) = match &orthanc {
        Ok(()) => (HttpResponse::Ok(), "ready"),
        Err(_) if state.upstream.has_answered() => (HttpResponse::Ok(), "degraded"),
        Err(_) => (HttpResponse::ServiceUnavailable(), "unready"),
    };
    let body = json!({
        "status": status,
        "orthanc": match &orthanc { Ok(()) => "ok", Err(e) => e.code() },
        "cache": "open",
        "circuit": state.upstream.breaker().state().as_str(),
    });
    resp.insert_header(("cache-control", "no-store")).json(body)
}

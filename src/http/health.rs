//! Liveness and readiness probes (no auth, no details an outsider could use).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

/// The process is alive and serving HTTP.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(json!({"status": "ok"}))
}

/// Caches are open, Orthanc answers with the service credentials, and the edge is not draining.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.lifecycle.is_draining() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("cache-control", "no-store"))
            .json(json!({"status": "draining"}));
    }
    let orthanc = state.upstream.ping().await;
    let body = json!({
        "status": if orthanc.is_ok() { "ready" } else { "unready" },
        "orthanc": match &orthanc { Ok(()) => "ok", Err(e) => e.code() },
        "cache": "open",
        "circuit": state.upstream.breaker().state().as_str(),
    });
    let mut resp = if orthanc.is_ok() { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    resp.insert_header(("cache-control", "no-store")).json(body)
}

//! The whole URL map, public and admin. Anything not listed here is a JSON 404: the edge is not a proxy.

use actix_web::{web, HttpResponse};

use super::{admin, health, previews};
use crate::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/instances/{id}/preview")
            .route(web::get().to(previews::preview))
            .route(web::head().to(previews::preview))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/instances/{id}/frames/{frame}/preview")
            .route(web::get().to(previews::preview))
            .route(web::head().to(previews::preview))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/instances/{id}/rendered")
            .route(web::get().to(previews::preview))
            .route(web::head().to(previews::preview))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/instances/{id}/frames/{frame}/rendered")
            .route(web::get().to(previews::preview))
            .route(web::head().to(previews::preview))
            .default_service(web::to(method_not_allowed)),
    )
    .service(web::resource("/healthz").route(web::get().to(health::healthz)))
    .service(web::resource("/readyz").route(web::get().to(health::readyz)))
    .default_service(web::to(no_route));
}

/// The admin listener (`server.admin_listen`): metrics and probes, nothing that serves images.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(admin::metrics)))
        .service(web::resource("/healthz").route(web::get().to(health::healthz)))
        .service(web::resource("/readyz").route(web::get().to(health::readyz)))
        .default_service(web::to(no_route));
}

async fn no_route() -> Result<HttpResponse, AppError> {
    Err(AppError::NoRoute)
}

async fn method_not_allowed() -> Result<HttpResponse, AppError> {
    Err(AppError::MethodNotAllowed)
}

//! The whole URL map. Anything not listed here is a JSON 404: the edge is not a proxy.

use actix_web::{web, HttpResponse};

use super::{health, previews};
use crate::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/instances/{id}/preview")
            .route(web::get().to(previews::preview))
            .route(web::head().to(previews::preview))
            .default_service(web::to(get_head_only)),
    )
    .service(
        web::resource("/instances/{id}/frames/{frame}/preview")
            .route(web::get().to(previews::preview))
            .route(web::head().to(previews::preview))
            .default_service(web::to(get_head_only)),
    )
    .service(
        web::resource("/instances/{id}/rendered")
            .route(web::get().to(previews::preview))
            .route(web::head().to(previews::preview))
            .default_service(web::to(get_head_only)),
    )
    .service(
        web::resource("/instances/{id}/frames/{frame}/rendered")
            .route(web::get().to(previews::preview))
            .route(web::head().to(previews::preview))
            .default_service(web::to(get_head_only)),
    )
    .service(
        web::resource("/healthz").route(web::get().to(health::healthz)).default_service(web::to(get_only)),
    )
    .service(web::resource("/readyz").route(web::get().to(health::readyz)).default_service(web::to(get_only)))
    .default_service(web::to(no_route));
}

async fn no_route() -> Result<HttpResponse, AppError> {
    Err(AppError::NoRoute)
}

async fn get_head_only() -> Result<HttpResponse, AppError> {
    Err(AppError::MethodNotAllowed("GET, HEAD"))
}

async fn get_only() -> Result<HttpResponse, AppError> {
    Err(AppError::MethodNotAllowed("GET"))
}

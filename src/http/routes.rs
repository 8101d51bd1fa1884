//! The whole URL map. Anything not listed here is a JSON 404: the edge is not a proxy.

use actix_web::{web, HttpResponse};

use super::{auth, health, previews};
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
        web::resource("/auth/sign")
            .route(web::post().to(auth::sign))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/auth/session")
            .route(web::post().to(auth::session))
            .route(web::delete().to(auth::end_session))
            .default_service(web::to(method_not_allowed)),
    )
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

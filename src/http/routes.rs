//! The whole URL map, public and admin. Anything not listed here is a JSON 404: the edge is not a proxy.

use actix_web::dev::Handler;
use actix_web::{web, FromRequest, HttpResponse, Resource, Responder};

use super::{admin, dicomweb, health, previews, purge, studies, tokens, warm};
use crate::error::AppError;

/// A resource answering GET and HEAD with `handler`, and 405 to anything else.
fn get_head<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args> + Clone,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(only("GET, HEAD"))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    let json = web::JsonConfig::default()
        .limit(1 << 20)
        .error_handler(|e, _| AppError::BadParam(format!("request body: {e}")).into());
    cfg.app_data(json)
        // Images, paths as Orthanc's.
        .service(get_head("/instances/{id}/preview", previews::preview))
        .service(get_head("/instances/{id}/frames/{frame}/preview", previews::preview))
        .service(get_head("/instances/{id}/rendered", previews::preview))
        .service(get_head("/instances/{id}/frames/{frame}/rendered", previews::preview))
        .service(get_head("/series/{id}/preview", studies::series_preview))
        // Study grids.
        .service(get_head("/studies/{id}/series", studies::study_series))
        .service(get_head("/studies/{id}/grid", studies::study_grid_page))
        // DICOMweb thumbnails and renderings (viewers).
        .service(get_head("/dicom-web/studies/{study}/series/{series}/thumbnail", dicomweb::image))
        .service(get_head("/dicom-web/studies/{study}/series/{series}/rendered", dicomweb::image))
        .service(get_head(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/thumbnail",
            dicomweb::image,
        ))
        .service(get_head(
            "/dicom-web/studies/{study}/series/{series}/instances/{instance}/rendered",
            dicomweb::image,
        ))
        // Minting session tokens and signed links (scope `mint`).
        .service(
            web::resource("/auth/sign").route(web::post().to(tokens::sign)).default_service(only("POST")),
        )
        .service(
            web::resource("/auth/session")
                .route(web::post().to(tokens::session))
                .route(web::delete().to(tokens::end_session))
                .default_service(only("POST, DELETE")),
        )
        // Warm-up jobs and purges.
        .service(web::resource("/warm").route(web::post().to(warm::start)).default_service(only("POST")))
        .service(
            web::resource("/warm/{job}")
                .route(web::get().to(warm::progress))
                .route(web::delete().to(warm::cancel))
                .default_service(only("GET, DELETE")),
        )
        .service(
            web::resource("/cache/{level:instances|series|studies}/{id}")
                .route(web::delete().to(purge::purge))
                .default_service(only("DELETE")),
        )
        // Probes.
        .service(web::resource("/healthz").route(web::get().to(health::healthz)).default_service(only("GET")))
        .service(web::resource("/readyz").route(web::get().to(health::readyz)).default_service(only("GET")))
        .default_service(web::to(no_route));
}

/// The admin listener (`server.admin_listen`): metrics and probes, nothing that serves images.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(admin::metrics)))
        .service(web::resource("/healthz").route(web::get().to(health::healthz)).default_service(only("GET")))
        .service(web::resource("/readyz").route(web::get().to(health::readyz)).default_service(only("GET")))
        .default_service(web::to(no_route));
}

async fn no_route() -> Result<HttpResponse, AppError> {
    Err(AppError::NoRoute)
}

/// The default service of a resource: 405 with `Allow: methods`.
fn only(methods: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, AppError>(AppError::MethodNotAllowed(methods)) })
}

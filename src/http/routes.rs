//! The whole URL map, public and admin. Anything not listed here is a JSON 404: the edge is not a proxy.

use actix_web::dev::Handler;
use actix_web::{web, FromRequest, HttpResponse, Resource, Responder};

use super::error::AppError;
use super::{admin, dicomweb, health, previews, purge, studies, tokens, warm};

/// Which handlers a route's resource is wired to.
#[derive(Debug, Clone, Copy)]
enum Serve {
    Preview,
    SeriesPreview,
    StudySeries,
    StudyGrid,
    DicomwebImage,
    Sign,
    Session,
    WarmStart,
    WarmJob,
    Purge,
    Healthz,
    Readyz,
}

/// One public route: its path pattern (actix syntax) and the methods it answers, as its 405's
/// `Allow` header names them.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub path: &'static str,
    pub methods: &'static str,
    serve: Serve,
}

const fn route(methods: &'static str, path: &'static str, serve: Serve) -> Route {
    Route { path, methods, serve }
}

const GET_HEAD: &str = "GET, HEAD";

/// The public URL map, registered by [`configure`] in this order; the OpenAPI test reads it too.
pub const ROUTES: &[Route] = &[
    // Images, paths as Orthanc's.
    route(GET_HEAD, "/instances/{id}/preview", Serve::Preview),
    route(GET_HEAD, "/instances/{id}/frames/{frame}/preview", Serve::Preview),
    route(GET_HEAD, "/instances/{id}/rendered", Serve::Preview),
    route(GET_HEAD, "/instances/{id}/frames/{frame}/rendered", Serve::Preview),
    route(GET_HEAD, "/series/{id}/preview", Serve::SeriesPreview),
    // Study grids.
    route(GET_HEAD, "/studies/{id}/grid.json", Serve::StudySeries),
    route(GET_HEAD, "/studies/{id}/grid", Serve::StudyGrid),
    // DICOMweb thumbnails and renderings (viewers): study, series, instance, frame.
    route(GET_HEAD, "/dicom-web/studies/{study}/thumbnail", Serve::DicomwebImage),
    route(GET_HEAD, "/dicom-web/studies/{study}/rendered", Serve::DicomwebImage),
    route(GET_HEAD, "/dicom-web/studies/{study}/series/{series}/thumbnail", Serve::DicomwebImage),
    route(GET_HEAD, "/dicom-web/studies/{study}/series/{series}/rendered", Serve::DicomwebImage),
    route(
        GET_HEAD,
        "/dicom-web/studies/{study}/series/{series}/instances/{instance}/thumbnail",
        Serve::DicomwebImage,
    ),
    route(
        GET_HEAD,
        "/dicom-web/studies/{study}/series/{series}/instances/{instance}/rendered",
        Serve::DicomwebImage,
    ),
    route(
        GET_HEAD,
        "/dicom-web/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/thumbnail",
        Serve::DicomwebImage,
    ),
    route(
        GET_HEAD,
        "/dicom-web/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/rendered",
        Serve::DicomwebImage,
    ),
    // Minting session tokens and signed links (scope `mint`).
    route("POST", "/auth/sign", Serve::Sign),
    route("POST, DELETE", "/auth/session", Serve::Session),
    // Warm-up jobs and purges.
    route("POST", "/warm", Serve::WarmStart),
    route("GET, DELETE", "/warm/{job}", Serve::WarmJob),
    route("DELETE", "/cache/{level:instances|series|studies}/{id}", Serve::Purge),
    // Probes.
    route(GET_HEAD, "/healthz", Serve::Healthz),
    route(GET_HEAD, "/readyz", Serve::Readyz),
];

/// The pattern of the route that matched, on every request it serves (resource data), so the
/// access line, the metrics and delegated decisions need not match the path again:
/// `HttpRequest::match_pattern` runs the whole route table's regexes once more.
#[derive(Debug, Clone, Copy)]
pub struct RoutePattern(pub &'static str);

/// GET and HEAD answered by `handler`.
fn get_head<F, Args>(resource: Resource, handler: F) -> Resource
where
    F: Handler<Args> + Clone,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    resource.route(web::get().to(handler.clone())).route(web::head().to(handler))
}

/// `r`'s resource: its handlers, and 405 with `Allow: methods` to anything else.
fn resource(r: &Route) -> Resource {
    let res = web::resource(r.path).app_data(RoutePattern(r.path));
    let res = match r.serve {
        Serve::Preview => get_head(res, previews::preview),
        Serve::SeriesPreview => get_head(res, studies::series_preview),
        Serve::StudySeries => get_head(res, studies::study_series),
        Serve::StudyGrid => get_head(res, studies::study_grid_page),
        Serve::DicomwebImage => get_head(res, dicomweb::image),
        Serve::Sign => res.route(web::post().to(tokens::sign)),
        Serve::Session => {
            res.route(web::post().to(tokens::session)).route(web::delete().to(tokens::end_session))
        }
        Serve::WarmStart => res.route(web::post().to(warm::start)),
        Serve::WarmJob => res.route(web::get().to(warm::progress)).route(web::delete().to(warm::cancel)),
        Serve::Purge => res.route(web::delete().to(purge::purge)),
        Serve::Healthz => get_head(res, health::healthz),
        Serve::Readyz => get_head(res, health::readyz),
    };
    res.default_service(only(r.methods))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    let json = web::JsonConfig::default()
        .limit(1 << 20)
        .error_handler(|e, _| AppError::BadParam(format!("request body: {e}")).into());
    cfg.app_data(json);
    for r in ROUTES {
        cfg.service(resource(r));
    }
    cfg.default_service(web::to(no_route));
}

/// The admin listener (`server.admin_listen`): metrics and probes, nothing that serves images.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(admin::metrics)))
        .service(get_head(web::resource("/healthz"), health::healthz).default_service(only(GET_HEAD)))
        .service(get_head(web::resource("/readyz"), health::readyz).default_service(only(GET_HEAD)))
        .default_service(web::to(no_route));
}

async fn no_route() -> Result<HttpResponse, AppError> {
    Err(AppError::NoRoute)
}

/// The default service of a resource: 405 with `Allow: methods`.
fn only(methods: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, AppError>(AppError::MethodNotAllowed(methods)) })
}

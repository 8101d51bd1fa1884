//! DICOMweb thumbnails and renderings for viewers (OHIF, Stone): UIDs → Orthanc ids, same cache as native routes.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::extract::{get, output, parse_query, rules};
use super::previews::{image_reply, note_principal};
use crate::auth::{Principal, Resource, Scope};
use crate::catalog::UidKind;
use crate::error::AppError;
use crate::previews::PreviewSpec;
use crate::state::AppState;
use crate::transform::spec::{self, Ask, OutputFormat};

const PARAMS: [&str; 3] = ["viewport", "quality", "accept"];

/// The output format from the `accept` query parameter, else the Accept header: the first of
/// JPEG, PNG, WebP named; JPEG otherwise (the DICOMweb default).
fn format(req: &HttpRequest, query: &[(String, String)]) -> OutputFormat {
    let accept = get(query, "accept")
        .map(str::to_owned)
        .or_else(|| req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).map(str::to_owned))
        .unwrap_or_default();
    for item in accept.split(',') {
        match item.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
            "image/jpeg" => return OutputFormat::Jpeg,
            "image/png" => return OutputFormat::Png,
            "image/webp" => return OutputFormat::Webp,
            _ => {}
        }
    }
    OutputFormat::Jpeg
}

/// `.../thumbnail` and `.../rendered` for a series (its representative instance) or an instance.
pub async fn image(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    note_principal(&req, &principal);
    let info = req.match_info();
    let (study_uid, series_uid) = (info.get("study").unwrap_or(""), info.get("series").unwrap_or(""));
    let instance_uid = info.get("instance");
    let thumbnail = req.path().ends_with("/thumbnail");
    let query = parse_query(req.query_string(), &PARAMS)?;
    let fmt = format(&req, &query);
    let ask = Ask::DicomWeb {
        viewport: get(&query, "viewport"),
        quality: get(&query, "quality"),
        thumbnail,
        format: fmt,
    };
    let (output, _) = output(spec::plan(&ask, &rules(&state))?);
    for uid in [Some(study_uid), Some(series_uid), instance_uid].into_iter().flatten() {
        if !crate::catalog::valid_uid(uid) {
            return Err(AppError::BadId("not a DICOM UID (digits and dots, at most 64 characters)".into()));
        }
    }
    let instance = match instance_uid {
        Some(uid) => {
            let instance = state.catalog.resolve_uid(UidKind::Instance, uid).await?;
            state.auth.authorize(&principal, Scope::Preview, Resource::Instance(&instance)).await?;
            instance
        }
        None => {
            let series = state.catalog.resolve_uid(UidKind::Series, series_uid).await?;
            state.auth.authorize(&principal, Scope::Preview, Resource::Series(&series)).await?;
            state.catalog.representative(&series).await?
        }
    };
    let spec = PreviewSpec { instance, frame: 0, output };
    let served = state.previews.get(&spec, &principal.name).await?;
    let vary = get(&query, "accept").is_none().then_some("Accept");
    Ok(image_reply(&req, &state, &served, vary))
}

//! DICOMweb thumbnails and renderings for viewers (OHIF, Stone): UIDs → Orthanc ids, same cache as native routes.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::AppError;
use super::extract::{get, output, parse_query, rules, Caller};
use super::previews::image_response;
use crate::auth::{Resource, Scope};
use crate::ids::valid_uid;
use crate::model::{ImageFormat, Level};
use crate::previews::PreviewSpec;
use crate::state::AppState;
use crate::transform::spec::{self, Ask};

const PARAMS: [&str; 3] = ["viewport", "quality", "accept"];

/// The output format from the `accept` query parameter, else the Accept header: the first of
/// JPEG, PNG, WebP named; JPEG otherwise (the DICOMweb default).
fn format(req: &HttpRequest, query: &[(String, String)]) -> ImageFormat {
    let accept = get(query, "accept")
        .map(str::to_owned)
        .or_else(|| req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).map(str::to_owned))
        .unwrap_or_default();
    for item in accept.split(',') {
        match item.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
            "image/jpeg" => return ImageFormat::Jpeg,
            "image/png" => return ImageFormat::Png,
            "image/webp" => return ImageFormat::Webp,
            _ => {}
        }
    }
    ImageFormat::Jpeg
}

/// `.../thumbnail` and `.../rendered` for a series (its representative instance) or an instance.
pub async fn image(
    Caller(principal): Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
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
        if !valid_uid(uid) {
            return Err(AppError::BadId("not a DICOM UID (digits and dots, at most 64 characters)".into()));
        }
    }
    // Authorization resolves the UIDs and checks the lineage the path states.
    let resource = Resource::Dicom { study: study_uid, series: series_uid, instance: instance_uid };
    let grant = state.auth.authorize(&principal, Scope::Preview, resource).await?;
    let instance = match grant.target {
        Some((Level::Instance, id)) => id,
        Some((Level::Series, id)) => state.studies.representative(&id).await?,
        _ => return Err(AppError::Internal("DICOMweb target is neither an instance nor a series".into())),
    };
    let spec = PreviewSpec { instance, frame: 0, output };
    let served = state.previews.get(&spec, &grant.client).await?;
    let vary = get(&query, "accept").is_none().then_some("Accept");
    Ok(image_response(&req, &state, &served, vary))
}

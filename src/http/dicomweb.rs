//! DICOMweb thumbnails and renderings for viewers (OHIF, Stone): UIDs → Orthanc ids, same cache as native routes.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::extract::{get, link_allows, parse_query};
use super::previews::{image_reply, note_principal};
use crate::auth::{Principal, Resource, Scope};
use crate::error::AppError;
use crate::ids::{valid_uid, Level};
use crate::previews::{Output, PreviewSpec};
use crate::state::AppState;
use crate::transform::spec::{Fit, OutputFormat, VariantSpec};
use crate::upstream::Rendering;

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

fn viewport(v: &str, max: u32) -> Result<(u32, u32), AppError> {
    let bad =
        || AppError::BadParam(format!("parameter `viewport` must be `width,height`, each from 1 to {max}"));
    let (w, h) = v.split_once(',').ok_or_else(bad)?;
    let dim = |s: &str| s.trim().parse::<u32>().ok().filter(|d| (1..=max).contains(d)).ok_or_else(bad);
    Ok((dim(w)?, dim(h)?))
}

/// `.../thumbnail` and `.../rendered` for a series (its representative instance) or an instance.
pub async fn image(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    note_principal(&req, &principal);
    link_allows(&principal, &req)?;
    let info = req.match_info();
    let (study_uid, series_uid) = (info.get("study").unwrap_or(""), info.get("series").unwrap_or(""));
    let instance_uid = info.get("instance");
    let thumbnail = req.path().ends_with("/thumbnail");
    let query = parse_query(req.query_string(), &PARAMS)?;
    let fmt = format(&req, &query);
    let quality = get(&query, "quality")
        .map(|q| {
            q.parse::<u8>().ok().filter(|q| (1..=100).contains(q)).ok_or_else(|| {
                AppError::BadParam("parameter `quality` must be an integer from 1 to 100".into())
            })
        })
        .transpose()?;
    let size = match get(&query, "viewport") {
        Some(v) => Some(viewport(v, state.limits.max_dimension)?),
        // A thumbnail without a viewport is the grid thumbnail size; a rendering is full size.
        None if thumbnail => {
            let p = state.presets.get(&state.config.grid.thumbnail_preset);
            Some((p.and_then(|p| p.w).unwrap_or(128), p.and_then(|p| p.h).unwrap_or(128)))
        }
        None => None,
    };
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
        Some((Level::Series, id)) => state.catalog.representative(&id).await?,
        _ => return Err(AppError::Internal("DICOMweb target is neither an instance nor a series".into())),
    };
    let variant = VariantSpec {
        w: size.map(|s| s.0),
        h: size.map(|s| s.1),
        fit: Fit::Contain,
        format: fmt,
        q: (fmt != OutputFormat::Png).then(|| quality.unwrap_or(state.limits.default_quality)),
    };
    let spec =
        PreviewSpec { instance, frame: 0, output: Output::Edge { rendering: Rendering::Preview, variant } };
    let served = state.previews.get(&spec, &grant.client).await?;
    let vary = get(&query, "accept").is_none().then_some("Accept");
    Ok(image_reply(&req, &state, &served, vary))
}

#[cfg(test)]
mod tests {
    use super::viewport;

    #[test]
    fn viewports() {
        assert_eq!(viewport("128,128", 2048).unwrap(), (128, 128));
        assert_eq!(viewport(" 64 , 32 ", 2048).unwrap(), (64, 32));
        for bad in ["", "128", "0,5", "5,0", "99999,5", "a,b", "1,2,3"] {
            assert!(viewport(bad, 2048).is_err(), "{bad}");
        }
    }
}

//! DICOMweb thumbnails and renderings for viewers (OHIF, Stone): UIDs → Orthanc ids, the PS3.18
//! rendering of a study's, series' or instance's representative frame, or of one frame.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::accept::rendered_format;
use super::error::AppError;
use super::extract::{get, output, parse_query, rules, Caller};
use super::previews::image_response;
use crate::auth::{Resource, Scope};
use crate::ids::valid_uid;
use crate::model::{ImageFormat, Level};
use crate::previews::PreviewSpec;
use crate::state::AppState;
use crate::transform::spec::{self, Ask};

const PARAMS: [&str; 4] = ["viewport", "window", "quality", "accept"];

/// Largest DICOMweb frame number (1-based), as the native routes' 0-based limit.
const MAX_FRAME: u32 = 100_000;

/// A DICOMweb frame number (1-based, one frame: a rendered resource is one image), 0-based.
fn frame_index(s: &str) -> Result<u32, AppError> {
    let bad = || AppError::BadId(format!("frame must be one frame number from 1 to {MAX_FRAME}"));
    if s.is_empty() || s.len() > 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = s.parse::<u32>().ok().filter(|n| (1..=MAX_FRAME).contains(n)).ok_or_else(bad)?;
    Ok(n - 1)
}

/// `.../rendered` and `.../thumbnail` of a study, a series (their representative instance), an
/// instance (its first frame) or one frame.
pub async fn image(
    Caller(principal): Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let info = req.match_info();
    let study_uid = info.get("study").unwrap_or("");
    let (series_uid, instance_uid) = (info.get("series"), info.get("instance"));
    let frame = info.get("frame").map(frame_index).transpose()?.unwrap_or(0);
    let thumbnail = req.path().ends_with("/thumbnail");
    let query = parse_query(req.query_string(), &PARAMS)?;
    // The `accept` parameter (PS3.18 8.3.3.1) overrides the header; the bytes vary with the
    // header only when it decided.
    let (accept, vary) = match get(&query, "accept") {
        Some(a) => (a, None),
        None => {
            let h = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
            (h, Some("Accept"))
        }
    };
    let format = rendered_format(accept);
    let ask = Ask::DicomWeb {
        viewport: get(&query, "viewport"),
        window: get(&query, "window"),
        quality: get(&query, "quality"),
        thumbnail,
        format: format.unwrap_or(ImageFormat::Jpeg),
    };
    let (output, _) = output(spec::plan(&ask, &rules(&state))?);
    for uid in [Some(study_uid), series_uid, instance_uid].into_iter().flatten() {
        if !valid_uid(uid) {
            return Err(AppError::BadId("not a DICOM UID (digits and dots, at most 64 characters)".into()));
        }
    }
    // Bad parameters and ids are a 400 whatever the format; then no acceptable format is a 406.
    if format.is_none() {
        return Err(AppError::NotAcceptable(
            "no acceptable format: this route renders image/jpeg, image/png and image/webp".into(),
        ));
    }
    // Authorization resolves the UIDs and checks the lineage the path states.
    let resource = Resource::Dicom { study: study_uid, series: series_uid, instance: instance_uid };
    let grant = state.auth.authorize(&principal, Scope::Preview, resource).await?;
    let instance = match grant.target {
        Some((Level::Instance, id)) => id,
        Some((Level::Series, id)) => state.studies.representative(&id).await?,
        Some((Level::Study, id)) => state.studies.study_representative(&id).await?,
        None => return Err(AppError::Internal("a DICOMweb grant without a target".into())),
    };
    let spec = PreviewSpec { instance, frame, output };
    let served = state.previews.get(&spec, &grant.client).await?;
    Ok(image_response(&req, &state, &served, vary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_numbers_are_one_based_and_single() {
        assert_eq!(frame_index("1").unwrap(), 0);
        assert_eq!(frame_index("12").unwrap(), 11);
        assert_eq!(frame_index("100000").unwrap(), 99_999);
        for bad in ["0", "", "1,2", "-1", "1.0", "100001", "abc", "0000001"] {
            assert!(frame_index(bad).is_err(), "{bad}");
        }
    }
}

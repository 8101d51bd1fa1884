//! `AppError`: every failure a client can see, its stable code, and the one mapping to HTTP.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::auth::AuthError;
use crate::dicom::DicomError;
use crate::transform::TransformError;
use crate::upstream::UpstreamError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadId(String),
    #[error("{0}")]
    BadParam(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// The edge's own decoding of a stored file (`render.mode`).
    #[error(transparent)]
    Dicom(#[from] DicomError),
    #[error("no such route")]
    NoRoute,
    #[error("{0}")]
    NotFound(&'static str),
    /// Carries the methods the route does allow (the `Allow` header).
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// No format the route renders is acceptable to the client (`Accept`, or DICOMweb `accept`).
    #[error("{0}")]
    NotAcceptable(String),
    #[error("this origin is neither the edge's own nor in cors.allowed_origins")]
    OriginNotAllowed,
    #[error("waited too long for the same image being fetched by another request")]
    FlightTimeout,
    #[error("the edge is shutting down; retry on another replica")]
    ShuttingDown,
    #[error("request URL longer than {0} bytes")]
    UriTooLong(usize),
    #[error("request headers larger than {0} bytes in all")]
    HeadersTooLarge(usize),
    /// `client` (a principal's name) has used its miss budget; see `budget`.
    #[error("too many new images for this client; cached ones are still served")]
    TooManyMisses { client: std::sync::Arc<str>, retry_after_s: u64 },
    /// A request on the peer listener without the cluster secret.
    #[error("peer requests need the cluster secret")]
    PeerSecret,
    /// A purge some edges of the cluster could not be asked to make: what the others dropped,
    /// and who was not reached.
    #[error("the purge could not reach every edge of the cluster: {}", .0.unreachable.join(", "))]
    PurgeIncomplete(Box<crate::previews::PurgeReport>),
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
    /// A partial purge's totals and the edges it reached or not.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    purge: Option<&'a crate::previews::PurgeReport>,
}

/// A variant parameter problem (it names the parameter) is a 400 `bad-param`.
impl From<crate::transform::spec::ParamError> for AppError {
    fn from(e: crate::transform::spec::ParamError) -> Self {
        AppError::BadParam(e.to_string())
    }
}

/// The same answers as before the service had its own error: 404/415/5xx from Orthanc, 429 with
/// Retry-After for a spent miss budget, 504 for a flight waited on too long.
impl From<crate::previews::PreviewError> for AppError {
    fn from(e: crate::previews::PreviewError) -> Self {
        use crate::previews::PreviewError as P;
        match e {
            P::Upstream(e) => AppError::Upstream(e),
            P::Transform(e) => AppError::Transform(e),
            P::Dicom(e) => AppError::Dicom(e),
            P::TooManyMisses { client, retry_after_s } => AppError::TooManyMisses { client, retry_after_s },
            P::FlightTimeout => AppError::FlightTimeout,
            P::Cache(e) => AppError::Internal(e.to_string()),
            P::Internal(why) => AppError::Internal(why),
        }
    }
}

/// A refused warm-up request is the client's 400; a job's own failures keep their codes.
impl From<crate::warm::WarmError> for AppError {
    fn from(e: crate::warm::WarmError) -> Self {
        use crate::warm::WarmError as W;
        match e {
            W::BadParam(why) => AppError::BadParam(why),
            W::BadId(why) => AppError::BadId(why),
            W::Upstream(e) => AppError::Upstream(e),
            W::Preview(e) => e.into(),
        }
    }
}

/// A mint request's bad list or lifetime is the client's 400; a token that could not be signed is ours.
impl From<crate::auth::MintError> for AppError {
    fn from(e: crate::auth::MintError) -> Self {
        use crate::auth::MintError as M;
        match e {
            M::BadParam(why) => AppError::BadParam(why),
            M::BadId(why) => AppError::BadId(why),
            e @ M::Sign { .. } => AppError::Internal(e.to_string()),
        }
    }
}

/// A cache failure a client sees (a purge that could not finish) is an internal error.
impl From<crate::cache::CacheError> for AppError {
    fn from(e: crate::cache::CacheError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl AppError {
    /// The stable, documented code clients can switch on.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadId(_) => "bad-id",
            AppError::BadParam(_) => "bad-param",
            AppError::Auth(e) => e.code(),
            AppError::Upstream(e) => e.code(),
            AppError::Transform(e) => e.code(),
            AppError::Dicom(e) => e.code(),
            AppError::NoRoute => "no-route",
            AppError::NotFound(_) => "not-found",
            AppError::MethodNotAllowed(_) => "method-not-allowed",
            AppError::OriginNotAllowed => "origin-not-allowed",
            AppError::NotAcceptable(_) => "not-acceptable",
            AppError::FlightTimeout => "upstream-timeout",
            AppError::ShuttingDown => "shutting-down",
            AppError::UriTooLong(_) => "uri-too-long",
            AppError::HeadersTooLarge(_) => "headers-too-large",
            AppError::TooManyMisses { .. } => "too-many-misses",
            AppError::PeerSecret => "peer-secret",
            AppError::PurgeIncomplete(_) => "purge-incomplete",
            AppError::Internal(_) => "internal",
        }
    }

    /// `Retry-After` seconds: on every 503 and 504, and on 502s that a retry may cure.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::Upstream(e) | AppError::Auth(AuthError::Upstream(e)) => e.retry_after(),
            AppError::Auth(AuthError::RateLimited { retry_after_s })
            | AppError::TooManyMisses { retry_after_s, .. } => Some(*retry_after_s),
            AppError::FlightTimeout
            | AppError::Transform(TransformError::Overloaded)
            | AppError::Auth(AuthError::Unavailable)
            | AppError::ShuttingDown => Some(1),
            _ => None,
        }
    }

    fn message(&self) -> String {
        match self {
            // Internal details go to the log, not to the client.
            AppError::Internal(_) | AppError::Transform(TransformError::Encode(_)) => {
                "internal error".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadId(_) | AppError::BadParam(_) => StatusCode::BAD_REQUEST,
            AppError::Auth(e) => match e {
                AuthError::Missing | AuthError::Invalid | AuthError::Expired => StatusCode::UNAUTHORIZED,
                AuthError::Forbidden { .. }
                | AuthError::OutOfScope
                | AuthError::Denied
                | AuthError::LinkMismatch(_) => StatusCode::FORBIDDEN,
                AuthError::NotFound => StatusCode::NOT_FOUND,
                AuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                AuthError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                AuthError::MintingDisabled => StatusCode::NOT_FOUND,
                AuthError::Upstream(u) => upstream_status(u),
            },
            AppError::Transform(e) => match e {
                TransformError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
                TransformError::SourceTooLarge { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                TransformError::BadSource(_) => StatusCode::BAD_GATEWAY,
                TransformError::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            AppError::Dicom(e) => match e {
                DicomError::NoPixelData { .. } | DicomError::Unsupported(_) => {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                }
                DicomError::FrameNotFound { .. } => StatusCode::NOT_FOUND,
                DicomError::TooLarge { .. } | DicomError::Corrupt(_) => StatusCode::UNPROCESSABLE_ENTITY,
            },
            AppError::Upstream(e) => upstream_status(e),
            AppError::NoRoute | AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::OriginNotAllowed => StatusCode::FORBIDDEN,
            AppError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            AppError::FlightTimeout => StatusCode::GATEWAY_TIMEOUT,
            AppError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            AppError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            AppError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            AppError::TooManyMisses { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::PeerSecret => StatusCode::UNAUTHORIZED,
            AppError::PurgeIncomplete(_) => StatusCode::BAD_GATEWAY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() && !matches!(self, AppError::ShuttingDown) {
            tracing::warn!(code = self.code(), error = %self, "request failed");
        }
        let mut resp = HttpResponse::build(status);
        resp.insert_header((header::CACHE_CONTROL, "no-store"));
        if let AppError::MethodNotAllowed(allow) = self {
            resp.insert_header((header::ALLOW, *allow));
        }
        if let Some(secs) = self.retry_after() {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if matches!(self, AppError::ShuttingDown) {
            // A keep-alive client must reconnect, and so reach a replica that is not stopping.
            resp.force_close();
        }
        // Deliberately no WWW-Authenticate on 401: that header makes browsers prompt.
        let purge = match self {
            AppError::PurgeIncomplete(report) => Some(&**report),
            _ => None,
        };
        resp.json(ErrorBody { code: self.code(), message: self.message(), purge })
    }
}

fn upstream_status(e: &UpstreamError) -> StatusCode {
    match e {
        UpstreamError::NotFound => StatusCode::NOT_FOUND,
        UpstreamError::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        UpstreamError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        UpstreamError::TooLarge { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        UpstreamError::CircuitOpen(_) | UpstreamError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        UpstreamError::Auth(_)
        | UpstreamError::Unavailable(_)
        | UpstreamError::BadResponse(_)
        | UpstreamError::Status(_) => StatusCode::BAD_GATEWAY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::previews::PreviewError;
    use crate::warm::WarmError;

    /// A warm-up job reports a failure with the code a client would have got for it.
    #[test]
    fn service_codes_are_the_http_codes() {
        let previews = [
            PreviewError::Upstream(UpstreamError::NotFound),
            PreviewError::Transform(TransformError::Overloaded),
            PreviewError::TooManyMisses { client: "c".into(), retry_after_s: 3 },
            PreviewError::FlightTimeout,
            PreviewError::Internal("x".into()),
        ];
        for e in previews {
            assert_eq!(AppError::from(e.clone()).code(), e.code(), "{e:?}");
            let w = WarmError::from(e);
            assert_eq!(AppError::from(w.clone()).code(), w.code(), "{w:?}");
        }
        for w in [
            WarmError::BadParam("p".into()),
            WarmError::BadId("i".into()),
            WarmError::Upstream(UpstreamError::Busy),
        ] {
            assert_eq!(AppError::from(w.clone()).code(), w.code(), "{w:?}");
        }
    }
}

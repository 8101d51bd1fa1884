//! Everything that speaks to Orthanc, and the errors it can answer with.

pub mod model;
mod orthanc;

pub use orthanc::{ImageFormat, OrthancClient, Priority, Rendering, UpstreamImage, Window};

/// A failed Orthanc request, already classified for the client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("no such image in Orthanc")]
    NotFound,
    #[error("Orthanc cannot decode this image's transfer syntax")]
    Unsupported,
    #[error("Orthanc refused the edge's service credentials")]
    Auth(u16),
    #[error("Orthanc did not answer in time")]
    Timeout,
    #[error("Orthanc is unreachable")]
    Unavailable(String),
    #[error("Orthanc sent an invalid image")]
    BadResponse(String),
    #[error("Orthanc answered with an unexpected status")]
    Status(u16),
}

impl UpstreamError {
    pub fn code(&self) -> &'static str {
        match self {
            UpstreamError::NotFound => "not-found",
            UpstreamError::Unsupported => "unsupported-image",
            UpstreamError::Auth(_) => "upstream-auth",
            UpstreamError::Timeout => "upstream-timeout",
            UpstreamError::Unavailable(_) => "upstream-unavailable",
            UpstreamError::BadResponse(_) => "upstream-bad-response",
            UpstreamError::Status(_) => "upstream-error",
        }
    }
}

//! Everything that speaks to Orthanc, and the errors it can answer with.

mod breaker;
pub mod catalog;
mod gate;
mod metadata;
pub mod model;
mod orthanc;

pub use breaker::{Breaker, BreakerStats, CircuitState};
pub use orthanc::{OrthancClient, Priority, UpstreamImage, UpstreamStats};

/// A failed Orthanc request, already classified for the client.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
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
    #[error("Orthanc is failing; the edge is not sending it requests until it recovers")]
    CircuitOpen(u64),
    #[error("too many requests are already waiting for Orthanc")]
    Busy,
    /// A body over `orthanc.max_body_bytes`: a property of the instance, not a failing Orthanc.
    #[error("the image is larger than the edge accepts from Orthanc")]
    TooLarge { limit: u64 },
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
            UpstreamError::CircuitOpen(_) => "upstream-circuit-open",
            UpstreamError::Busy => "upstream-busy",
            UpstreamError::TooLarge { .. } => "source-too-large",
        }
    }

    /// Does this failure say Orthanc is down or sick (and count towards opening the circuit)?
    pub fn is_upstream_failure(&self) -> bool {
        match self {
            UpstreamError::Timeout | UpstreamError::Unavailable(_) => true,
            UpstreamError::Status(s) => *s >= 500,
            _ => false,
        }
    }

    /// Seconds a client should wait before trying again, for errors where retrying makes sense.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            UpstreamError::CircuitOpen(s) => Some((*s).max(1)),
            UpstreamError::Timeout | UpstreamError::Unavailable(_) | UpstreamError::Busy => Some(1),
            UpstreamError::Status(s) if *s >= 500 => Some(1),
            _ => None,
        }
    }
}

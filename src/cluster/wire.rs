//! What peers send each other on `/peer/v1/*`: request bodies, answers, and errors that cross
//! the wire as what they were (a 404 stays `NotFound`, a spent budget stays `TooManyMisses`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::dicom::{DicomError, NO_PIXEL_KINDS};
use crate::ids::OrthancId;
use crate::model::Rendering;
use crate::previews::{PreviewError, PreviewSpec};
use crate::transform::{TransformError, VariantSpec};
use crate::upstream::{Priority, UpstreamError};

/// The header every peer request carries the cluster secret in.
pub const SECRET_HEADER: &str = "x-orthanc-edge-peer";
/// On an image answer: `hit` when the owner had it, `miss` when it made it for this request.
pub const OWNER_CACHE_HEADER: &str = "x-owner-cache";
/// The status of an owner's error answer (a [`WireError`] as JSON); any other non-200 means the
/// peer itself failed (wrong secret, another version), and the asker serves on its own.
pub const ERROR_STATUS: u16 = 422;

/// `POST /peer/v1/image`: one image, made or served by its owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRequest {
    pub spec: PreviewSpec,
    /// The principal whose miss budget a miss is charged to; `None` for tools.
    pub client: Option<String>,
    pub priority: Priority,
}

/// `POST /peer/v1/warm`: every variant of an instance's first frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarmRequest {
    pub instance: OrthancId,
    pub rendering: Rendering,
    pub variants: Vec<VariantSpec>,
    pub priority: Priority,
}

/// One variant's outcome on the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warmed {
    /// Made now (false: it was already cached).
    pub made: bool,
    pub bytes: u64,
}

/// `POST /peer/v1/purge`: drop these instances (all tiers) and forget these resources' listings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeRequest {
    pub instances: Vec<OrthancId>,
    pub forget: Vec<OrthancId>,
}

/// What one edge dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    pub entries: u64,
    pub bytes: u64,
}

/// `POST /peer/v1/position`: the /changes sequence the follower has handled.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PositionRequest {
    pub seq: u64,
}

/// A [`PreviewError`] as it crosses the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WireError {
    Upstream(UpstreamError),
    Transform(TransformError),
    Dicom(WireDicom),
    TooManyMisses { client: String, retry_after_s: u64 },
    FlightTimeout,
    Internal(String),
}

/// A [`DicomError`] on the wire (its `kind` as text).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WireDicom {
    NoPixelData { kind: String },
    FrameNotFound { frame: u32, frames: u32 },
    TooLarge { width: u64, height: u64 },
    Unsupported(String),
    Corrupt(String),
}

impl From<DicomError> for WireDicom {
    fn from(e: DicomError) -> Self {
        match e {
            DicomError::NoPixelData { kind } => WireDicom::NoPixelData { kind: kind.to_owned() },
            DicomError::FrameNotFound { frame, frames } => WireDicom::FrameNotFound { frame, frames },
            DicomError::TooLarge { width, height } => WireDicom::TooLarge { width, height },
            DicomError::Unsupported(why) => WireDicom::Unsupported(why),
            DicomError::Corrupt(why) => WireDicom::Corrupt(why),
        }
    }
}

impl From<WireDicom> for DicomError {
    fn from(e: WireDicom) -> Self {
        match e {
            // One of the kinds this edge knows (`other` if a newer edge sent another).
            WireDicom::NoPixelData { kind } => DicomError::NoPixelData {
                kind: NO_PIXEL_KINDS.iter().find(|k| **k == kind).copied().unwrap_or("other"),
            },
            WireDicom::FrameNotFound { frame, frames } => DicomError::FrameNotFound { frame, frames },
            WireDicom::TooLarge { width, height } => DicomError::TooLarge { width, height },
            WireDicom::Unsupported(why) => DicomError::Unsupported(why),
            WireDicom::Corrupt(why) => DicomError::Corrupt(why),
        }
    }
}

impl From<PreviewError> for WireError {
    fn from(e: PreviewError) -> Self {
        match e {
            PreviewError::Upstream(e) => WireError::Upstream(e),
            PreviewError::Transform(e) => WireError::Transform(e),
            PreviewError::Dicom(e) => WireError::Dicom(e.into()),
            PreviewError::TooManyMisses { client, retry_after_s } => {
                WireError::TooManyMisses { client: client.to_string(), retry_after_s }
            }
            PreviewError::FlightTimeout => WireError::FlightTimeout,
            PreviewError::Cache(e) => WireError::Internal(e.to_string()),
            PreviewError::Internal(why) => WireError::Internal(why),
        }
    }
}

impl From<WireError> for PreviewError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Upstream(e) => PreviewError::Upstream(e),
            WireError::Transform(e) => PreviewError::Transform(e),
            WireError::Dicom(e) => PreviewError::Dicom(e.into()),
            WireError::TooManyMisses { client, retry_after_s } => {
                PreviewError::TooManyMisses { client: Arc::from(client), retry_after_s }
            }
            WireError::FlightTimeout => PreviewError::FlightTimeout,
            WireError::Internal(why) => PreviewError::Internal(format!("on the owner: {why}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(e: PreviewError) -> PreviewError {
        let json = serde_json::to_string(&WireError::from(e)).unwrap();
        serde_json::from_str::<WireError>(&json).unwrap().into()
    }

    #[test]
    fn errors_keep_their_kind_and_code_across_the_wire() {
        let cases = [
            PreviewError::Upstream(UpstreamError::NotFound),
            PreviewError::Upstream(UpstreamError::Unsupported),
            PreviewError::Upstream(UpstreamError::CircuitOpen(7)),
            PreviewError::Upstream(UpstreamError::TooLarge { limit: 9 }),
            PreviewError::Transform(TransformError::Overloaded),
            PreviewError::Dicom(DicomError::NoPixelData { kind: "sr" }),
            PreviewError::Dicom(DicomError::Corrupt("truncated".into())),
            PreviewError::TooManyMisses { client: "viewer".into(), retry_after_s: 4 },
            PreviewError::FlightTimeout,
        ];
        for e in cases {
            let back = round_trip(e.clone());
            assert_eq!(back.code(), e.code(), "{e:?} -> {back:?}");
            assert_eq!(format!("{back:?}"), format!("{e:?}"));
        }
        let back = round_trip(PreviewError::Dicom(DicomError::NoPixelData { kind: "pdf" }));
        assert!(matches!(back, PreviewError::Dicom(DicomError::NoPixelData { kind: "pdf" })));
    }

    #[test]
    fn an_unknown_no_pixel_kind_reads_as_other() {
        let e: WireError = serde_json::from_str(r#"{"Dicom":{"NoPixelData":{"kind":"hologram"}}}"#).unwrap();
        assert!(matches!(
            PreviewError::from(e),
            PreviewError::Dicom(DicomError::NoPixelData { kind: "other" })
        ));
    }

    #[test]
    fn a_spec_with_a_malformed_id_is_refused() {
        let bad = r#"{"spec":{"instance":"../../tools","frame":0,"output":{"Orthanc":{"format":"png","quality":null}}},"client":null,"priority":"Interactive"}"#;
        assert!(serde_json::from_str::<ImageRequest>(bad).is_err());
    }
}

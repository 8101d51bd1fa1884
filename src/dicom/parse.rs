//! A Part 10 file to a dicom-rs data set, inflating a deflated data set under a byte cap.

use std::io::Read;

use dicom_dictionary_std::uids;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTable;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::lengths::{self, Encoding};
use super::{DicomError, Limits};

/// A parsed file: the data set, and the transfer syntax its pixel data is in.
pub(super) struct Parsed {
    /// The transfer syntax UID, trimmed.
    pub ts: String,
    object: Object,
}

enum Object {
    /// As read: what dicom-pixeldata decodes from.
    File(Box<DefaultDicomObject>),
    /// A data set without meta group, or a deflated one inflated: its pixel data is native.
    Bare(Box<InMemDicomObject>),
}

impl Parsed {
    pub fn dataset(&self) -> &InMemDicomObject {
        match &self.object {
            Object::File(f) => f,
            Object::Bare(d) => d,
        }
    }

    /// The file object, for dicom-pixeldata's codecs (`None` for a bare data set, whose pixel
    /// data is native).
    pub fn file(&self) -> Option<&DefaultDicomObject> {
        match &self.object {
            Object::File(f) => Some(f),
            Object::Bare(_) => None,
        }
    }
}

fn corrupt(e: impl std::fmt::Display) -> DicomError {
    DicomError::Corrupt(format!("not a readable DICOM file: {e}"))
}

/// Parse `file` (with or without its 128-byte preamble).
pub(super) fn parse(file: &[u8], limits: &Limits) -> Result<Parsed, DicomError> {
    let body = if file.len() >= 132 && &file[128..132] == b"DICM" { &file[128..] } else { file };
    let Some(after_magic) = body.strip_prefix(b"DICM") else {
        // No file meta group (Orthanc keeps such files as they came): a bare little endian
        // data set, explicit VR if the first element has a VR.
        let explicit = file.get(4..6).is_some_and(|vr| vr.iter().all(u8::is_ascii_uppercase));
        let ts = if explicit { uids::EXPLICIT_VR_LITTLE_ENDIAN } else { uids::IMPLICIT_VR_LITTLE_ENDIAN };
        return bare(file, ts, Encoding { explicit_vr: explicit, big_endian: false });
    };
    lengths::check_meta(after_magic)?;
    let mut rest = body;
    let meta = FileMetaTable::from_reader(&mut rest).map_err(corrupt)?;
    let ts = meta.transfer_syntax().to_string();
    if ts == uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN {
        // dicom-rs would inflate without bound: a deflate bomb stops at the cap here.
        let cap = limits.max_decoded_bytes;
        let mut inflated = Vec::new();
        flate2::read::DeflateDecoder::new(rest)
            .take(cap.saturating_add(1))
            .read_to_end(&mut inflated)
            .map_err(corrupt)?;
        if inflated.len() as u64 > cap {
            return Err(DicomError::TooLarge { width: 0, height: 0 });
        }
        let explicit = Encoding { explicit_vr: true, big_endian: false };
        let mut parsed = bare(&inflated, uids::EXPLICIT_VR_LITTLE_ENDIAN, explicit)?;
        parsed.ts = ts;
        return Ok(parsed);
    }
    if TransferSyntaxRegistry.get(&ts).is_none() {
        return Err(DicomError::Unsupported(format!("transfer syntax {ts}")));
    }
    let encoding = Encoding {
        explicit_vr: ts != uids::IMPLICIT_VR_LITTLE_ENDIAN,
        big_endian: ts == "1.2.840.10008.1.2.2",
    };
    lengths::check(rest, encoding)?;
    let object =
        OpenFileOptions::new().read_preamble(ReadPreamble::Never).from_reader(body).map_err(corrupt)?;
    Ok(Parsed { ts, object: Object::File(Box::new(object)) })
}

/// A data set without file meta group in transfer syntax `ts`, lengths checked.
fn bare(data: &[u8], ts: &str, encoding: Encoding) -> Result<Parsed, DicomError> {
    lengths::check(data, encoding)?;
    let syntax = TransferSyntaxRegistry
        .get(ts)
        .ok_or_else(|| DicomError::Unsupported(format!("transfer syntax {ts}")))?;
    let dataset = InMemDicomObject::read_dataset_with_ts(data, syntax).map_err(corrupt)?;
    Ok(Parsed { ts: ts.to_string(), object: Object::Bare(Box::new(dataset)) })
}

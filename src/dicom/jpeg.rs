//! JPEG (baseline, extended 8-bit, lossless) with jpeg-decoder, colour converted the way
//! Orthanc's DCMTK decoder does it: as the JFIF or Adobe marker says, and without either, from
//! YCbCr only when the DICOM photometric interpretation is not RGB (jpeg-decoder alone would
//! convert a 3-component stream without markers).

use std::io::Cursor;

use dicom_encoding::adapters::PixelDataObject;
use dicom_object::DefaultDicomObject;
use jpeg_decoder::{ColorTransform, Decoder};

use super::codestream;
use super::header::{ImageInfo, Photometric};
use super::DicomError;

/// JPEG transfer syntaxes: baseline (.50), extended (.51), lossless (.57, .70).
pub(super) fn handles(ts: &str) -> bool {
    matches!(
        ts,
        "1.2.840.10008.1.2.4.50"
            | "1.2.840.10008.1.2.4.51"
            | "1.2.840.10008.1.2.4.57"
            | "1.2.840.10008.1.2.4.70"
    )
}

/// Decode frame `frame` to native little-endian interleaved samples (RGB for colour).
pub(super) fn decode(file: &DefaultDicomObject, info: &ImageInfo, frame: u32) -> Result<Vec<u8>, DicomError> {
    let data = file
        .frame_pixel_data(frame)
        .ok_or_else(|| DicomError::Corrupt("no JPEG data for the frame".into()))?;
    let expected =
        info.width as usize * info.height as usize * info.samples as usize * info.bytes_per_sample();
    let mut decoder = Decoder::new(Cursor::new(&*data));
    decoder.set_max_decoding_buffer_size(expected);
    if info.samples == 3 && info.photometric == Photometric::Rgb && !codestream::jpeg_has_color_marker(&data)
    {
        decoder.set_color_transform(ColorTransform::None);
    }
    let pixels = decoder.decode().map_err(|e| DicomError::Corrupt(format!("JPEG: {e}")))?;
    if pixels.len() < expected {
        return Err(DicomError::Corrupt("JPEG: fewer samples than the header says".into()));
    }
    Ok(pixels)
}

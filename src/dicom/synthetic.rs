//! Small DICOM files built in memory, for tests (unit tests, and the integration tests through
//! `test-hooks`): an image header, native or encapsulated pixel data, an RLE encoder.

#![allow(clippy::unwrap_used)]

use dicom_core::value::{PixelFragmentSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

/// A data element of an in-memory data set.
pub type Elem = DataElement<InMemDicomObject>;

/// A US element.
pub fn us(tag: Tag, v: u16) -> Elem {
    DataElement::new(tag, VR::US, PrimitiveValue::from(v))
}

/// A text element (`\`-separated values for several).
pub fn text(tag: Tag, vr: VR, v: &str) -> Elem {
    DataElement::new(tag, vr, PrimitiveValue::from(v))
}

/// The header of a `cols`×`rows` image of `spp` samples of `bits` (allocated, stored, high bit).
pub fn header(rows: u16, cols: u16, spp: u16, bits: (u16, u16, u16), signed: bool, pi: &str) -> Vec<Elem> {
    vec![
        text(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.7"),
        text(tags::SOP_INSTANCE_UID, VR::UI, &format!("2.25.{}", uuid::Uuid::new_v4().as_u128())),
        us(tags::SAMPLES_PER_PIXEL, spp),
        text(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, pi),
        us(tags::ROWS, rows),
        us(tags::COLUMNS, cols),
        us(tags::BITS_ALLOCATED, bits.0),
        us(tags::BITS_STORED, bits.1),
        us(tags::HIGH_BIT, bits.2),
        us(tags::PIXEL_REPRESENTATION, u16::from(signed)),
    ]
}

/// A Part 10 file (preamble, meta group) of `elems` in transfer syntax `ts`.
pub fn file(ts: &str, elems: Vec<Elem>) -> Vec<u8> {
    let obj = InMemDicomObject::from_element_iter(elems);
    let file = obj.with_meta(FileMetaTableBuilder::new().transfer_syntax(ts)).unwrap();
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}

/// `elems` plus native Pixel Data, explicit VR little endian.
pub fn native(mut elems: Vec<Elem>, vr: VR, pixels: PrimitiveValue) -> Vec<u8> {
    elems.push(DataElement::new(tags::PIXEL_DATA, vr, pixels));
    file(uids::EXPLICIT_VR_LITTLE_ENDIAN, elems)
}

/// `elems` plus encapsulated Pixel Data (empty offset table, one fragment per frame).
pub fn encapsulated(ts: &str, mut elems: Vec<Elem>, fragments: Vec<Vec<u8>>) -> Vec<u8> {
    let seq = PixelFragmentSequence::new(vec![], fragments);
    elems.push(DataElement::new(tags::PIXEL_DATA, VR::OB, Value::PixelSequence(seq)));
    file(ts, elems)
}

/// One RLE Lossless fragment of native little-endian interleaved samples (`samples` per pixel,
/// `bytes` each): a segment per byte, most significant first, in literal runs.
pub fn rle_fragment(data: &[u8], samples: usize, bytes: usize) -> Vec<u8> {
    let segments = samples * bytes;
    let mut encoded: Vec<Vec<u8>> = Vec::new();
    for s in 0..segments {
        let (sample, byte) = (s / bytes, bytes - 1 - s % bytes);
        let plane: Vec<u8> = data.chunks_exact(segments).map(|px| px[sample * bytes + byte]).collect();
        let mut seg = Vec::new();
        for run in plane.chunks(128) {
            seg.push((run.len() - 1) as u8);
            seg.extend_from_slice(run);
        }
        if seg.len() % 2 == 1 {
            seg.push(0x80); // a no-op run keeps segments even
        }
        encoded.push(seg);
    }
    let mut fragment = vec![0u8; 64];
    fragment[..4].copy_from_slice(&(segments as u32).to_le_bytes());
    let mut offset = 64u32;
    for (i, seg) in encoded.iter().enumerate() {
        fragment[4 + 4 * i..8 + 4 * i].copy_from_slice(&offset.to_le_bytes());
        offset += seg.len() as u32;
    }
    encoded.iter().for_each(|s| fragment.extend_from_slice(s));
    fragment
}

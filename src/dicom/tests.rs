//! `render_frame` on small DICOM files built in memory: decoding paths, limits, hostile input.

use dicom_core::header::Header;
use dicom_core::value::PrimitiveValue;
use dicom_core::{dicom_value, DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use super::synthetic::{self, file, text, us, Elem};
use super::*;
use crate::model::Window;

const LIMITS: Limits = Limits { max_pixels: 1 << 20, max_decoded_bytes: 16 << 20 };

/// The header of a `cols`×`rows` image, high bit = stored − 1.
fn header(rows: u16, cols: u16, spp: u16, bits: (u16, u16), signed: bool, pi: &str) -> Vec<Elem> {
    synthetic::header(rows, cols, spp, (bits.0, bits.1, bits.1 - 1), signed, pi)
}

fn native(elems: Vec<Elem>, pixels: PrimitiveValue, vr: VR) -> Vec<u8> {
    synthetic::native(elems, vr, pixels)
}

fn gray16(rows: u16, cols: u16, signed: bool, values: Vec<u16>, extra: Vec<Elem>) -> Vec<u8> {
    let mut h = header(rows, cols, 1, (16, 16), signed, "MONOCHROME2");
    h.extend(extra);
    native(h, PrimitiveValue::U16(values.into()), VR::OW)
}

fn render(file: &[u8], frame: u32, r: Rendering) -> Result<Pixels, DicomError> {
    render_frame(file, frame, &r, &LIMITS)
}

const PREVIEW: Rendering = Rendering::Preview;
const RENDERED: Rendering = Rendering::Rendered { window: None };

#[test]
fn eight_bit_preview_is_stretched_and_monochrome1_inverted() {
    let f = native(
        header(1, 4, 1, (8, 8), false, "MONOCHROME2"),
        PrimitiveValue::U8(vec![10, 20, 30, 110].into()),
        VR::OB,
    );
    let p = render(&f, 0, PREVIEW).unwrap();
    assert_eq!((p.width, p.height, p.channels), (4, 1, 1));
    // 255/100 = 2.55: 25.5 → 26 (half away from zero), 51, 255.
    assert_eq!(p.data, vec![0, 26, 51, 255]);
    let f1 = native(
        header(1, 4, 1, (8, 8), false, "MONOCHROME1"),
        PrimitiveValue::U8(vec![10, 20, 30, 110].into()),
        VR::OB,
    );
    assert_eq!(render(&f1, 0, PREVIEW).unwrap().data, vec![255, 229, 204, 0]);
}

#[test]
fn sixteen_bit_signed_with_rescale_and_window() {
    let extra = vec![
        text(tags::RESCALE_INTERCEPT, VR::DS, "-1024"),
        text(tags::RESCALE_SLOPE, VR::DS, "1"),
        text(tags::WINDOW_CENTER, VR::DS, "40\\400"),
        text(tags::WINDOW_WIDTH, VR::DS, "400\\2000"),
    ];
    let values: Vec<u16> = [-2000i16, 0, 1064, 3000].iter().map(|v| *v as u16).collect();
    let f = gray16(2, 2, true, values, extra);
    let p = render(&f, 0, PREVIEW).unwrap();
    assert_eq!(p.data, vec![0, 102, 156, 255]);
    // The first window: 40/400 over (x − 1024).
    let r = render(&f, 0, RENDERED).unwrap();
    assert_eq!(r.data, vec![0, 0, 127, 255]);
    let w = Rendering::Rendered { window: Some(Window { center: 0.0, width: 4000.0 }) };
    assert_eq!(render(&f, 0, w).unwrap().data, vec![0, 62, 130, 253]);
}

#[test]
fn default_window_is_the_stored_range() {
    let f = gray16(1, 3, false, vec![0, 32768, 65535], vec![]);
    assert_eq!(render(&f, 0, RENDERED).unwrap().data, vec![0, 127, 254]);
}

#[test]
fn multi_frame_picks_the_frame_and_refuses_a_missing_one() {
    let mut h = header(1, 2, 1, (8, 8), false, "MONOCHROME2");
    h.push(text(tags::NUMBER_OF_FRAMES, VR::IS, "3"));
    let f = native(h, PrimitiveValue::U8(vec![0, 1, 5, 5, 9, 0].into()), VR::OB);
    assert_eq!(render(&f, 0, PREVIEW).unwrap().data, vec![0, 255]);
    assert_eq!(render(&f, 1, PREVIEW).unwrap().data, vec![0, 0]);
    assert_eq!(render(&f, 2, PREVIEW).unwrap().data, vec![255, 0]);
    assert_eq!(render(&f, 3, PREVIEW), Err(DicomError::FrameNotFound { frame: 3, frames: 3 }));
}

#[test]
fn a_header_that_lies_about_frames_is_corrupt() {
    let mut h = header(2, 2, 1, (8, 8), false, "MONOCHROME2");
    h.push(text(tags::NUMBER_OF_FRAMES, VR::IS, "1000"));
    let f = native(h, PrimitiveValue::U8(vec![1, 2, 3, 4].into()), VR::OB);
    assert_eq!(render(&f, 0, PREVIEW).unwrap_err().code(), "undecodable");
}

#[test]
fn rgb_interleaved_and_planar() {
    let rgb = vec![1u8, 2, 3, 4, 5, 6];
    let f = native(header(1, 2, 3, (8, 8), false, "RGB"), PrimitiveValue::U8(rgb.clone().into()), VR::OB);
    let p = render(&f, 0, PREVIEW).unwrap();
    assert_eq!((p.channels, p.data), (3, rgb.clone()));
    let mut h = header(1, 2, 3, (8, 8), false, "RGB");
    h.push(us(tags::PLANAR_CONFIGURATION, 1));
    let f = native(h, PrimitiveValue::U8(vec![1, 4, 2, 5, 3, 6].into()), VR::OB);
    assert_eq!(render(&f, 0, RENDERED).unwrap().data, rgb);
}

#[test]
fn ybr_full_becomes_rgb() {
    let f = native(
        header(1, 2, 3, (8, 8), false, "YBR_FULL"),
        PrimitiveValue::U8(vec![128, 128, 128, 76, 85, 255].into()),
        VR::OB,
    );
    let p = render(&f, 0, PREVIEW).unwrap();
    assert_eq!(&p.data[..3], &[128, 128, 128]);
    // (76, 85, 255) is close to pure red.
    assert!(p.data[3] > 250 && p.data[4] < 5 && p.data[5] < 5, "{:?}", p.data);
}

#[test]
fn palette_colour_through_the_tables() {
    let mut h = header(1, 3, 1, (8, 8), false, "PALETTE COLOR");
    for (d, t, high) in [
        (
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            0xFF00u16,
        ),
        (
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            0x8000,
        ),
        (
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            0x0100,
        ),
    ] {
        h.push(DataElement::new(d, VR::US, dicom_value!(U16, [256, 0, 16])));
        let table: Vec<u16> = (0..256u32).map(|i| if i == 7 { high } else { 0 }).collect();
        h.push(DataElement::new(t, VR::OW, PrimitiveValue::U16(table.into())));
    }
    let f = native(h, PrimitiveValue::U8(vec![0, 7, 9].into()), VR::OB);
    let p = render(&f, 0, PREVIEW).unwrap();
    assert_eq!(p.data, vec![0, 0, 0, 255, 128, 1, 0, 0, 0]);
}

#[test]
fn one_bit_float_and_thirty_two_bit() {
    let f = native(
        header(1, 8, 1, (1, 1), false, "MONOCHROME2"),
        PrimitiveValue::U8(vec![0b0000_0101].into()),
        VR::OB,
    );
    assert_eq!(render(&f, 0, PREVIEW).unwrap().data, vec![255, 0, 255, 0, 0, 0, 0, 0]);

    let mut h = header(1, 3, 1, (32, 32), false, "MONOCHROME2");
    h.retain(|e| {
        e.tag() != tags::BITS_STORED && e.tag() != tags::HIGH_BIT && e.tag() != tags::PIXEL_REPRESENTATION
    });
    h.push(DataElement::new(
        tags::FLOAT_PIXEL_DATA,
        VR::OF,
        PrimitiveValue::F32(vec![-1.0, 0.0, 1.0].into()),
    ));
    let f = file(uids::EXPLICIT_VR_LITTLE_ENDIAN, h);
    assert_eq!(render(&f, 0, PREVIEW).unwrap().data, vec![0, 128, 255]);

    let h = header(1, 2, 1, (32, 32), false, "MONOCHROME2");
    let f = native(h, PrimitiveValue::U32(vec![0, 4_000_000_000].into()), VR::OW);
    assert_eq!(render(&f, 0, PREVIEW).unwrap().data, vec![0, 255]);
}

#[test]
fn big_endian_and_deflate() {
    let h = header(1, 2, 1, (16, 16), false, "MONOCHROME2");
    let mut elems = h.clone();
    elems.push(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(vec![0, 1000].into())));
    for ts in
        ["1.2.840.10008.1.2.2", uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, uids::IMPLICIT_VR_LITTLE_ENDIAN]
    {
        let f = file(ts, elems.clone());
        assert_eq!(render(&f, 0, PREVIEW).unwrap().data, vec![0, 255], "{ts}");
    }
}

#[test]
fn big_endian_32_bit_samples_in_ow() {
    // pydicom's rtdose_expb: 32-bit samples stored as OW words, big endian.
    let h = header(1, 3, 1, (32, 32), false, "MONOCHROME2");
    let words = |v: u32| [(v >> 16) as u16, v as u16];
    let samples = [1_249_000u32, 795_000, 1_254_000];
    let mut elems = h.clone();
    let ow: Vec<u16> = samples.iter().flat_map(|&v| words(v)).collect();
    elems.push(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(ow.into())));
    let big = render(&file("1.2.840.10008.1.2.2", elems), 0, PREVIEW).unwrap();
    let little =
        render(&native(h, PrimitiveValue::U32(samples.to_vec().into()), VR::OW), 0, PREVIEW).unwrap();
    assert_eq!(big.data, little.data);
    assert_eq!(little.data, vec![252, 0, 255]);
}

fn rle_file(rows: u16, cols: u16, values: &[u8]) -> Vec<u8> {
    let h = header(rows, cols, 1, (8, 8), false, "MONOCHROME2");
    synthetic::encapsulated(uids::RLE_LOSSLESS, h, vec![synthetic::rle_fragment(values, 1, 1)])
}

#[test]
fn rle_decodes() {
    let values: Vec<u8> = (0..200u32).map(|i| (i % 101) as u8).collect();
    let f = rle_file(10, 20, &values);
    let p = render(&f, 0, PREVIEW).unwrap();
    let expected: Vec<u8> = values.iter().map(|v| (f32::from(*v) * 2.55).round() as u8).collect();
    assert_eq!(p.data, expected);
}

#[test]
fn limits_are_checked_from_the_header() {
    let f = gray16(4, 4, false, vec![0; 16], vec![]);
    let small = Limits { max_pixels: 15, max_decoded_bytes: 1 << 20 };
    assert_eq!(render_frame(&f, 0, &PREVIEW, &small), Err(DicomError::TooLarge { width: 4, height: 4 }));
    let few_bytes = Limits { max_pixels: 100, max_decoded_bytes: 31 };
    assert_eq!(render_frame(&f, 0, &PREVIEW, &few_bytes).unwrap_err().code(), "source-too-large");
}

#[test]
fn a_j2k_claiming_a_huge_image_is_refused() {
    let mut claim = super::codestream::tests::j2k_header(60000, 60000);
    claim.extend_from_slice(&[0; 64]);
    let h = header(64, 64, 1, (8, 8), false, "MONOCHROME2");
    let f = synthetic::encapsulated(uids::JPEG2000_LOSSLESS, h, vec![claim]);
    assert_eq!(render(&f, 0, PREVIEW).unwrap_err().code(), "undecodable");
}

#[test]
fn a_deflate_bomb_stops_at_the_cap() {
    let h = header(1024, 1024, 1, (8, 8), false, "MONOCHROME2");
    let f = native(h, PrimitiveValue::U8(vec![0u8; 1 << 20].into()), VR::OB);
    let f = {
        // Re-encode as deflated: same data set, deflate TS.
        let obj = dicom_object::OpenFileOptions::new().from_reader(&f[128..]).unwrap().into_inner();
        let file = obj
            .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN))
            .unwrap();
        let mut out = Vec::new();
        file.write_all(&mut out).unwrap();
        out
    };
    assert!(f.len() < 100_000, "deflated to {}", f.len());
    let tight = Limits { max_pixels: 1 << 21, max_decoded_bytes: 100_000 };
    assert_eq!(render_frame(&f, 0, &PREVIEW, &tight).unwrap_err().code(), "source-too-large");
    assert!(render_frame(&f, 0, &PREVIEW, &LIMITS).is_ok());
}

#[test]
fn no_pixel_data_has_a_kind() {
    let sr = file(
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
        vec![
            text(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.88.22"),
            text(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3"),
            text(tags::MODALITY, VR::CS, "SR"),
        ],
    );
    assert_eq!(render(&sr, 0, PREVIEW), Err(DicomError::NoPixelData { kind: "sr" }));
    let pdf = file(
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
        vec![
            text(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.104.1"),
            text(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3"),
        ],
    );
    assert_eq!(render(&pdf, 0, PREVIEW).unwrap_err().code(), "no-pixel-data");
}

#[test]
fn truncated_and_garbage_input_never_panics() {
    let f = gray16(8, 8, true, (0..64).collect(), vec![text(tags::WINDOW_CENTER, VR::DS, "10")]);
    let rle = rle_file(10, 20, &[7; 200]);
    for source in [&f, &rle] {
        for cut in (0..source.len()).step_by(13) {
            let _ = render(&source[..cut], 0, PREVIEW);
        }
        // Flip bytes one at a time through the header and pixel data.
        for at in (0..source.len()).step_by(5) {
            let mut bad = source.clone();
            bad[at] ^= 0xA5;
            let _ = render(&bad, 0, RENDERED);
        }
    }
    let mut seed = 0x1234_5678u32;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 16) as u8
        })
        .collect();
    assert!(render(&garbage, 0, PREVIEW).is_err());
    assert!(render(b"", 0, PREVIEW).is_err());
}

/// The committed JPEG 2000 fixtures (tests/data/dicom/make.py) decode to the pixels they encode.
#[test]
fn jpeg2000_lossless_decodes_exactly() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dicom");
    let (h, w) = (48usize, 64usize);
    let gray = std::fs::read(format!("{dir}/j2k_signed16.dcm")).unwrap();
    let values: Vec<u16> =
        (0..h * w).map(|i| (((i % w) * 37 + (i / w) * 101) % 4096) as i16 - 2048).map(|v| v as u16).collect();
    let native = gray16(h as u16, w as u16, true, values, vec![]);
    for r in [PREVIEW, RENDERED] {
        assert_eq!(render(&gray, 0, r).unwrap(), render(&native, 0, r).unwrap());
    }
    let rgb = std::fs::read(format!("{dir}/j2k_rgb8.dcm")).unwrap();
    let p = render(&rgb, 0, PREVIEW).unwrap();
    let expected: Vec<u8> = (0..h * w)
        .flat_map(|i| (0..3).map(move |c| ((i % w) * 3 + c * 50 + (i / w) * (c + 1)) as u8))
        .collect();
    assert_eq!((p.channels, p.data), (3, expected));
}

/// A JPEG 2000 frame decoded at a lower resolution level is the whole picture, each side halved
/// per level (rounded up), close to the full decode averaged over the same blocks; no level is
/// deeper than the codestream has, and every other codec ignores the request.
#[test]
fn jpeg2000_decodes_at_lower_resolution_levels() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dicom");
    let file = std::fs::read(format!("{dir}/j2k_gradient16.dcm")).unwrap();
    let (w, h) = (256usize, 200usize);
    let fragment = &file[file.windows(4).position(|b| b == [0xFF, 0x4F, 0xFF, 0x51]).unwrap()..];
    let levels = codestream::j2k_levels(fragment).unwrap();
    assert_eq!(levels, 5, "the encoder's default");
    for r in [PREVIEW, RENDERED] {
        let full = render(&file, 0, r).unwrap();
        for k in 1..=levels + 2 {
            let got = render_frame_at(&file, 0, &r, &LIMITS, |fw, fh| {
                assert_eq!((fw, fh), (w as u32, h as u32));
                k
            })
            .unwrap();
            let k = k.min(levels) as usize;
            let step = 1 << k;
            assert_eq!(got.full, (w as u32, h as u32));
            assert_eq!(
                (got.pixels.width as usize, got.pixels.height as usize),
                (w.div_ceil(step), h.div_ceil(step))
            );
            // Each pixel against the full decode at its block's top-left pixel: a level's
            // samples sit there (JPEG 2000 keeps the even samples at each level), and on a ramp
            // the 5/3 wavelet's low-pass keeps them, but at the far edges.
            let mut diff = 0.0;
            for (i, &v) in got.pixels.data.iter().enumerate() {
                let (x, y) = (i % got.pixels.width as usize * step, i / got.pixels.width as usize * step);
                diff += (f64::from(v) - f64::from(full.data[y * w + x])).abs();
            }
            let mean = diff / got.pixels.data.len() as f64;
            // (The preview's full-range stretch is over the level's own range.)
            if r == RENDERED {
                assert!(mean < 1.0, "level {k}: mean difference {mean:.2} grey levels");
            }
        }
    }
    // Native data has no levels: always full size.
    let native = gray16(4, 4, false, (0..16).collect(), vec![]);
    let got = render_frame_at(&native, 0, &PREVIEW, &LIMITS, |_, _| 2).unwrap();
    assert_eq!((got.pixels.width, got.pixels.height, got.full), (4, 4, (4, 4)));
}

/// JPEG baseline, grey and colour (JFIF, YCbCr), decodes close to what was encoded.
#[test]
fn jpeg_baseline_decodes() {
    let (w, h) = (40u16, 24u16);
    let gray: Vec<u8> = (0..w as usize * h as usize).map(|i| (i % 40 * 6) as u8).collect();
    let rgb: Vec<u8> = gray.iter().flat_map(|&v| [v, 255 - v, 128]).collect();
    for (pixels, spp, pi, color) in [
        (&gray, 1, "MONOCHROME2", jpeg_encoder::ColorType::Luma),
        (&rgb, 3, "YBR_FULL_422", jpeg_encoder::ColorType::Rgb),
    ] {
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 100).encode(pixels, w, h, color).unwrap();
        if jpeg.len() % 2 == 1 {
            jpeg.push(0);
        }
        let f = synthetic::encapsulated(
            uids::JPEG_BASELINE8_BIT,
            header(h, w, spp, (8, 8), false, pi),
            vec![jpeg],
        );
        let p = render(&f, 0, RENDERED).unwrap();
        assert_eq!(p.channels, spp as u8);
        let worst =
            p.data.iter().zip(pixels.iter()).map(|(a, b)| (i16::from(*a) - i16::from(*b)).abs()).max();
        assert!(worst.unwrap() <= 4, "{pi}: off by {worst:?}");
    }
}

/// Without top-level tags, the frame's functional groups give the rescale and the window
/// (`GetRescale`/`GetDefaultWindowing` since Orthanc 1.9.7).
#[test]
fn per_frame_functional_groups_rescale_and_window() {
    use dicom_core::value::DataSetSequence;
    use dicom_core::Length;
    let sequence = |tag, items: Vec<InMemDicomObject>| {
        DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
    };
    let frame = |slope: &str, center: &str| {
        InMemDicomObject::from_element_iter([
            sequence(
                tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
                vec![InMemDicomObject::from_element_iter([
                    text(tags::RESCALE_INTERCEPT, VR::DS, "0"),
                    text(tags::RESCALE_SLOPE, VR::DS, slope),
                ])],
            ),
            sequence(
                tags::FRAME_VOILUT_SEQUENCE,
                vec![InMemDicomObject::from_element_iter([
                    text(tags::WINDOW_CENTER, VR::DS, center),
                    text(tags::WINDOW_WIDTH, VR::DS, "100"),
                ])],
            ),
        ])
    };
    let mut h = header(1, 3, 1, (16, 16), false, "MONOCHROME2");
    h.push(text(tags::NUMBER_OF_FRAMES, VR::IS, "2"));
    h.push(sequence(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, vec![frame("1", "50"), frame("2", "50")]));
    let f = native(h, PrimitiveValue::U16(vec![0, 50, 100, 0, 25, 50].into()), VR::OW);
    assert_eq!(render(&f, 0, RENDERED).unwrap().data, vec![0, 127, 255]);
    assert_eq!(render(&f, 1, RENDERED).unwrap().data, vec![0, 127, 255]);
}

#[test]
fn dicomweb_reads_its_pipeline_from_the_data_set() {
    use dicom_core::value::DataSetSequence;
    let dw = Rendering::Dicomweb { window: None, region: None };
    // The instance's window with its VOI LUT Function, after the rescale:
    // 255 / (1 + e^(-4 (m - 40) / 400)) at m = -3024, -1024, 40, 1976 (in float, 1 + 4e-9 is 1).
    let values: Vec<u16> = [-2000i16, 0, 1064, 3000].iter().map(|v| *v as u16).collect();
    let sigmoid = vec![
        text(tags::RESCALE_INTERCEPT, VR::DS, "-1024"),
        text(tags::RESCALE_SLOPE, VR::DS, "1"),
        text(tags::WINDOW_CENTER, VR::DS, "40"),
        text(tags::WINDOW_WIDTH, VR::DS, "400"),
        text(tags::VOILUT_FUNCTION, VR::CS, "SIGMOID"),
    ];
    // 127.5 at the center rounds to 128.
    assert_eq!(render(&gray16(2, 2, true, values, sigmoid), 0, dw).unwrap().data, vec![0, 0, 128, 255]);
    // A Modality LUT Sequence replaces the rescale; no window: the range of its output.
    let lut = InMemDicomObject::from_element_iter([
        DataElement::new(tags::LUT_DESCRIPTOR, VR::US, PrimitiveValue::U16(vec![4, 0, 8].into())),
        DataElement::new(tags::LUT_DATA, VR::US, PrimitiveValue::U16(vec![0, 100, 150, 200].into())),
    ]);
    let modality = vec![
        text(tags::RESCALE_INTERCEPT, VR::DS, "-1024"),
        text(tags::RESCALE_SLOPE, VR::DS, "1"),
        DataElement::new(tags::MODALITY_LUT_SEQUENCE, VR::SQ, DataSetSequence::from(vec![lut])),
    ];
    let f = gray16(2, 2, false, vec![0, 1, 2, 3], modality);
    assert_eq!(render(&f, 0, dw).unwrap().data, vec![0, 128, 191, 255]);
    // A window given in the request wins; the viewport's region is cut first, then flipped.
    let window =
        crate::model::VoiWindow { center: 100.0, width: 101.0, function: crate::model::VoiFunction::Linear };
    let region = crate::model::Region { x: 1, w: Some(2), flip_x: true, ..Default::default() };
    let p = render(&f, 0, Rendering::Dicomweb { window: Some(window), region: Some(region) }).unwrap();
    // m = 100, 150 (row 0), 200 (row 1) ... cut to x 1..2: [100] / [200]; linear c=100 w=101
    // gives 128.775 at 100.
    assert_eq!((p.width, p.height, p.data), (1, 2, vec![129, 255]));
    // The entry the edge caches gives the same pixels back.
    let frame = read_frame(&f, 0, &LIMITS).unwrap();
    let back = Frame::from_bytes(&frame.to_bytes(), LIMITS.max_pixels).unwrap();
    assert_eq!(back.render(Some(window), Some(region)).data, vec![129, 255]);
}

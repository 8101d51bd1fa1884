//! `orthanc_edge::dicom::render_frame` against the real Orthanc 1.10.1: for every instance
//! Orthanc renders, the edge's pixels from `/instances/{id}/file` equal Orthanc's PAM of
//! `/frames/{n}/preview` and `/frames/{n}/rendered` (with and without a window), byte for byte.
//!
//! Instances: the manifest's, and ones built here (8/16-bit, signed, shifted, MONOCHROME1/2,
//! RGB interleaved and planar, rescale, windows, multi-frame, RLE), uploaded to their own
//! patient one at a time and deleted at once. Needs ORTHANC_EDGE_IT_* (skipped without, unless required).

use std::time::Duration;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use orthanc_edge::dicom::synthetic::{self, text, us, Elem};
use orthanc_edge::dicom::{render_frame, DicomError, Limits};
use orthanc_edge::model::{Rendering, Window};
use orthanc_edge::transform::Pixels;

use crate::support::RealOrthanc;

const PAM: &str = "image/x-portable-arbitrarymap";
const LIMITS: Limits = Limits { max_pixels: 50_000_000, max_decoded_bytes: 1 << 30 };

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().no_gzip().timeout(Duration::from_secs(60)).build().unwrap()
}

/// An instance uploaded by a test, deleted when dropped (passed or not): each lives about a
/// second, less than Orthanc's StableAge (2 s), so the /changes follower tests never see a
/// stable study of ours.
struct Uploaded<'a> {
    r: &'a RealOrthanc,
    id: String,
}

impl<'a> Uploaded<'a> {
    fn new(r: &'a RealOrthanc, file: Vec<u8>) -> Self {
        let resp = http()
            .post(format!("{}/instances", r.url))
            .basic_auth(&r.user, Some(&r.password))
            .header("Content-Type", "application/dicom")
            .body(file)
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "upload: {}", resp.status());
        let v: serde_json::Value = resp.json().unwrap();
        Self { r, id: v["ID"].as_str().unwrap().to_owned() }
    }
}

impl Drop for Uploaded<'_> {
    fn drop(&mut self) {
        let url = format!("{}/instances/{}", self.r.url, self.id);
        let _ = http().delete(url).basic_auth(&self.r.user, Some(&self.r.password)).send();
    }
}

/// Orthanc's PAM, parsed with the edge's own PAM reader.
fn orthanc_pam(body: &[u8]) -> Pixels {
    Pixels::from_pam(body, u64::MAX).unwrap()
}

/// Compare the edge with Orthanc on one instance and frame, for `/preview`, `/rendered` and a
/// `/rendered` with an explicit window: equal, or no sample more than `tolerance` apart (lossy
/// JPEG: jpeg-decoder is not libjpeg). Returns how many renderings Orthanc answered.
fn compare(r: &RealOrthanc, name: &str, id: &str, frame: u32, tolerance: u8) -> usize {
    let (status, file) = r.direct_blocking(&format!("/instances/{id}/file"), "application/dicom");
    assert_eq!(status, 200, "{name}: /file");
    let window = Window { center: 300.0, width: 700.0 };
    let cases = [
        ("preview", Rendering::Preview, String::new()),
        ("rendered", Rendering::Rendered { window: None }, String::new()),
        (
            "rendered",
            Rendering::Rendered { window: Some(window) },
            format!("?window-center={}&window-width={}", window.center, window.width),
        ),
    ];
    let mut answered = 0;
    for (route, rendering, query) in cases {
        let (status, body) =
            r.direct_blocking(&format!("/instances/{id}/frames/{frame}/{route}{query}"), PAM);
        let edge = render_frame(&file, frame, &rendering, &LIMITS);
        if status == 200 {
            answered += 1;
            let want = orthanc_pam(&body);
            let got = edge.unwrap_or_else(|e| {
                panic!("{name} frame {frame} {route}{query}: Orthanc renders it, the edge: {e}")
            });
            assert_eq!(
                (got.width, got.height, got.channels),
                (want.width, want.height, want.channels),
                "{name} frame {frame} {route}{query}: geometry"
            );
            let worst = got.data.iter().zip(&want.data).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
            if worst > tolerance {
                let diff = got.data.iter().zip(&want.data).filter(|(a, b)| a != b).count();
                let first = got.data.iter().zip(&want.data).position(|(a, b)| a != b);
                panic!(
                    "{name} frame {frame} {route}{query}: {diff} of {} samples differ (first at {first:?}), by up to {worst}",
                    got.data.len()
                );
            }
        } else {
            // Orthanc cannot: the edge renders it or says why, it never panics.
            eprintln!(
                "{name} frame {frame} {route}{query}: Orthanc {status}, edge {:?}",
                edge.as_ref().map(|p| (p.width, p.height))
            );
            if let Err(e) = edge {
                assert!(!matches!(e, DicomError::FrameNotFound { .. }), "{name}: {e}");
            }
        }
    }
    answered
}

#[test]
fn manifest_instances_render_as_orthanc_does() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let instances = r.manifest["instances"].as_object().unwrap().clone();
    let mut answered = 0;
    for (name, facts) in &instances {
        let id = facts["instance"].as_str().unwrap();
        let frames = facts["frames"].as_u64().unwrap_or(1) as u32;
        for frame in [0, frames - 1] {
            answered += compare(&r, name, id, frame, 0);
        }
    }
    assert!(answered > 0, "Orthanc rendered none of the manifest's instances");
}

fn uid() -> String {
    format!("2.25.{}", uuid::Uuid::new_v4().as_u128())
}

/// An image's header in study `study` (its own patient, series).
fn header(
    study: &str,
    rows: u16,
    cols: u16,
    spp: u16,
    bits: (u16, u16, u16),
    signed: bool,
    pi: &str,
) -> Vec<Elem> {
    let mut h = synthetic::header(rows, cols, spp, bits, signed, pi);
    h.extend([
        text(tags::PATIENT_ID, VR::LO, "EDGE-DICOM-REAL"),
        text(tags::STUDY_INSTANCE_UID, VR::UI, study),
        text(tags::SERIES_INSTANCE_UID, VR::UI, &uid()),
        text(tags::MODALITY, VR::CS, "OT"),
    ]);
    h
}

fn with_pixels(elems: Vec<Elem>, vr: VR, pixels: PrimitiveValue) -> Vec<u8> {
    synthetic::native(elems, vr, pixels)
}

/// A deterministic pattern of `n` values spread over `lo..=hi`.
fn pattern(n: usize, lo: i64, hi: i64) -> Vec<i64> {
    (0..n).map(|i| lo + ((i as i64 * 7919 + (i as i64 / 13) * 104_729) % (hi - lo + 1))).collect()
}

fn rle_file(elems: Vec<Elem>, data: &[u8], samples: usize, bytes: usize) -> Vec<u8> {
    synthetic::encapsulated(uids::RLE_LOSSLESS, elems, vec![synthetic::rle_fragment(data, samples, bytes)])
}

fn u16s(v: &[i64]) -> Vec<u16> {
    v.iter().map(|x| *x as u16).collect()
}

fn le(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The instances built here: name, file, frames.
fn generated(study: &str) -> Vec<(&'static str, Vec<u8>, u32)> {
    let (rows, cols) = (37u16, 53u16);
    let n = rows as usize * cols as usize;
    let h = |spp, bits, signed, pi| header(study, rows, cols, spp, bits, signed, pi);
    let eight: Vec<u8> = pattern(n, 3, 250).iter().map(|v| *v as u8).collect();
    let twelve = u16s(&pattern(n, 0, 4095));
    let signed = u16s(&pattern(n, -1200, 2800));
    let mut out = vec![
        (
            "mono2_8",
            with_pixels(
                h(1, (8, 8, 7), false, "MONOCHROME2"),
                VR::OB,
                PrimitiveValue::U8(eight.clone().into()),
            ),
            1,
        ),
        (
            "mono1_8",
            with_pixels(
                h(1, (8, 8, 7), false, "MONOCHROME1"),
                VR::OB,
                PrimitiveValue::U8(eight.clone().into()),
            ),
            1,
        ),
        (
            "mono2_12",
            with_pixels(
                h(1, (16, 12, 11), false, "MONOCHROME2"),
                VR::OW,
                PrimitiveValue::U16(twelve.clone().into()),
            ),
            1,
        ),
        (
            "mono1_16",
            with_pixels(
                h(1, (16, 16, 15), false, "MONOCHROME1"),
                VR::OW,
                PrimitiveValue::U16(u16s(&pattern(n, 100, 60000)).into()),
            ),
            1,
        ),
    ];
    // A shifted 12-bit image (high bit 13): Orthanc shifts it right by 2.
    let shifted: Vec<u16> = twelve.iter().map(|v| v << 2).collect();
    out.push((
        "mono2_12_shifted",
        with_pixels(h(1, (16, 12, 13), false, "MONOCHROME2"), VR::OW, PrimitiveValue::U16(shifted.into())),
        1,
    ));
    // Signed CT with a rescale and two windows (the first counts).
    let mut ct = h(1, (16, 16, 15), true, "MONOCHROME2");
    ct.extend([
        text(tags::RESCALE_INTERCEPT, VR::DS, "-1024"),
        text(tags::RESCALE_SLOPE, VR::DS, "1"),
        text(tags::WINDOW_CENTER, VR::DS, "40\\300"),
        text(tags::WINDOW_WIDTH, VR::DS, "400\\1500"),
    ]);
    out.push(("ct_signed", with_pixels(ct, VR::OW, PrimitiveValue::U16(signed.clone().into())), 1));
    // Signed 12 bits stored, high bit 11, and a fractional slope.
    let mut s12 = h(1, (16, 12, 11), true, "MONOCHROME2");
    s12.extend([text(tags::RESCALE_INTERCEPT, VR::DS, "10.5"), text(tags::RESCALE_SLOPE, VR::DS, "0.25")]);
    out.push((
        "signed_12",
        with_pixels(s12, VR::OW, PrimitiveValue::U16(u16s(&pattern(n, -2048, 2047)).into())),
        1,
    ));
    // Signed 12 bits with high bit 13: Orthanc's slow path, masked and sign-extended.
    let signed_shifted: Vec<u16> =
        pattern(n, -2048, 2047).iter().map(|v| ((*v as u16) << 2) | 0x8001).collect();
    out.push((
        "signed_12_shifted",
        with_pixels(
            h(1, (16, 12, 13), true, "MONOCHROME2"),
            VR::OW,
            PrimitiveValue::U16(signed_shifted.into()),
        ),
        1,
    ));
    // A window narrower than 1, and a slope Orthanc raises to 0.0001.
    let mut narrow = h(1, (16, 16, 15), false, "MONOCHROME2");
    narrow.extend([
        text(tags::WINDOW_CENTER, VR::DS, "2000.25"),
        text(tags::WINDOW_WIDTH, VR::DS, "0.5"),
        text(tags::RESCALE_SLOPE, VR::DS, "0.00001"),
        text(tags::RESCALE_INTERCEPT, VR::DS, "0"),
    ]);
    out.push(("narrow_window", with_pixels(narrow, VR::OW, PrimitiveValue::U16(twelve.clone().into())), 1));
    // RGB, interleaved and planar.
    let rgb: Vec<u8> = pattern(n * 3, 0, 255).iter().map(|v| *v as u8).collect();
    let mut hi = h(3, (8, 8, 7), false, "RGB");
    hi.push(us(tags::PLANAR_CONFIGURATION, 0));
    out.push(("rgb", with_pixels(hi, VR::OB, PrimitiveValue::U8(rgb.clone().into())), 1));
    let planar: Vec<u8> =
        (0..3).flat_map(|c| rgb.iter().skip(c).step_by(3).copied().collect::<Vec<_>>()).collect();
    let mut hp = h(3, (8, 8, 7), false, "RGB");
    hp.push(us(tags::PLANAR_CONFIGURATION, 1));
    out.push(("rgb_planar", with_pixels(hp, VR::OB, PrimitiveValue::U8(planar.into())), 1));
    // 8-bit palette colour through 256-entry 16-bit tables (an even pixel count: Orthanc wants
    // the Pixel Data length, padded to even, to be rows × columns).
    let mut pal = header(study, rows + 1, cols, 1, (8, 8, 7), false, "PALETTE COLOR");
    for (c, (descriptor, data)) in [
        (tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR, tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA),
        (tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR, tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA),
        (tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR, tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA),
    ]
    .into_iter()
    .enumerate()
    {
        pal.push(DataElement::new(descriptor, VR::US, PrimitiveValue::U16(vec![256, 0, 16].into())));
        let table: Vec<u16> = (0..256u32).map(|i| ((i * (c as u32 + 3) * 97) % 65536) as u16).collect();
        pal.push(DataElement::new(data, VR::OW, PrimitiveValue::U16(table.into())));
    }
    let indices: Vec<u8> = pattern(n + cols as usize, 0, 255).iter().map(|v| *v as u8).collect();
    out.push(("palette_8", with_pixels(pal, VR::OB, PrimitiveValue::U8(indices.into())), 1));
    // Three frames of 16-bit.
    let mut mf = h(1, (16, 16, 15), false, "MONOCHROME2");
    mf.push(text(tags::NUMBER_OF_FRAMES, VR::IS, "3"));
    let frames: Vec<u16> = (0..3).flat_map(|f| u16s(&pattern(n, 50 * f, 1000 + 20_000 * f))).collect();
    out.push(("multiframe", with_pixels(mf, VR::OW, PrimitiveValue::U16(frames.into())), 3));
    // RLE: 8-bit, 16-bit signed, RGB.
    out.push(("rle_8", rle_file(h(1, (8, 8, 7), false, "MONOCHROME2"), &eight, 1, 1), 1));
    out.push(("rle_16_signed", rle_file(h(1, (16, 16, 15), true, "MONOCHROME2"), &le(&signed), 1, 2), 1));
    let mut hr = h(3, (8, 8, 7), false, "RGB");
    hr.push(us(tags::PLANAR_CONFIGURATION, 0));
    out.push(("rle_rgb", rle_file(hr, &rgb, 3, 1), 1));
    out
}

#[test]
fn generated_instances_render_as_orthanc_does() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let study = uid();
    let mut cases: Vec<_> =
        generated(&study).into_iter().map(|(name, bytes, frames)| (name, bytes, frames, 0)).collect();
    cases.extend(jpeg_cases(&study));
    for (name, bytes, frames, tolerance) in cases {
        let instance = Uploaded::new(&r, bytes);
        for frame in 0..frames {
            let answered = compare(&r, name, &instance.id, frame, tolerance);
            assert_eq!(answered, 3, "{name} frame {frame}: Orthanc renders all of these");
        }
    }
}

/// `file` compressed by DCMTK's `dcmcjpeg` with `option` (DCMTK is installed with Orthanc by
/// scripts/ci/setup-deps.sh).
fn dcmcjpeg(option: &str, file: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("in.dcm"), dir.path().join("out.dcm"));
    std::fs::write(&src, file).unwrap();
    let out = std::process::Command::new("dcmcjpeg").arg(option).arg(&src).arg(&dst).output();
    let out = out.unwrap_or_else(|e| panic!("dcmcjpeg: {e} (is DCMTK installed?)"));
    assert!(out.status.success(), "dcmcjpeg {option}: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(dst).unwrap()
}

/// JPEG lossless (exact) and baseline (within 3 grey levels, 4 in colour) of generated instances: name,
/// file, frames, tolerance.
fn jpeg_cases(study: &str) -> Vec<(&'static str, Vec<u8>, u32, u8)> {
    let all = generated(study);
    let source = |name: &str| all.iter().find(|c| c.0 == name).map(|c| c.1.clone()).unwrap();
    vec![
        ("jpeg_lossless_ct", dcmcjpeg("+e1", &source("ct_signed")), 1, 0),
        ("jpeg_lossless_12", dcmcjpeg("+e1", &source("mono2_12")), 1, 0),
        ("jpeg_lossless_rgb", dcmcjpeg("+e1", &source("rgb")), 1, 0),
        ("jpeg_baseline_8", dcmcjpeg("+eb", &source("mono2_8")), 1, 3),
        ("jpeg_baseline_rgb", dcmcjpeg("+eb", &source("rgb")), 1, 4),
    ]
}

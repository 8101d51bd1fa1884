//! The edge's own decoding against a fake Orthanc that refuses to render (415) and serves a file:
//! placeholders for instances without pixels, damaged files, requests counted.

#![allow(clippy::unwrap_used)]

use crate::support::*;
use dicom_core::{PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use image::GenericImageView;
use orthanc_edge::dicom::synthetic::{file, header, native, text};

async fn get(url: &str, accept: &str) -> reqwest::Response {
    client().get(url).header("X-Api-Key", PREVIEW_KEY).header("Accept", accept).send().await.unwrap()
}

/// A Basic Text SR: no pixel data.
fn sr() -> Vec<u8> {
    file(
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
        vec![
            text(tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.88.11"),
            text(tags::SOP_INSTANCE_UID, VR::UI, "2.25.1234"),
            text(tags::MODALITY, VR::CS, "SR"),
        ],
    )
}

/// A 40×30 8-bit grey ramp.
fn ramp() -> Vec<u8> {
    let px: Vec<u8> = (0..40 * 30).map(|i| (i % 256) as u8).collect();
    native(header(30, 40, 1, (8, 8, 7), false, "MONOCHROME2"), VR::OB, PrimitiveValue::U8(px.into()))
}

#[actix_web::test]
async fn an_sr_gets_a_placeholder_tile_sized_like_the_variant_and_its_file_is_read_once() {
    let fake = FakeOrthanc::start().await;
    fake.set_mode(Mode::Status(415));
    fake.set_file(sr());
    let edge = TestEdge::builder(&fake.url).start().await;
    let url = edge.preview_url(ID);

    let tile = get(&url, "image/png").await;
    assert_eq!(tile.status(), 200);
    assert_eq!(tile.headers()["x-placeholder"], "sr");
    assert_eq!(tile.headers()["content-type"], "image/png");
    let img = image::load_from_memory(&tile.bytes().await.unwrap()).unwrap();
    assert_eq!(img.dimensions(), (256, 256), "no size asked: a thumbnail-sized tile");

    let small = get(&format!("{url}?w=64&h=48&format=jpeg"), "image/jpeg").await;
    assert_eq!(small.status(), 200);
    assert_eq!(small.headers()["x-placeholder"], "sr");
    let img = image::load_from_memory(&small.bytes().await.unwrap()).unwrap();
    assert_eq!(img.dimensions(), (64, 48));
    let again = get(&format!("{url}?w=64&h=48&format=jpeg"), "image/jpeg").await;
    assert_eq!(again.headers()["x-cache"], "hit-memory");
    assert_eq!(fake.file_requests(), 1, "an instance without pixels is remembered, not fetched again");
    edge.stop().await;

    let strict =
        TestEdge::builder(&fake.url).env("ORTHANC_EDGE__RENDER__PLACEHOLDERS", "false").start().await;
    let (status, code) = outcome(get(&strict.preview_url(ID), "image/png").await).await;
    assert_eq!((status, code.as_str()), (415, "no-pixel-data"));
    strict.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn fallback_decodes_what_orthanc_refuses_and_orthanc_mode_does_not() {
    let fake = FakeOrthanc::start().await;
    fake.set_mode(Mode::Status(415));
    fake.set_file(ramp());
    let edge = TestEdge::builder(&fake.url).start().await;
    let got = get(&edge.preview_url(ID), "image/png").await;
    assert_eq!(got.status(), 200);
    assert!(got.headers().get("x-placeholder").is_none());
    let img = image::load_from_memory(&got.bytes().await.unwrap()).unwrap();
    assert_eq!(img.dimensions(), (40, 30));
    edge.stop().await;

    let strict = TestEdge::builder(&fake.url).env("ORTHANC_EDGE__RENDER__MODE", "orthanc").start().await;
    let files = fake.file_requests();
    let (status, code) = outcome(get(&strict.preview_url(ID2), "image/png").await).await;
    assert_eq!((status, code.as_str()), (415, "unsupported-image"));
    assert_eq!(fake.file_requests(), files, "render.mode = orthanc never reads files");
    strict.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn a_damaged_file_is_a_422_remembered_and_never_cached() {
    let fake = FakeOrthanc::start().await;
    let mut damaged = ramp();
    damaged.truncate(damaged.len() - 300); // pixel data shorter than the header says
    fake.set_file(damaged);
    let edge = TestEdge::builder(&fake.url).env("ORTHANC_EDGE__RENDER__MODE", "edge").start().await;
    for _ in 0..3 {
        let (status, code) = outcome(get(&edge.preview_url(ID), "image/png").await).await;
        assert_eq!((status, code.as_str()), (422, "undecodable"));
    }
    assert_eq!(fake.file_requests(), 1, "remembered for negative_ttl_s");
    assert_eq!(fake.image_requests(), 0, "render.mode = edge: Orthanc renders nothing");
    // Once the negative TTL (5 s here) is over, a good file comes through.
    fake.set_file(ramp());
    tokio::time::sleep(std::time::Duration::from_millis(5_100)).await;
    let got = get(&edge.preview_url(ID), "image/png").await;
    assert_eq!(got.status(), 200, "nothing damaged was cached");
    edge.stop().await;
    fake.stop().await;
}

const STUDY: &str = "0e1437e1-8e289db9-3ecf395f-d8aae463-f4bb49fe";
const SERIES: &str = "3ecf395f-0e1437e1-8e289db9-d8aae463-f4bb49fe";
const STUDY_UID: &str = "1.2.826.0.1.3680043.8.498.1";
const SERIES_UID: &str = "1.2.826.0.1.3680043.8.498.1.7";
const INSTANCE_UID: &str = "1.2.826.0.1.3680043.8.498.1.7.1";

/// A 64×64 signed 16-bit CT (rescale −1024, window 40/400): a ramp from −1000 to 1000 HU.
fn ct() -> Vec<u8> {
    let mut h = header(64, 64, 1, (16, 16, 15), true, "MONOCHROME2");
    h.extend([
        text(tags::RESCALE_INTERCEPT, VR::DS, "-1024"),
        text(tags::RESCALE_SLOPE, VR::DS, "1"),
        text(tags::WINDOW_CENTER, VR::DS, "40"),
        text(tags::WINDOW_WIDTH, VR::DS, "400"),
    ]);
    let px: Vec<i16> = (0..64 * 64).map(|i| (24 + (i % 64) * 2000 / 63) as i16).collect();
    native(h, VR::OW, PrimitiveValue::I16(px.into()))
}

#[actix_web::test]
async fn a_new_dicomweb_window_is_a_new_encode_not_a_new_fetch() {
    let fake = FakeOrthanc::start().await;
    fake.add_instance(ID, SERIES, STUDY);
    fake.add_uid(STUDY_UID, "Study", STUDY);
    fake.add_uid(SERIES_UID, "Series", SERIES);
    fake.add_uid(INSTANCE_UID, "Instance", ID);
    fake.set_file(ct());
    let edge = TestEdge::builder(&fake.url).start().await;
    let url =
        format!("{}/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}/instances/{INSTANCE_UID}", edge.url);
    let mut bodies = Vec::new();
    for qs in [
        "",
        "window=40,400,linear",
        "window=-600,1500,sigmoid",
        "window=0,2000,linear-exact",
        "viewport=32,32,0,0,-32,32",
    ] {
        let r = get(&format!("{url}/rendered?{qs}"), "image/png").await;
        assert_eq!((r.status().as_u16(), crate::support::header(&r, "x-cache")), (200, "miss"), "{qs}");
        bodies.push(r.bytes().await.unwrap());
    }
    assert_eq!(bodies[0], bodies[1], "no window is the instance's own, 40/400");
    for (i, b) in bodies.iter().enumerate().skip(2) {
        assert_ne!(*b, bodies[1], "window {i} renders differently");
    }
    let again = get(&format!("{url}/rendered?window=-600,1500,sigmoid"), "image/png").await;
    assert_eq!(crate::support::header(&again, "x-cache"), "hit-memory");
    assert_eq!(fake.file_requests(), 1, "one file fetched and decoded for every window");
    assert_eq!(fake.image_requests(), 0, "no Orthanc render");
    edge.stop().await;

    // render.mode = orthanc: Orthanc's /rendered, with what it can do (a linear window, no region).
    let edge = TestEdge::builder(&fake.url).env("ORTHANC_EDGE__RENDER__MODE", "orthanc").start().await;
    let url =
        format!("{}/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}/instances/{INSTANCE_UID}", edge.url);
    assert_eq!(get(&format!("{url}/rendered?window=40,400,linear"), "image/png").await.status(), 200);
    assert_eq!((fake.image_requests(), fake.file_requests()), (1, 1));
    for qs in ["window=40,400,sigmoid", "viewport=32,32,0,0,10,10"] {
        let (status, code) = outcome(get(&format!("{url}/rendered?{qs}"), "image/png").await).await;
        assert_eq!((status, code.as_str()), (400, "bad-param"), "{qs}");
    }
    edge.stop().await;
    fake.stop().await;
}

/// Four 16×8 8-bit frames, each black but for its own column.
fn four_frames() -> Vec<u8> {
    let mut h = header(8, 16, 1, (8, 8, 7), false, "MONOCHROME2");
    h.push(text(tags::NUMBER_OF_FRAMES, VR::IS, "4"));
    let px: Vec<u8> =
        (0..4u32).flat_map(|f| (0..16 * 8).map(move |i| if i % 16 == f { 200 } else { 0 })).collect();
    native(h, VR::OB, PrimitiveValue::U8(px.into()))
}

#[actix_web::test]
async fn the_frames_of_one_instance_cost_one_file_fetch() {
    let fake = FakeOrthanc::start().await;
    fake.set_file(four_frames());
    let edge = TestEdge::builder(&fake.url).env("ORTHANC_EDGE__RENDER__MODE", "edge").start().await;
    let mut levels = Vec::new();
    for frame in 0..4 {
        let r = get(&format!("{}/instances/{ID}/frames/{frame}/preview", edge.url), "image/png").await;
        assert_eq!(r.status(), 200, "frame {frame}");
        let img = image::load_from_memory(&r.bytes().await.unwrap()).unwrap().to_luma8();
        levels.push((0..16).map(|x| img.get_pixel(x, 0).0[0]).collect::<Vec<u8>>());
    }
    for (f, row) in levels.iter().enumerate() {
        assert_eq!(row.iter().position(|&v| v == 255), Some(f), "frame {f} is its own: {row:?}");
    }
    assert_eq!(fake.file_requests(), 1, "one GET /file for the four frames");
    // A purge forgets the file too.
    let purged = client()
        .delete(format!("{}/cache/instances/{ID}", edge.url))
        .header("X-Api-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(purged.status(), 200);
    let r = get(&format!("{}/instances/{ID}/frames/2/preview", edge.url), "image/png").await;
    assert_eq!(r.status(), 200);
    assert_eq!(fake.file_requests(), 2);
    edge.stop().await;
    fake.stop().await;
}

//! `render.mode` against a real Orthanc: the edge's own decoding of the stored files gives
//! Orthanc's pixels, costs Orthanc no render in `edge` mode, and renders what Orthanc cannot
//! (the JPEG 2000 instance) in `fallback` mode.

#![allow(clippy::unwrap_used)]

use crate::support::*;
use image::GenericImageView;
use serde_json::Value;

async fn get(url: &str, accept: &str) -> reqwest::Response {
    client().get(url).header("X-Api-Key", PREVIEW_KEY).header("Accept", accept).send().await.unwrap()
}

/// Grey or RGB pixels of a PNG/JPEG body, with its size.
fn pixels(body: &[u8]) -> (u32, u32, Vec<u8>) {
    let img = image::load_from_memory(body).unwrap();
    let (w, h) = img.dimensions();
    let data = match img.color().channel_count() {
        1 => img.to_luma8().into_raw(),
        _ => img.to_rgb8().into_raw(),
    };
    (w, h, data)
}

/// Orthanc's own answer for `path` (status, body).
async fn orthanc(r: &RealOrthanc, path: &str, accept: &str) -> (u16, Vec<u8>) {
    let resp = client()
        .get(format!("{}{path}", r.url))
        .basic_auth(&r.user, Some(&r.password))
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

fn instances(r: &RealOrthanc) -> Vec<(String, Value)> {
    r.manifest["instances"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Larger bodies than the test default: the CR files are over a mebibyte.
const BIG_BODIES: (&str, &str) = ("ORTHANC_EDGE__ORTHANC__MAX_BODY_BYTES", "67108864");

#[actix_web::test]
async fn edge_mode_gives_orthancs_pixels_without_one_orthanc_render() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let proxy = CountingProxy::start(&r.url).await;
    let edge = r.edge(&proxy.url).env("ORTHANC_EDGE__RENDER__MODE", "edge").envs(&[BIG_BODIES]).start().await;
    for (name, inst) in instances(&r) {
        let id = inst["instance"].as_str().unwrap();
        let frames = inst["frames"].as_u64().unwrap_or(1) as u32;
        for frame in 0..frames.min(3) {
            for route in ["preview", "rendered"] {
                let path = format!("/instances/{id}/frames/{frame}/{route}");
                let (status, want) = orthanc(&r, &path, "image/png").await;
                let got = get(&format!("{}{path}", edge.url), "image/png").await;
                if status == 415 {
                    // Orthanc cannot decode it (JPEG 2000): the edge can, at the right size.
                    assert_eq!(got.status(), 200, "{name} {path}");
                    let (w, h, _) = pixels(&got.bytes().await.unwrap());
                    assert_eq!(
                        (w as u64, h as u64),
                        (inst["width"].as_u64().unwrap(), inst["height"].as_u64().unwrap())
                    );
                    continue;
                }
                assert_eq!(status, 200, "Orthanc {name} {path}");
                assert_eq!(got.status(), 200, "{name} {path}");
                assert_eq!(got.headers()["content-type"], "image/png");
                let got = got.bytes().await.unwrap();
                assert!(
                    pixels(&got) == pixels(&want),
                    "{name} {path}: the edge's pixels differ from Orthanc's"
                );
            }
        }
        // A variant comes from the same source.
        let small = get(&format!("{}/instances/{id}/preview?w=64&format=png", edge.url), "image/png").await;
        assert_eq!(small.status(), 200, "{name}");
    }
    assert_eq!(proxy.renders(), 0, "render.mode = edge: Orthanc renders nothing");
    edge.stop().await;
    proxy.stop().await;
}

#[actix_web::test]
async fn fallback_renders_what_orthanc_refuses_and_orthanc_mode_keeps_the_415() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let (name, j2k) = instances(&r).into_iter().find(|(_, i)| i["preview_status"] == 415).unwrap();
    let id = j2k["instance"].as_str().unwrap().to_owned();
    let url = |edge: &TestEdge| format!("{}/instances/{id}/preview", edge.url);

    let strict = r.edge(&r.url).env("ORTHANC_EDGE__RENDER__MODE", "orthanc").start().await;
    let (status, body) = outcome(get(&url(&strict), "image/png").await).await;
    assert_eq!((status, body.as_str()), (415, "unsupported-image"), "{name}");
    strict.stop().await;

    let proxy = CountingProxy::start(&r.url).await;
    let edge = r.edge(&proxy.url).start().await; // fallback is the default
    for accept in ["image/png", "image/jpeg"] {
        let got = get(&url(&edge), accept).await;
        assert_eq!(got.status(), 200, "{name} {accept}");
        assert_eq!(got.headers()["content-type"], accept);
        let (w, h, _) = pixels(&got.bytes().await.unwrap());
        assert_eq!((w as u64, h as u64), (j2k["width"].as_u64().unwrap(), j2k["height"].as_u64().unwrap()));
    }
    let thumb = get(&format!("{}?preset=thumb", url(&edge)), "image/webp").await;
    assert_eq!(thumb.status(), 200, "{name}: a variant of the edge-decoded source");
    // Orthanc was asked once per rendering it could not make; the source is cached after that.
    let renders = proxy.renders();
    let again = get(&format!("{}?w=32&format=png", url(&edge)), "image/png").await;
    assert_eq!(again.status(), 200);
    assert_eq!(proxy.renders(), renders, "the decoded source is cached");
    edge.stop().await;
    proxy.stop().await;
}

/// Decodes counted by outcome on this edge's metrics (`ok`, `reduced`, or an error code).
async fn decodes(edge: &TestEdge, outcome: &str) -> u64 {
    let text =
        client().get(format!("{}/metrics", edge.admin_url)).send().await.unwrap().text().await.unwrap();
    let series = format!("orthanc_edge_edge_decodes_total{{outcome=\"{outcome}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.trim().parse().unwrap())
}

/// A thumbnail of a JPEG 2000 frame decodes only the resolution level it needs (level 2 of the
/// 128x128 sample for 32 px), is the size the full decode gives it with nearly its pixels, and
/// that small source is not kept: the full preview then decodes the whole frame.
#[actix_web::test]
async fn a_jpeg2000_thumbnail_decodes_only_the_level_it_needs() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let j2k = r.instance("j2k", "instance");
    let thumb = |edge: &TestEdge| format!("{}/instances/{j2k}/preview?w=32&format=png", edge.url);
    let full = |edge: &TestEdge| format!("{}/instances/{j2k}/preview", edge.url);

    let edge = r.edge(&r.url).env("ORTHANC_EDGE__RENDER__MODE", "edge").start().await;
    let small = get(&thumb(&edge), "image/png").await;
    assert_eq!(small.status(), 200);
    let (w, h, reduced) = pixels(&small.bytes().await.unwrap());
    assert_eq!((w, h), (32, 32));
    // (The counters are the test process's: both edges count in them.)
    assert_eq!((decodes(&edge, "reduced").await, decodes(&edge, "ok").await), (1, 0));
    assert_eq!(get(&full(&edge), "image/png").await.status(), 200);
    assert_eq!(decodes(&edge, "ok").await, 1, "the full preview needed the whole frame");
    edge.stop().await;

    // The same thumbnail from the full decode (its source cached by the full preview first).
    let edge = r.edge(&r.url).env("ORTHANC_EDGE__RENDER__MODE", "edge").start().await;
    assert_eq!(get(&full(&edge), "image/png").await.status(), 200);
    let (w2, h2, whole) = pixels(&get(&thumb(&edge), "image/png").await.bytes().await.unwrap());
    assert_eq!((w2, h2), (w, h));
    assert_eq!((decodes(&edge, "reduced").await, decodes(&edge, "ok").await), (1, 2), "one full decode");
    let mean =
        reduced.iter().zip(&whole).map(|(a, b)| f64::from(a.abs_diff(*b))).sum::<f64>() / whole.len() as f64;
    // 2.5 measured: the wavelet's low-pass then Lanczos from 2x, against Lanczos from 4x.
    assert!(mean < 3.0, "mean difference {mean:.2} grey levels");
    edge.stop().await;
}

/// Orthanc's own /rendered parameters (pyorthanc's `get_instances_id_rendered(params=...)`):
/// `width`/`height` fit inside as Orthanc's do, and are the cache entry of the same `w`/`h`;
/// `returnUnsupportedImage` is an image where Orthanc would answer 415.
#[actix_web::test]
async fn orthancs_rendered_parameters_and_return_unsupported_image() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let edge = r.edge(&r.url).env("ORTHANC_EDGE__RENDER__MODE", "orthanc").envs(&[BIG_BODIES]).start().await;
    let cr = r.instance("cr_mono1", "instance");
    for qs in ["width=64", "height=100", "width=64&height=64&smooth=1", "width=300&height=20"] {
        let path = format!("/instances/{cr}/rendered?{qs}");
        let (status, want) = orthanc(&r, &path, "image/png").await;
        assert_eq!(status, 200, "Orthanc {path}");
        let got = get(&format!("{}{path}", edge.url), "image/png").await;
        assert_eq!(got.status(), 200, "{path}");
        let (gw, gh, _) = pixels(&got.bytes().await.unwrap());
        let (ow, oh, _) = pixels(&want);
        assert!(gw.abs_diff(ow) <= 1 && gh.abs_diff(oh) <= 1, "{path}: edge {gw}x{gh}, Orthanc {ow}x{oh}");
    }
    let same = get(&format!("{}/instances/{cr}/rendered?w=64&h=64", edge.url), "image/png").await;
    assert_eq!(header(&same, "x-cache"), "hit-memory", "width/height are the entry of w/h");
    let jpeg = get(&format!("{}/instances/{cr}/rendered?width=64&quality=40", edge.url), "image/jpeg").await;
    assert_eq!((jpeg.status().as_u16(), header(&jpeg, "content-type")), (200, "image/jpeg"));
    let q = get(&format!("{}/instances/{cr}/rendered?w=64&q=40", edge.url), "image/jpeg").await;
    assert_eq!(header(&q, "x-cache"), "hit-memory", "quality is q");

    // The JPEG 2000 instance: Orthanc alone cannot decode it.
    let j2k = r.instance("j2k", "instance");
    for route in ["preview", "rendered"] {
        let plain = get(&format!("{}/instances/{j2k}/{route}", edge.url), "image/png").await;
        assert_eq!(plain.status(), 415, "{route}");
        let (status, _) =
            orthanc(&r, &format!("/instances/{j2k}/{route}?returnUnsupportedImage"), "image/png").await;
        assert_eq!(status, 200, "Orthanc answers an image");
        let tile =
            get(&format!("{}/instances/{j2k}/{route}?returnUnsupportedImage", edge.url), "image/png").await;
        assert_eq!(tile.status(), 200, "{route}");
        assert_eq!(header(&tile, "x-placeholder"), "unsupported");
        assert_eq!(header(&tile, "content-type"), "image/png");
        // What renders is the image itself.
        let ok =
            get(&format!("{}/instances/{cr}/{route}?returnUnsupportedImage=true", edge.url), "image/png")
                .await;
        assert_eq!(ok.status(), 200);
        assert!(ok.headers().get("x-placeholder").is_none());
    }
    edge.stop().await;
}

/// `Accept: image/x-portable-arbitrarymap` is PAM, as Orthanc answers it, byte for byte.
#[actix_web::test]
async fn pam_as_orthanc_answers_it() {
    let Some(r) = RealOrthanc::from_env() else { return };
    const PAM: &str = "image/x-portable-arbitrarymap";
    for mode in ["fallback", "edge"] {
        let edge = r.edge(&r.url).env("ORTHANC_EDGE__RENDER__MODE", mode).envs(&[BIG_BODIES]).start().await;
        for name in ["ct16", "rgb8", "cr_mono1"] {
            let id = r.instance(name, "instance");
            for route in ["preview", "rendered", "frames/0/preview"] {
                let path = format!("/instances/{id}/{route}");
                let (status, want) = orthanc(&r, &path, PAM).await;
                assert_eq!(status, 200, "Orthanc {path}");
                let got = get(&format!("{}{path}", edge.url), PAM).await;
                assert_eq!(
                    (got.status().as_u16(), header(&got, "content-type")),
                    (200, PAM),
                    "{mode} {name} {route}"
                );
                assert!(got.bytes().await.unwrap() == want, "{mode} {name} {route}: not Orthanc's PAM");
            }
        }
        edge.stop().await;
    }
}

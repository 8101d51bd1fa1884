//! Variants against a fake Orthanc: one source fetch per instance, negotiation, canonical keys, limits, overload.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::support::*;

const CHROME_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

async fn get(url: &str, accept: &str) -> reqwest::Response {
    client().get(url).header("X-Api-Key", PREVIEW_KEY).header("Accept", accept).send().await.unwrap()
}

/// (width, height, color type name) of an encoded image.
fn dims(bytes: &[u8]) -> (u32, u32, String) {
    if bytes.starts_with(b"RIFF") {
        let img = webp::Decoder::new(bytes).decode().expect("webp decodes");
        return (img.width(), img.height(), "webp".into());
    }
    let img = image::load_from_memory(bytes).expect("decodes");
    (img.width(), img.height(), format!("{:?}", img.color()))
}

#[actix_web::test]
async fn five_variants_cost_one_source_fetch_and_match_their_specs() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let base = edge.preview_url(ID);
    let cases = [
        ("w=128&format=jpeg", (128, 85), "image/jpeg"),
        ("w=64&h=64&fit=cover&format=png", (64, 64), "image/png"),
        ("h=50&format=webp&q=60", (75, 50), "image/webp"),
        ("w=1000&format=png", (300, 200), "image/png"), // no upscaling
        ("preset=thumb", (128, 85), "image/webp"),
    ];
    for (qs, (w, h), ct) in cases {
        let r = get(&format!("{base}?{qs}"), CHROME_ACCEPT).await;
        assert_eq!(r.status(), 200, "{qs}");
        assert_eq!(header(&r, "content-type"), ct, "{qs}");
        assert_eq!(header(&r, "x-cache"), "miss");
        let body = r.bytes().await.unwrap();
        let (bw, bh, color) = dims(&body);
        assert_eq!((bw, bh), (w, h), "{qs}");
        if ct == "image/png" {
            assert_eq!(color, "L8", "grayscale stays one channel");
        }
        if ct == "image/jpeg" {
            assert_eq!(color, "L8", "grayscale JPEG is one channel");
            assert!(!body.windows(4).any(|w| w == b"Exif"), "no EXIF");
        }
    }
    assert_eq!(fake.image_requests(), 1, "one source render for every variant");
    assert!(fake.paths()[0].ends_with("/frames/0/preview"));
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn concurrent_different_variants_share_one_source_fetch() {
    let fake = FakeOrthanc::start().await;
    fake.set_mode(Mode::Slow(Duration::from_millis(300)));
    let edge = TestEdge::builder(&fake.url).start().await;
    let base = edge.preview_url(ID);
    let tasks: Vec<_> = (1..=10u32)
        .map(|i| {
            let url = format!("{base}?w={}&format=jpeg", i * 20);
            tokio::spawn(async move { get(&url, "*/*").await.status().as_u16() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(fake.image_requests(), 1);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn auto_negotiates_and_keys_hold_the_chosen_format() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let base = edge.preview_url(ID);
    let webp = get(&format!("{base}?w=100&format=auto"), CHROME_ACCEPT).await;
    assert_eq!(header(&webp, "content-type"), "image/webp");
    assert_eq!(header(&webp, "vary"), "Accept");
    let jpeg = get(&format!("{base}?w=100&format=auto"), "image/jpeg").await;
    assert_eq!(header(&jpeg, "content-type"), "image/jpeg");
    assert_eq!(header(&jpeg, "vary"), "Accept");
    assert_eq!(header(&jpeg, "x-cache"), "miss", "a different format is a different entry");
    // Another browser with a different Accept that also allows WebP shares the WebP entry.
    let ff = get(&format!("{base}?format=auto&w=100"), "image/webp,*/*").await;
    assert_eq!(header(&ff, "x-cache"), "hit-memory");
    // Explicit format: the bytes do not depend on Accept, so no Vary.
    let explicit = get(&format!("{base}?w=100&format=png"), CHROME_ACCEPT).await;
    assert_eq!(header(&explicit, "vary"), "");
    // Order and defaults do not make new entries.
    let a = get(&format!("{base}?w=128&format=jpeg"), "*/*").await;
    assert_eq!(header(&a, "x-cache"), "miss");
    let b = get(&format!("{base}?format=jpeg&w=128&q=80&fit=contain"), "*/*").await;
    assert_eq!(header(&b, "x-cache"), "hit-memory");
    assert_eq!(header(&a, "etag"), header(&b, "etag"));
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn rgb_frames_windows_and_determinism() {
    let fake = FakeOrthanc::start().await;
    fake.set_source(120, 90, 3);
    let edge = TestEdge::builder(&fake.url).start().await;
    let png = get(&format!("{}?w=60&format=png", edge.preview_url(ID)), "*/*").await;
    let bytes = png.bytes().await.unwrap();
    assert_eq!(dims(&bytes), (60, 45, "Rgb8".into()), "RGB stays RGB");
    // Frames are independent entries with their own source.
    let f1 = get(&format!("{}/instances/{ID}/frames/1/preview?w=60&format=png", edge.url), "*/*").await;
    assert_eq!(header(&f1, "x-cache"), "miss");
    assert_ne!(f1.bytes().await.unwrap(), bytes);
    assert_eq!(fake.image_requests(), 2);
    // Windowed renderings: one Orthanc /rendered per window setting.
    let w = format!("{}/instances/{ID}/rendered?window-center=40&window-width=400", edge.url);
    assert_eq!(get(&format!("{w}&w=32&format=jpeg"), "*/*").await.status(), 200);
    assert_eq!(get(&format!("{w}&w=64&format=jpeg"), "*/*").await.status(), 200);
    let full = get(&w, "image/jpeg").await;
    assert_eq!(header(&full, "content-type"), "image/jpeg");
    assert_eq!(dims(&full.bytes().await.unwrap()).0, 120);
    assert_eq!(fake.image_requests(), 3);
    assert!(fake.paths()[2].ends_with("/frames/0/rendered?window-center=40&window-width=400"));
    let other =
        format!("{}/instances/{ID}/frames/0/rendered?window-width=80&window-center=-20&w=32", edge.url);
    assert_eq!(get(&other, "*/*").await.status(), 200);
    assert_eq!(fake.image_requests(), 4);
    edge.stop().await;

    // A fresh edge (empty cache) makes the very same bytes: ETags agree across replicas.
    let edge2 = TestEdge::builder(&fake.url).start().await;
    let again = get(&format!("{}?w=60&format=png", edge2.preview_url(ID)), "*/*").await;
    assert_eq!(again.bytes().await.unwrap(), bytes);
    for qs in ["w=50&format=webp", "w=50&format=jpeg&q=70"] {
        let a = get(&format!("{}?{qs}", edge2.preview_url(ID2)), "*/*").await.bytes().await.unwrap();
        let edge3 = TestEdge::builder(&fake.url).start().await;
        let b = get(&format!("{}?{qs}", edge3.preview_url(ID2)), "*/*").await.bytes().await.unwrap();
        assert_eq!(a, b, "{qs} is deterministic");
        edge3.stop().await;
    }
    edge2.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn bad_variant_parameters_are_named() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let base = edge.preview_url(ID);
    let rendered = format!("{}/instances/{ID}/rendered", edge.url);
    let cases = [
        (format!("{base}?w=0"), "`w`"),
        (format!("{base}?w=99999"), "`w`"),
        (format!("{base}?h=abc"), "`h`"),
        (format!("{base}?w=10&q=101"), "`q`"),
        (format!("{base}?w=10&fit=zoom"), "`fit`"),
        (format!("{base}?format=gif"), "`format`"),
        (format!("{base}?w=10&w=20"), "`w`"),
        (format!("{base}?preset=nope"), "`preset`"),
        (format!("{base}?preset=thumb&w=10"), "`preset`"),
        (format!("{base}?w=10&quality=50"), "`quality`"),
        (format!("{rendered}?window-center=40"), "`window-width`"),
        (format!("{rendered}?window-center=40&window-width=0"), "`window-width`"),
        (format!("{rendered}?window-center=abc&window-width=10"), "`window-center`"),
        (format!("{rendered}?width=50&w=50"), "`width`"),
        (format!("{rendered}?quality=50&q=50"), "`quality`"),
    ];
    for (url, named) in cases {
        let r = get(&url, "*/*").await;
        assert_eq!(r.status(), 400, "{url}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["code"], "bad-param", "{url}");
        assert!(v["message"].as_str().unwrap().contains(named), "{url}: {}", v["message"]);
    }
    assert_eq!(fake.image_requests(), 0);
    edge.stop().await;

    let dir2 = tempfile::tempdir().unwrap();
    let strict =
        test_config(&fake.url, dir2.path(), &[("ORTHANC_EDGE__TRANSFORM__ALLOW_ARBITRARY", "false")]);
    let edge = TestEdge::start(strict).await;
    let r = get(&format!("{}?w=64", edge.preview_url(ID)), "*/*").await;
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("`w`"));
    assert_eq!(get(&format!("{}?preset=thumb", edge.preview_url(ID)), "*/*").await.status(), 200);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn oversized_sources_are_refused() {
    let fake = FakeOrthanc::start().await;
    fake.set_source(400, 300, 1);
    let edge = TestEdge::builder(&fake.url)
        .envs(&[("ORTHANC_EDGE__TRANSFORM__MAX_SOURCE_PIXELS", "100000")])
        .start()
        .await;
    let r = get(&format!("{}?w=64", edge.preview_url(ID)), "*/*").await;
    assert_eq!(r.status(), 422);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "source-too-large");
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn a_burst_beyond_pool_and_queue_gets_quick_503s() {
    let fake = FakeOrthanc::start().await;
    fake.set_source(2000, 2000, 1);
    let edge = TestEdge::builder(&fake.url)
        .envs(&[
            ("ORTHANC_EDGE__TRANSFORM__WORKERS", "1"),
            ("ORTHANC_EDGE__TRANSFORM__QUEUE", "1"),
            // Busy CI machines: the admitted jobs must finish, however slowly.
            ("ORTHANC_EDGE__SERVER__FLIGHT_WAIT_MS", "60000"),
            ("ORTHANC_EDGE__ORTHANC__MAX_BODY_BYTES", "16777216"),
        ])
        .start()
        .await;
    // Warm the source so that the burst is all transform work.
    assert_eq!(get(&format!("{}?w=10&format=png", edge.preview_url(ID)), "*/*").await.status(), 200);
    let base = edge.preview_url(ID);
    let tasks: Vec<_> = (0..12u32)
        .map(|i| {
            let url = format!("{base}?w={}&format=png", 1000 + i);
            tokio::spawn(async move {
                let started = Instant::now();
                let r = get(&url, "*/*").await;
                let status = r.status().as_u16();
                let retry = r.headers().contains_key("retry-after");
                let code = if status == 503 {
                    r.json::<serde_json::Value>().await.unwrap()["code"].as_str().unwrap().to_owned()
                } else {
                    String::new()
                };
                (status, retry, code, started.elapsed())
            })
        })
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        let (status, retry, code, took) = t.await.unwrap();
        match status {
            200 => ok += 1,
            503 => {
                refused += 1;
                assert!(retry, "503 carries Retry-After");
                assert_eq!(code, "overloaded");
                assert!(took < Duration::from_millis(500), "refused quickly, took {took:?}");
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert!(ok >= 2, "pool + queue work got done ({ok})");
    assert!(refused >= 1, "the rest was refused ({refused})");
    assert_eq!(fake.image_requests(), 1);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn a_person_gets_the_next_orthanc_slot_before_queued_background_work() {
    use orthanc_edge::model::{ImageFormat, Rendering};
    use orthanc_edge::previews::{Output, PreviewSpec};
    use orthanc_edge::transform::spec::{Fit, VariantSpec};
    use orthanc_edge::upstream::Priority;

    let fake = FakeOrthanc::start().await;
    fake.set_mode(Mode::Slow(Duration::from_millis(300)));
    let edge =
        TestEdge::builder(&fake.url).envs(&[("ORTHANC_EDGE__ORTHANC__MAX_CONCURRENCY", "2")]).start().await;
    let variant =
        VariantSpec { w: Some(32), h: None, fit: Fit::Contain, format: ImageFormat::Jpeg, q: Some(80) };
    let spec = |n: u32| PreviewSpec {
        instance: orthanc_edge::ids::OrthancId::parse(&format!(
            "{n:08x}-00000000-00000000-00000000-00000000"
        ))
        .unwrap(),
        frame: 0,
        output: Output::Edge { rendering: Rendering::Preview, variant: variant.clone() },
    };
    // Six background renders for two slots: two run, four queue.
    let background: Vec<_> = (1..=6)
        .map(|n| {
            let (svc, s) = (edge.state.previews.clone(), spec(n));
            tokio::spawn(async move {
                let ok = svc.get_for(&s, Priority::Background).await.is_ok();
                (ok, Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(fake.max_in_flight(), 2, "with nobody waiting, background work uses every slot");
    let started = Instant::now();
    let person = get(&format!("{}?w=40&format=jpeg", edge.preview_url(ID)), "*/*").await;
    assert_eq!(person.status(), 200);
    let person_done = Instant::now();
    // One render to wait for a slot, one for the person's own: never behind the queued four.
    assert!(started.elapsed() < Duration::from_millis(900), "interactive waited {:?}", started.elapsed());
    let mut finished_after_person = 0;
    for b in background {
        let (ok, at) = b.await.unwrap();
        assert!(ok);
        if at > person_done {
            finished_after_person += 1;
        }
    }
    assert!(
        finished_after_person >= 3,
        "queued background work went after the person ({finished_after_person})"
    );
    assert_eq!(fake.max_in_flight(), 2, "never more than orthanc.max_concurrency renders");
    edge.stop().await;
    fake.stop().await;
}

const STUDY: &str = "0e1437e1-8e289db9-3ecf395f-d8aae463-f4bb49fe";
const SERIES: &str = "3ecf395f-0e1437e1-8e289db9-d8aae463-f4bb49fe";
const STUDY_UID: &str = "1.2.826.0.1.3680043.8.498.1";
const SERIES_UID: &str = "1.2.826.0.1.3680043.8.498.1.7";

async fn error_of(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap();
    (status, v["code"].as_str().unwrap_or("").to_owned(), v["message"].as_str().unwrap_or("").to_owned())
}

#[actix_web::test]
async fn presets_only_holds_on_every_route() {
    let fake = FakeOrthanc::start().await;
    fake.add_instance(ID, SERIES, STUDY);
    fake.add_uid(STUDY_UID, "Study", STUDY);
    fake.add_uid(SERIES_UID, "Series", SERIES);
    let dir = tempfile::tempdir().unwrap();
    let strict = test_config(&fake.url, dir.path(), &[("ORTHANC_EDGE__TRANSFORM__ALLOW_ARBITRARY", "false")]);
    let edge = TestEdge::start(strict).await;
    let preview = edge.preview_url(ID);
    let rendered = format!("{}/instances/{ID}/rendered", edge.url);
    // Orthanc's own JPEG quality and windowed renders are variants too: refused, nothing rendered.
    for url in [
        format!("{preview}?quality=37"),
        format!("{preview}?quality=1"),
        format!("{}/instances/{ID}/frames/0/preview?quality=99", edge.url),
        format!("{}/series/{SERIES}/preview?quality=37", edge.url),
        format!("{rendered}?window-center=40.1&window-width=400"),
        format!("{rendered}?window-center=40.01&window-width=400&preset=thumb"),
        format!("{}/series/{SERIES}/preview?w=101", edge.url),
    ] {
        let (status, code, message) = error_of(get(&url, "image/jpeg").await).await;
        assert_eq!((status, code.as_str()), (400, "bad-param"), "{url}");
        assert!(message.contains("only presets"), "{url}: {message}");
    }
    assert_eq!(fake.image_requests(), 0, "no Orthanc render for a refused variant");
    // DICOMweb: a viewport is served by the preset that fits it (here all by `thumb`, 128²):
    // one entry, one decoded file, whatever viewports viewers send.
    let dw = format!("{}/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}", edge.url);
    let first = get(&format!("{dw}/thumbnail?viewport=128,128"), "image/jpeg").await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-cache"), "miss");
    let etag = header(&first, "etag").to_owned();
    assert_eq!(dims(&first.bytes().await.unwrap()).0, 128);
    for qs in ["viewport=101,101", "viewport=127,300", "viewport=1,1", "viewport=255,255", ""] {
        let r = get(&format!("{dw}/thumbnail?{qs}"), "image/jpeg").await;
        assert_eq!(r.status(), 200, "{qs}");
        assert_eq!(header(&r, "x-cache"), "hit-memory", "{qs}");
        assert_eq!(header(&r, "etag"), etag, "{qs}");
    }
    // The grid preset (256²) for a viewport it fits in, from the same decoded frame.
    let big = get(&format!("{dw}/rendered?viewport=300,300"), "image/jpeg").await;
    assert_eq!((big.status().as_u16(), header(&big, "x-cache")), (200, "miss"));
    assert_eq!(dims(&big.bytes().await.unwrap()).0, 256);
    let again = get(&format!("{dw}/rendered?viewport=1000,256"), "image/jpeg").await;
    assert_eq!(header(&again, "x-cache"), "hit-memory");
    // A quality, a window or a source region would be new variants.
    for qs in ["viewport=128,128&quality=37", "window=40,400,linear", "viewport=128,128,0,0,10,10"] {
        let (status, code, message) =
            error_of(get(&format!("{dw}/thumbnail?{qs}"), "image/jpeg").await).await;
        assert_eq!((status, code.as_str()), (400, "bad-param"), "{qs}");
        assert!(message.contains("only presets"), "{qs}: {message}");
    }
    assert_eq!(fake.file_requests(), 1, "one file fetched for every DICOMweb viewport");
    assert_eq!(fake.image_requests(), 0, "DICOMweb is rendered at the edge, not by Orthanc");
    // What presets-only allows besides presets: Orthanc's preview, the instance's own window.
    assert_eq!(get(&preview, "image/jpeg").await.status(), 200);
    assert_eq!(get(&format!("{rendered}?preset=thumb"), "image/jpeg").await.status(), 200);
    assert_eq!(get(&rendered, "image/jpeg").await.status(), 200);
    assert_eq!(fake.image_requests(), 2, "Orthanc's preview, and one /rendered source for both");
    edge.stop().await;

    // Arbitrary mode as before: the exact viewport and quality, Orthanc quality, any window.
    let edge = TestEdge::builder(&fake.url).start().await;
    let before = fake.image_requests();
    let dw = format!("{}/dicom-web/studies/{STUDY_UID}/series/{SERIES_UID}", edge.url);
    let r = get(&format!("{dw}/thumbnail?viewport=101,101&quality=37"), "image/jpeg").await;
    assert_eq!((r.status().as_u16(), header(&r, "x-cache")), (200, "miss"));
    assert_eq!(dims(&r.bytes().await.unwrap()).0, 101);
    let q = get(&format!("{}?quality=37", edge.preview_url(ID)), "image/jpeg").await;
    assert_eq!(q.status(), 200);
    let w =
        get(&format!("{}/instances/{ID}/rendered?window-center=40&window-width=400", edge.url), "image/jpeg")
            .await;
    assert_eq!(w.status(), 200);
    assert_eq!(fake.image_requests(), before + 2);
    assert_eq!(fake.file_requests(), 2, "the new edge decoded the file for its DICOMweb thumbnail");
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn near_identical_windows_share_one_entry_and_one_render() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let at = |c: &str, w: &str| {
        format!("{}/instances/{ID}/rendered?window-center={c}&window-width={w}&w=32&format=jpeg", edge.url)
    };
    let first = get(&at("40.1", "400"), "*/*").await;
    assert_eq!(header(&first, "x-cache"), "miss");
    let etag = header(&first, "etag").to_owned();
    for (c, w) in [("40.10", "400"), ("40.1000001", "400"), ("40.1", "400.00"), ("40.0999", "400.01")] {
        let r = get(&at(c, w), "*/*").await;
        assert_eq!(header(&r, "x-cache"), "hit-memory", "{c}/{w}");
        assert_eq!(header(&r, "etag"), etag, "{c}/{w}");
    }
    assert_eq!(fake.image_requests(), 1);
    assert!(fake.paths()[0].ends_with("/rendered?window-center=40.1&window-width=400"), "{:?}", fake.paths());
    // 40.01 and 40.001 are the window 40 (4 significant digits of the width 400: 0.1 steps).
    assert_eq!(header(&get(&at("40.01", "400"), "*/*").await, "x-cache"), "miss");
    assert!(fake.paths()[1].ends_with("/rendered?window-center=40&window-width=400"), "{:?}", fake.paths());
    for (c, w) in [("40.001", "400"), ("40", "400"), ("-0.0", "400")] {
        let expect = if c == "-0.0" { "miss" } else { "hit-memory" };
        assert_eq!(header(&get(&at(c, w), "*/*").await, "x-cache"), expect, "{c}");
    }
    assert!(fake.paths()[2].ends_with("/rendered?window-center=0&window-width=400"), "{:?}", fake.paths());
    assert_eq!(fake.image_requests(), 3);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn windowed_and_quality_renders_are_charged_to_the_miss_budget() {
    let fake = FakeOrthanc::start().await;
    let budget =
        [("ORTHANC_EDGE__TRANSFORM__MISSES_PER_MINUTE", "6"), ("ORTHANC_EDGE__TRANSFORM__MISS_BURST", "3")];
    // New windows: each is a new /rendered source (an Orthanc render) and a miss.
    let dir = tempfile::tempdir().unwrap();
    let edge = TestEdge::builder(&fake.url).envs(&budget).cache_dir(dir.path()).start().await;
    let windowed =
        |c: u32| format!("{}/instances/{ID}/rendered?window-center={c}&window-width=400", edge.url);
    for c in [40, 41, 42] {
        assert_eq!(get(&windowed(c), "image/jpeg").await.status(), 200, "{c}");
    }
    assert_eq!(fake.image_requests(), 3);
    let (status, code, _) = error_of(get(&windowed(43), "image/jpeg").await).await;
    assert_eq!((status, code.as_str()), (429, "too-many-misses"));
    assert_eq!(fake.image_requests(), 3, "a refused window reaches nothing");
    assert_eq!(get(&windowed(41), "image/jpeg").await.status(), 200, "a cached window is free");
    edge.stop().await;
    // Orthanc JPEG qualities: each an Orthanc render and a miss.
    let dir = tempfile::tempdir().unwrap();
    let edge = TestEdge::builder(&fake.url).envs(&budget).cache_dir(dir.path()).start().await;
    let quality = |q: u32| format!("{}?quality={q}", edge.preview_url(ID));
    for q in [1, 2, 3] {
        assert_eq!(get(&quality(q), "image/jpeg").await.status(), 200, "{q}");
    }
    assert_eq!(fake.image_requests(), 6);
    let (status, code, _) = error_of(get(&quality(4), "image/jpeg").await).await;
    assert_eq!((status, code.as_str()), (429, "too-many-misses"));
    assert_eq!(fake.image_requests(), 6, "a refused quality reaches nothing");
    edge.stop().await;
    fake.stop().await;
}

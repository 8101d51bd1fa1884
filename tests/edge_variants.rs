//! Variants against a fake Orthanc: one source fetch per instance, negotiation, canonical keys, limits, overload.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::*;

const CHROME_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

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
    let dir = tempfile::tempdir().unwrap();
    let edge = TestEdge::start(test_config(&fake.url, dir.path(), &[])).await;
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
    let dir = tempfile::tempdir().unwrap();
    let edge = TestEdge::start(test_config(&fake.url, dir.path(), &[])).await;
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
    let dir = tempfile::tempdir().unwrap();
    let edge = TestEdge::start(test_config(&fake.url, dir.path(), &[])).await;
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
    let dir = tempfile::tempdir().unwrap();
    let edge = TestEdge::start(test_config(&fake.url, dir.path(), &[])).await;
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
    let dir2 = tempfile::tempdir().unwrap();
    let edge2 = TestEdge::start(test_config(&fake.url, dir2.path(), &[])).await;
    let again = get(&format!("{}?w=60&format=png", edge2.preview_url(ID)), "*/*").await;
    assert_eq!(again.bytes().await.unwrap(), bytes);
    for qs in ["w=50&format=webp", "w=50&format=jpeg&q=70"] {
        let a = get(&format!("{}?{qs}", edge2.preview_url(ID2)), "*/*").await.bytes().await.unwrap();
        let dir3 = tempfile::tempdir().unwrap();
        let edge3 = TestEdge::start(test_config(&fake.url, dir3.path(), &[])).await;
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
    let dir = tempfile::tempdir().unwrap();
    let edge = TestEdge::start(test_config(&fake.url, dir.path(), &[])).await;
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
        (format!("{rendered}?quality=50"), "`quality`"),
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
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(&fake.url, dir.path(), &[("ORTHANC_EDGE__TRANSFORM__MAX_SOURCE_PIXELS", "100000")]);
    let edge = TestEdge::start(cfg).await;
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
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(
        &fake.url,
        dir.path(),
        &[
            ("ORTHANC_EDGE__TRANSFORM__WORKERS", "1"),
            ("ORTHANC_EDGE__TRANSFORM__QUEUE", "1"),
            // Busy CI machines: the admitted jobs must finish, however slowly.
            ("ORTHANC_EDGE__SERVER__FLIGHT_WAIT_MS", "60000"),
            ("ORTHANC_EDGE__ORTHANC__MAX_BODY_BYTES", "16777216"),
        ],
    );
    let edge = TestEdge::start(cfg).await;
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
    use orthanc_edge::previews::{Output, PreviewSpec};
    use orthanc_edge::transform::spec::{Fit, OutputFormat, VariantSpec};
    use orthanc_edge::upstream::{Priority, Rendering};

    let fake = FakeOrthanc::start().await;
    fake.set_mode(Mode::Slow(Duration::from_millis(300)));
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(&fake.url, dir.path(), &[("ORTHANC_EDGE__ORTHANC__MAX_CONCURRENCY", "2")]);
    let edge = TestEdge::start(cfg).await;
    let variant =
        VariantSpec { w: Some(32), h: None, fit: Fit::Contain, format: OutputFormat::Jpeg, q: Some(80) };
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
                let ok = svc.get_with(&s, Priority::Background).await.is_ok();
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

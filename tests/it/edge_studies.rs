//! Study grids, series thumbnails, DICOMweb, warm-up, purge and the /changes follower, against a real Orthanc.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{json, Value};

const CHROME_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

async fn get(url: &str, key: &str, accept: &str) -> reqwest::Response {
    client().get(url).header("X-Api-Key", key).header("Accept", accept).send().await.unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

/// `POST /warm` with `key`.
async fn post_warm(edge: &TestEdge, key: &str, body: &Value) -> reqwest::Response {
    client().post(format!("{}/warm", edge.url)).header("X-Api-Key", key).json(body).send().await.unwrap()
}

/// Start a warm-up job (202); its id.
async fn start_warm(edge: &TestEdge, body: Value) -> String {
    let resp = post_warm(edge, WARM_KEY, &body).await;
    assert_eq!(resp.status(), 202);
    resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

async fn wait_job(edge: &TestEdge, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p: Value = get(&format!("{}/warm/{id}", edge.url), WARM_KEY, "*/*").await.json().await.unwrap();
        if p["state"] == "done" || p["state"] == "cancelled" {
            return p;
        }
        assert!(Instant::now() < deadline, "warm-up job did not finish: {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn grid_json_matches_orthanc_and_thumbnails_are_middle_instances() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let edge = r.edge(&r.url).start().await;
    let study = r.manifest["study"].as_str().unwrap().to_owned();
    let resp = get(&format!("{}/studies/{study}/grid.json", edge.url), PREVIEW_KEY, "*/*").await;
    assert_eq!(resp.status(), 200);
    let etag = header(&resp, "etag");
    let grid: Value = resp.json().await.unwrap();
    let orthanc_study = r.json(&format!("/studies/{study}")).await;
    let ours: BTreeSet<String> =
        grid["series"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect();
    let theirs: BTreeSet<String> =
        orthanc_study["Series"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    assert_eq!(ours, theirs);
    assert_eq!(grid["description"], orthanc_study["MainDicomTags"]["StudyDescription"]);
    for s in grid["series"].as_array().unwrap() {
        let o = r.json(&format!("/series/{}", s["id"].as_str().unwrap())).await;
        assert_eq!(s["modality"], o["MainDicomTags"]["Modality"]);
        assert_eq!(s["description"], o["MainDicomTags"]["SeriesDescription"]);
        assert_eq!(s["instances"].as_u64().unwrap() as usize, o["Instances"].as_array().unwrap().len());
        assert!(s["thumbnail"].as_str().unwrap().ends_with("/preview?preset=thumb"));
    }
    // Series numbers ascend.
    let numbers: Vec<i64> =
        grid["series"].as_array().unwrap().iter().map(|s| s["number"].as_i64().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "{numbers:?}");

    // The 5-slice series is represented by its middle (third) instance.
    let series = r.instance("ctseries_0003", "series");
    let middle = r.instance("ctseries_0003", "instance");
    let card = grid["series"].as_array().unwrap().iter().find(|s| s["id"] == series.as_str()).unwrap();
    assert_eq!(card["representative"], middle.as_str());
    let via_series =
        get(&format!("{}/series/{series}/preview?w=64&format=png", edge.url), PREVIEW_KEY, "*/*").await;
    assert_eq!(via_series.status(), 200);
    let via_series = via_series.bytes().await.unwrap();
    let direct =
        get(&format!("{}/instances/{middle}/preview?w=64&format=png", edge.url), PREVIEW_KEY, "*/*").await;
    assert_eq!(header(&direct, "x-cache"), "hit-memory", "same instance + variant = same entry");
    assert_eq!(direct.bytes().await.unwrap(), via_series);

    // The grid JSON revalidates.
    let again = client()
        .get(format!("{}/studies/{study}/grid.json", edge.url))
        .header("X-Api-Key", PREVIEW_KEY)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // The HTML page lists every series with an escaped label; its first thumbnails load at once
    // (`grid.prefetch`, 64 by default: all of these), any beyond lazily.
    let page = get(&format!("{}/studies/{study}/grid", edge.url), PREVIEW_KEY, "text/html").await;
    assert_eq!(page.status(), 200);
    assert!(header(&page, "content-type").starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("<figure").count(), ours.len());
    assert_eq!(html.matches(r#"loading="eager""#).count(), ours.len().min(64));
    assert!(!html.contains("Doe"), "no patient name on the page");
    edge.stop().await;
}

#[actix_web::test]
async fn dicomweb_renders_studies_series_instances_and_frames_by_uid() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let edge = r.edge(&r.url).start().await;
    let series = r.instance("ctseries_0003", "series");
    let middle = r.instance("ctseries_0003", "instance");
    let tags = r.json(&format!("/series/{series}")).await;
    let series_uid = tags["MainDicomTags"]["SeriesInstanceUID"].as_str().unwrap().to_owned();
    let study = r.manifest["study"].as_str().unwrap().to_owned();
    let study_uid = r.json(&format!("/studies/{study}")).await["MainDicomTags"]["StudyInstanceUID"]
        .as_str()
        .unwrap()
        .to_owned();
    let base = format!("{}/dicom-web/studies/{study_uid}/series/{series_uid}", edge.url);
    let body = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    };
    let luma = |b: &[u8]| image::load_from_memory(b).unwrap().to_luma8();
    let thumb = get(&format!("{base}/thumbnail?viewport=128,128"), PREVIEW_KEY, "image/jpeg").await;
    assert_eq!(header(&thumb, "content-type"), "image/jpeg");
    let thumb = luma(&body(thumb).await);
    assert!(thumb.width() <= 128 && thumb.height() <= 128 && thumb.width().max(thumb.height()) == 128);
    // The series' image is its representative's, in the instance's own window (PS3.18), which
    // Orthanc's full-range /preview is not.
    let middle_uid = r.json(&format!("/instances/{middle}")).await["MainDicomTags"]["SOPInstanceUID"]
        .as_str()
        .unwrap()
        .to_owned();
    let of_series = body(get(&format!("{base}/rendered"), PREVIEW_KEY, "image/png").await).await;
    let instance = format!("{base}/instances/{middle_uid}");
    let of_instance = body(get(&format!("{instance}/rendered"), PREVIEW_KEY, "image/png").await).await;
    let of_frame = body(get(&format!("{instance}/frames/1/rendered"), PREVIEW_KEY, "image/png").await).await;
    assert_eq!(luma(&of_series), luma(&of_instance));
    assert_eq!(luma(&of_frame), luma(&of_instance));
    // An instance with a window of its own (ct16: 40/400, rescaled): no `window` is that window.
    let ct = r.instance("ct16", "instance");
    let ct_tags = r.json(&format!("/instances/{ct}/tags?simplify")).await;
    let tag = |k: &str| ct_tags[k].as_str().unwrap().to_owned();
    let ct_url = format!(
        "{}/dicom-web/studies/{study_uid}/series/{}/instances/{}",
        edge.url,
        tag("SeriesInstanceUID"),
        tag("SOPInstanceUID")
    );
    let first = |k: &str| tag(k).split('\\').next().unwrap().trim().to_owned();
    let (c, w) = (first("WindowCenter"), first("WindowWidth"));
    let own = body(get(&format!("{ct_url}/rendered"), PREVIEW_KEY, "image/png").await).await;
    let windowed =
        body(get(&format!("{ct_url}/rendered?window={c},{w},linear"), PREVIEW_KEY, "image/png").await).await;
    assert_eq!(luma(&own), luma(&windowed), "no window is the instance's own");
    let wide =
        body(get(&format!("{ct_url}/rendered?window=0,4000,linear"), PREVIEW_KEY, "image/png").await).await;
    assert_ne!(luma(&own), luma(&wide));
    let preview =
        body(get(&format!("{}/instances/{ct}/preview", edge.url), PREVIEW_KEY, "image/png").await).await;
    assert_ne!(luma(&preview), luma(&own), "/preview is the full range, not the window");
    // A study's image is that of its first series with pixels, as its grid orders them.
    let cards: serde_json::Value = client()
        .get(format!("{}/studies/{study}/grid.json", edge.url))
        .header("X-Api-Key", PREVIEW_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let card = cards["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["representative"].is_string() && c.get("placeholder").is_none())
        .unwrap();
    let rep = card["representative"].as_str().unwrap();
    let of_study = body(
        get(&format!("{}/dicom-web/studies/{study_uid}/rendered", edge.url), PREVIEW_KEY, "image/png").await,
    )
    .await;
    let of_rep =
        body(get(&format!("{}/instances/{rep}/rendered", edge.url), PREVIEW_KEY, "image/png").await).await;
    assert_eq!(luma(&of_study).dimensions(), luma(&of_rep).dimensions());
    let study_thumb =
        get(&format!("{}/dicom-web/studies/{study_uid}/thumbnail", edge.url), PREVIEW_KEY, "*/*").await;
    assert_eq!(
        (study_thumb.status().as_u16(), header(&study_thumb, "content-type").as_str()),
        (200, "image/jpeg")
    );
    // Content negotiation: q-values, the `accept` parameter, and 406 when nothing fits.
    for (accept, param, want) in [
        ("image/jpeg;q=0.5, image/png", "", "image/png"),
        ("image/webp", "", "image/webp"),
        ("image/gif", "accept=image/png", "image/png"),
    ] {
        let url = format!("{base}/thumbnail?{param}");
        let resp = get(&url, PREVIEW_KEY, accept).await;
        assert_eq!(
            (resp.status().as_u16(), header(&resp, "content-type").as_str()),
            (200, want),
            "{accept} {param}"
        );
    }
    let refused = get(&format!("{base}/thumbnail"), PREVIEW_KEY, "image/gif, application/json;q=0.5").await;
    assert_eq!(outcome(refused).await, err(406, "not-acceptable"));
    // Frames are 1-based and exist.
    for (path, want) in [
        ("frames/0/rendered", (400, "bad-id")),
        ("frames/2/rendered", (404, "not-found")),
        ("frames/1,2/rendered", (400, "bad-id")),
    ] {
        let resp = get(&format!("{instance}/{path}"), PREVIEW_KEY, "image/png").await;
        assert_eq!(outcome(resp).await, err(want.0, want.1), "{path}");
    }
    // Instance-level rendered by UID, full size.
    let sop = r.instance("ct16", "sop_instance_uid");
    let ct_series_uid = r.json(&format!("/series/{}", r.instance("ct16", "series"))).await["MainDicomTags"]
        ["SeriesInstanceUID"]
        .as_str()
        .unwrap()
        .to_owned();
    let rendered = get(
        &format!(
            "{}/dicom-web/studies/{study_uid}/series/{ct_series_uid}/instances/{sop}/rendered",
            edge.url
        ),
        PREVIEW_KEY,
        "image/png",
    )
    .await;
    assert_eq!(rendered.status(), 200);
    assert_eq!(header(&rendered, "content-type"), "image/png");
    let img = image::load_from_memory(&rendered.bytes().await.unwrap()).unwrap();
    assert_eq!((img.width(), img.height()), (512, 512));
    // Bad input.
    for (url, status) in [
        (format!("{}/dicom-web/studies/1.2/series/1.2.x/thumbnail", edge.url), 400),
        (format!("{}/dicom-web/studies/{study_uid}/series/1.2.3.999/thumbnail", edge.url), 404),
        (format!("{base}/thumbnail?viewport=0,5"), 400),
        (format!("{base}/thumbnail?size=5"), 400),
        (format!("{}/studies/00000000-00000000-00000000-00000000-00000000/grid.json", edge.url), 404),
        (format!("{}/studies/{study}/series", edge.url), 404),
        (format!("{}/studies/not-an-id/grid.json", edge.url), 400),
    ] {
        assert_eq!(get(&url, PREVIEW_KEY, "*/*").await.status(), status, "{url}");
    }
    edge.stop().await;
}

/// Chromium's Accept for a page.
const CHROME_PAGE_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8";

/// Images this test process's edges made (misses answered so far).
async fn misses(edge: &TestEdge) -> u64 {
    let text =
        client().get(format!("{}/metrics", edge.admin_url)).send().await.unwrap().text().await.unwrap();
    let series = "orthanc_edge_cache_lookups_total{outcome=\"miss\"} ";
    text.lines().find_map(|l| l.strip_prefix(series)).map_or(0, |v| v.trim().parse().unwrap())
}

/// The grid page starts making its first `grid.prefetch` thumbnails as it answers, as the
/// browser's `<img>` requests will ask for them (WebP for Chromium): those requests are then
/// hits, and the thumbnails' series need no second instance listing. Beyond the first N, a
/// revalidated page (304) and `grid.prefetch = 0` make nothing.
#[actix_web::test]
async fn the_grid_page_prefetches_its_first_thumbnails() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let study = r.manifest["study"].as_str().unwrap().to_owned();
    let page = |edge: &TestEdge| format!("{}/studies/{study}/grid", edge.url);
    let proxy = CountingProxy::start(&r.url).await;
    let edge = r.edge(&proxy.url).env("ORTHANC_EDGE__GRID__PREFETCH", "2").start().await;
    let resp = get(&page(&edge), PREVIEW_KEY, CHROME_PAGE_ACCEPT).await;
    assert_eq!(resp.status(), 200);
    let etag = header(&resp, "etag");
    let html = resp.text().await.unwrap();
    assert_eq!(html.matches(r#"loading="eager""#).count(), 2);
    assert!(html.contains(r#"loading="lazy""#));
    // The prefetch runs after the page: wait for its two misses.
    let deadline = Instant::now() + Duration::from_secs(20);
    while misses(&edge).await < 2 {
        assert!(Instant::now() < deadline, "the two thumbnails were not made");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let grid: Value = get(&format!("{}/studies/{study}/grid.json", edge.url), PREVIEW_KEY, "*/*")
        .await
        .json()
        .await
        .unwrap();
    let series = grid["series"].as_array().unwrap();
    for (i, s) in series.iter().take(3).enumerate() {
        let t = get(&format!("{}{}", edge.url, s["thumbnail"].as_str().unwrap()), PREVIEW_KEY, CHROME_ACCEPT)
            .await;
        assert_eq!(t.status(), 200);
        let want = if i < 2 { "hit-memory" } else { "miss" };
        assert_eq!(header(&t, "x-cache"), want, "series {i}");
        let listing = format!("/series/{}/instances", s["id"].as_str().unwrap());
        assert_eq!(proxy.requests_to(&listing), 1, "the grid's listing serves the thumbnail's route");
    }
    edge.stop().await;

    // The same page revalidated on a fresh edge, and a page without prefetch: nothing made.
    for (prefetch, etag) in [("2", Some(&etag)), ("0", None)] {
        let edge = r.edge(&proxy.url).env("ORTHANC_EDGE__GRID__PREFETCH", prefetch).start().await;
        let mut req =
            client().get(page(&edge)).header("X-Api-Key", PREVIEW_KEY).header("Accept", CHROME_PAGE_ACCEPT);
        if let Some(etag) = etag {
            req = req.header("If-None-Match", etag.as_str());
        }
        let (before, made) = (proxy.image_fetches(""), misses(&edge).await);
        assert_eq!(req.send().await.unwrap().status(), if etag.is_some() { 304 } else { 200 });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(proxy.image_fetches(""), before, "grid.prefetch = {prefetch}");
        assert_eq!(misses(&edge).await, made);
        edge.stop().await;
    }
    proxy.stop().await;
}

#[actix_web::test]
async fn warm_then_grid_costs_no_render_and_purge_makes_misses() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let proxy = CountingProxy::start(&r.url).await;
    let edge = r.edge(&proxy.url).start().await;
    let study = r.manifest["study"].as_str().unwrap().to_owned();
    // Bad jobs first.
    let too_many: Vec<String> =
        (0..10_001).map(|i| format!("{i:08x}-00000000-00000000-00000000-00000000")).collect();
    for (body, status) in [
        (json!({"studies": [study], "presets": ["nope"]}), 400),
        (json!({"studies": [], "presets": ["thumb"]}), 400),
        (json!({"series": too_many, "presets": ["thumb"]}), 400),
        (json!({"studies": ["bad"], "presets": ["thumb"]}), 400),
        (json!({"studies": [study], "presets": ["thumb"], "extra": 1}), 400),
    ] {
        assert_eq!(post_warm(&edge, WARM_KEY, &body).await.status(), status);
    }
    let thumbs = json!({"studies": [study], "presets": ["thumb"]});
    let denied = post_warm(&edge, PREVIEW_KEY, &thumbs).await;
    assert_eq!(denied.status(), 403, "warming needs the warm scope");

    let p = wait_job(&edge, &start_warm(&edge, thumbs.clone()).await).await;
    let instances = r.manifest["instances"].as_object().unwrap().len() as u64;
    assert_eq!(p["state"], "done");
    // thumb is `auto`: WebP for browsers and JPEG for viewers, per instance.
    assert_eq!(p["total"].as_u64().unwrap(), instances * 2, "{p}");
    // Orthanc cannot decode the JPEG 2000 instance (415): the edge does (render.mode = fallback).
    assert_eq!(p["failed"].as_u64().unwrap(), 0, "every instance renders: {p}");
    let renders_after_warm = proxy.renders();
    assert!(
        renders_after_warm as u64 <= instances + 1,
        "one source render per instance ({renders_after_warm})"
    );

    // A clinician opens the grid: every thumbnail is a hit, Orthanc renders nothing.
    let grid: Value = get(&format!("{}/studies/{study}/grid.json", edge.url), PREVIEW_KEY, "*/*")
        .await
        .json()
        .await
        .unwrap();
    for s in grid["series"].as_array().unwrap() {
        let url = format!("{}{}", edge.url, s["thumbnail"].as_str().unwrap());
        for accept in [CHROME_ACCEPT, "image/jpeg"] {
            let t = get(&url, PREVIEW_KEY, accept).await;
            assert_eq!(t.status(), 200, "{url}");
            assert!(header(&t, "x-cache").starts_with("hit-"), "{url} {accept}");
        }
    }
    assert_eq!(proxy.renders(), renders_after_warm, "grid after warm-up: zero Orthanc renders");

    // A second warm-up skips everything.
    let p2 = wait_job(&edge, &start_warm(&edge, thumbs).await).await;
    assert_eq!(
        p2["skipped"].as_u64().unwrap() + p2["failed"].as_u64().unwrap(),
        p2["total"].as_u64().unwrap()
    );
    assert_eq!(p2["rate_per_s"], 0.0, "nothing made, no rate: {p2}");

    // Purge the study: the next request is a miss; a second purge is a no-op.
    let first_purge = purge_study(&edge.url, &study, ADMIN_KEY).await;
    assert_eq!(first_purge.status(), 200);
    let purged: Value = first_purge.json().await.unwrap();
    assert!(purged["entries"].as_u64().unwrap() > 0, "{purged}");
    assert_eq!(purged["instances"].as_u64().unwrap(), instances);
    let again: Value = purge_study(&edge.url, &study, ADMIN_KEY).await.json().await.unwrap();
    assert_eq!(again["entries"], 0);
    let first = grid["series"][0]["thumbnail"].as_str().unwrap();
    let t = get(&format!("{}{first}", edge.url), PREVIEW_KEY, CHROME_ACCEPT).await;
    assert_eq!(header(&t, "x-cache"), "miss");
    assert_eq!(purge_study(&edge.url, &study, PREVIEW_KEY).await.status(), 403);
    edge.stop().await;
    proxy.stop().await;
}

#[actix_web::test]
async fn cancel_stops_a_job() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let edge = r.edge(&r.url).envs(&[("ORTHANC_EDGE__WARM__CONCURRENCY", "1")]).start().await;
    let study = r.manifest["study"].as_str().unwrap().to_owned();
    let id = start_warm(&edge, json!({"studies": [study], "presets": ["thumb", "grid"]})).await;
    let cancelled = client()
        .delete(format!("{}/warm/{id}", edge.url))
        .header("X-Api-Key", WARM_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let p = wait_job(&edge, &id).await;
    assert_eq!(p["state"], "cancelled");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later: Value = get(&format!("{}/warm/{id}", edge.url), WARM_KEY, "*/*").await.json().await.unwrap();
    assert!(later["done"].as_u64().unwrap() < later["total"].as_u64().unwrap().max(1), "{later}");
    let missing = get(&format!("{}/warm/nope", edge.url), WARM_KEY, "*/*").await;
    assert_eq!(missing.status(), 404);
    edge.stop().await;
}

/// With `render.mode = orthanc` the JPEG 2000 instance cannot be made: one failure entry for
/// it, naming both formats of `thumb`; the rest is done, failures apart.
#[actix_web::test]
async fn a_warm_up_reports_each_failure_once_with_its_variants() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let edge = r.edge(&r.url).env("ORTHANC_EDGE__RENDER__MODE", "orthanc").start().await;
    let study = r.manifest["study"].as_str().unwrap().to_owned();
    let p =
        wait_job(&edge, &start_warm(&edge, json!({"studies": [study], "presets": ["thumb"]})).await).await;
    let j2k = r.instance("j2k", "instance");
    let failures = p["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{p}");
    assert_eq!(failures[0]["resource"], j2k.as_str());
    assert_eq!(failures[0]["code"], "unsupported-image");
    assert_eq!(failures[0]["variants"], json!(["thumb webp", "thumb jpeg"]));
    assert_eq!(p["failed"], 2);
    assert_eq!(p["done"].as_u64().unwrap() + 2, p["total"].as_u64().unwrap(), "failures are not done: {p}");
    edge.stop().await;
}

/// `orthanc-edge warm` (the key from the environment): one line per failing instance naming
/// the variants it failed for, what it made apart from what failed, a non-zero exit.
#[actix_web::test]
async fn the_warm_command_prints_each_failure_once() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let edge = r.edge(&r.url).env("ORTHANC_EDGE__RENDER__MODE", "orthanc").start().await;
    let study = r.manifest["study"].as_str().unwrap().to_owned();
    let (url, bin) = (edge.url.clone(), env!("CARGO_BIN_EXE_orthanc-edge"));
    let out = actix_web::rt::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(["warm", "--url", &url, "--study", &study, "--preset", "thumb"])
            .env("ORTHANC_EDGE_WARM_KEY", WARM_KEY)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the JPEG 2000 instance failed: {stderr}");
    let j2k = r.instance("j2k", "instance");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("failed: ")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains(&format!("failed: {j2k} (unsupported-image) for thumb webp, thumb jpeg")),
        "{stderr}"
    );
    let instances = r.manifest["instances"].as_object().unwrap().len();
    assert!(
        stderr.contains(&format!("{} made, 0 already cached, 2 failed", (instances - 1) * 2)),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "no ANSI colour off a terminal");
    edge.stop().await;
}

#[actix_web::test]
async fn changes_follower_warms_new_studies_and_survives_a_restart() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let proxy = CountingProxy::start(&r.url).await;
    let dir = tempfile::tempdir().unwrap();
    let follow = [("ORTHANC_EDGE__WARM__FOLLOW_CHANGES", "true"), ("ORTHANC_EDGE__WARM__POLL_MS", "200")];
    let cfg = r.config(&proxy.url, dir.path(), &follow);
    let edge = TestEdge::start(cfg.clone()).await;
    let follower = tokio::spawn(edge.state.follower().unwrap().run());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(proxy.renders(), 0, "the follower starts at Orthanc's current position, not its history");

    // Upload a new study (generated with other UIDs).
    let gen = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("python3")
        .args(["scripts/dev/gen_dicom.py", gen.path().to_str().unwrap(), "--study", "42", "--slices", "0"])
        .status()
        .unwrap();
    assert!(ok.success());
    let mut new_instance = String::new();
    for name in ["ct16.dcm", "rgb8.dcm"] {
        let bytes = std::fs::read(gen.path().join(name)).unwrap();
        let v: Value = client()
            .post(format!("{}/instances", r.url))
            .basic_auth(&r.user, Some(&r.password))
            .body(bytes)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        new_instance = v["ID"].as_str().unwrap().to_owned();
    }
    // Orthanc calls the study stable a couple of seconds later; the follower then warms `thumb`.
    let deadline = Instant::now() + Duration::from_secs(30);
    // Look in the disk tier without making anything (an HTTP probe would make it itself).
    let key = format!("p/{new_instance}/0/preview.w128.h128.contain.webp.q80");
    while edge.state.cache.disk().get(key.as_bytes()).unwrap().is_none() {
        assert!(Instant::now() < deadline, "the new study was not warmed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t = get(
        &format!("{}/instances/{new_instance}/preview?preset=thumb", edge.url),
        PREVIEW_KEY,
        CHROME_ACCEPT,
    )
    .await;
    assert_eq!(t.status(), 200);
    assert!(
        header(&t, "x-cache").starts_with("hit-"),
        "warmed by the follower: {} after {} renders",
        header(&t, "x-cache"),
        proxy.renders()
    );
    follower.abort();
    edge.stop().await;

    // Restart: the position was kept, nothing is warmed again.
    let before = proxy.renders();
    let edge = TestEdge::start(cfg).await;
    let seq = orthanc_edge::warm::position::Position::in_dir(&edge.state.config.cache.dir).load();
    assert!(seq.is_some_and(|s| s > 0));
    let follower = tokio::spawn(edge.state.follower().unwrap().run());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(proxy.renders(), before, "no re-warming after a restart");
    follower.abort();
    edge.stop().await;
    proxy.stop().await;
}

//! The real edge against a fake Orthanc: caching tiers, single flight, conditional requests, every error mapping.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::support::*;

async fn get(url: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = client().get(url);
    if let Some(k) = key {
        req = req.header("X-Api-Key", k);
    }
    req.send().await.unwrap()
}

async fn json_error(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    assert_eq!(header(&r, "content-type"), "application/json", "errors are JSON");
    assert!(r.headers().get("www-authenticate").is_none(), "no browser prompt, ever");
    let v: serde_json::Value = r.json().await.unwrap();
    (status, v["code"].as_str().unwrap().to_owned(), v["message"].as_str().unwrap().to_owned())
}

#[actix_web::test]
async fn miss_then_memory_hit_then_disk_hit_after_restart() {
    let fake = FakeOrthanc::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(&fake.url, dir.path(), &[]);

    let edge = TestEdge::start(cfg.clone()).await;
    let r1 = get(&edge.preview_url(ID), Some(PREVIEW_KEY)).await;
    assert_eq!(r1.status(), 200);
    assert_eq!(header(&r1, "x-cache"), "miss");
    assert_eq!(header(&r1, "content-type"), "image/png");
    assert_eq!(header(&r1, "cache-control"), "private, max-age=86400");
    assert_eq!(header(&r1, "vary"), "Accept");
    let etag = header(&r1, "etag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"));
    assert_eq!(r1.content_length(), Some(fake_png(ID, 0).len() as u64));
    assert_eq!(r1.bytes().await.unwrap(), fake_png(ID, 0));

    let r2 = get(&edge.preview_url(ID), Some(PREVIEW_KEY)).await;
    assert_eq!(header(&r2, "x-cache"), "hit-memory");
    assert_eq!(header(&r2, "etag"), etag);
    assert_eq!(r2.bytes().await.unwrap(), fake_png(ID, 0));
    // /preview and /frames/0/preview are the same image and the same entry.
    let r3 = get(&format!("{}/instances/{ID}/frames/0/preview", edge.url), Some(PREVIEW_KEY)).await;
    assert_eq!(header(&r3, "x-cache"), "hit-memory");
    assert_eq!(fake.image_requests(), 1);
    assert_eq!(fake.gzip_requests(), 0, "the edge asks Orthanc for identity encoding");
    edge.stop().await;

    let edge = TestEdge::start(cfg).await;
    let r4 = get(&edge.preview_url(ID), Some(PREVIEW_KEY)).await;
    assert_eq!(r4.status(), 200);
    assert_eq!(header(&r4, "x-cache"), "hit-disk");
    assert_eq!(header(&r4, "etag"), etag);
    assert_eq!(r4.bytes().await.unwrap(), fake_png(ID, 0));
    let r5 = get(&edge.preview_url(ID), Some(PREVIEW_KEY)).await;
    assert_eq!(header(&r5, "x-cache"), "hit-memory", "a disk hit is promoted to memory");
    assert_eq!(fake.image_requests(), 1, "restart served from disk with zero upstream requests");
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn jpeg_when_accept_is_exactly_image_jpeg_and_frames_are_separate_entries() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let c = client();
    let jpeg = c
        .get(edge.preview_url(ID))
        .header("X-Api-Key", PREVIEW_KEY)
        .header("Accept", "image/jpeg")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&jpeg, "content-type"), "image/jpeg");
    assert_eq!(jpeg.bytes().await.unwrap(), fake_jpeg(ID, 0));
    let browser = c
        .get(edge.preview_url(ID))
        .header("X-Api-Key", PREVIEW_KEY)
        .header("Accept", "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&browser, "content-type"),
        "image/png",
        "a browser's Accept list gets PNG, as from Orthanc"
    );
    let q = c
        .get(format!("{}?quality=50", edge.preview_url(ID)))
        .header("X-Api-Key", PREVIEW_KEY)
        .header("Accept", "image/jpeg")
        .send()
        .await
        .unwrap();
    assert_eq!(q.status(), 200);
    assert!(fake.paths().iter().any(|p| p.ends_with("/frames/0/preview?quality=50")));
    let f2 = get(&format!("{}/instances/{ID}/frames/2/preview", edge.url), Some(PREVIEW_KEY)).await;
    assert_eq!(header(&f2, "x-cache"), "miss");
    assert_eq!(f2.bytes().await.unwrap(), fake_png(ID, 2));
    assert_eq!(fake.image_requests(), 4);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn hundred_concurrent_cold_requests_make_one_upstream_request() {
    let fake = FakeOrthanc::start().await;
    fake.set_mode(Mode::Slow(Duration::from_millis(300)));
    let edge = TestEdge::builder(&fake.url).start().await;
    let c = client();
    let url = edge.preview_url(ID);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let c = c.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let r = c.get(&url).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
                (r.status().as_u16(), r.bytes().await.unwrap())
            })
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, fake_png(ID, 0));
    }
    assert_eq!(fake.image_requests(), 1);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn waiters_give_up_after_the_flight_wait() {
    let fake = FakeOrthanc::start().await;
    fake.set_mode(Mode::Slow(Duration::from_millis(1500)));
    let edge =
        TestEdge::builder(&fake.url).envs(&[("ORTHANC_EDGE__SERVER__FLIGHT_WAIT_MS", "300")]).start().await;
    let started = Instant::now();
    let r = get(&edge.preview_url(ID), Some(PREVIEW_KEY)).await;
    assert!(started.elapsed() < Duration::from_millis(1400));
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(json_error(r).await.1, "upstream-timeout");
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn revalidation_head_and_conditional_forms() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let c = client();
    let url = edge.preview_url(ID);
    let first = get(&url, Some(PREVIEW_KEY)).await;
    let etag = header(&first, "etag").to_owned();
    let weak = format!("W/{etag}");
    let listed = format!("\"nope\", {etag}");
    for inm in [etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
        let r =
            c.get(&url).header("X-Api-Key", PREVIEW_KEY).header("If-None-Match", inm).send().await.unwrap();
        assert_eq!(r.status(), 304, "If-None-Match: {inm}");
        assert_eq!(header(&r, "etag"), etag);
        assert_eq!(header(&r, "cache-control"), "private, max-age=86400");
        assert!(r.bytes().await.unwrap().is_empty());
    }
    let r = c
        .get(&url)
        .header("X-Api-Key", PREVIEW_KEY)
        .header("If-None-Match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let head = c.head(&url).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "etag"), etag);
    assert_eq!(header(&head, "content-type"), "image/png");
    assert_eq!(header(&head, "content-length"), fake_png(ID, 0).len().to_string());
    assert_eq!(header(&head, "x-cache"), "hit-memory");
    assert!(head.bytes().await.unwrap().is_empty());
    let head_unauth = c.head(&url).send().await.unwrap();
    assert_eq!(head_unauth.status(), 401);
    assert!(head_unauth.headers().get("www-authenticate").is_none());
    assert_eq!(fake.image_requests(), 1);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn orthanc_answers_map_to_documented_errors() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let cases: &[(Mode, u16, &str)] = &[
        (Mode::Status(404), 404, "not-found"),
        (Mode::Status(415), 415, "unsupported-image"),
        (Mode::Status(401), 502, "upstream-auth"),
        (Mode::Status(403), 502, "upstream-auth"),
        (Mode::Status(500), 502, "upstream-error"),
        (Mode::Garbage, 502, "upstream-bad-response"),
        (Mode::WrongType, 502, "upstream-bad-response"),
        (Mode::Huge(2 << 20), 502, "upstream-bad-response"),
        (Mode::Slow(Duration::from_millis(2600)), 504, "upstream-timeout"),
    ];
    let ids = [
        "00000001-00000000-00000000-00000000-00000000",
        "00000002-00000000-00000000-00000000-00000000",
        "00000003-00000000-00000000-00000000-00000000",
        "00000004-00000000-00000000-00000000-00000000",
        "00000005-00000000-00000000-00000000-00000000",
        "00000006-00000000-00000000-00000000-00000000",
        "00000007-00000000-00000000-00000000-00000000",
        "00000008-00000000-00000000-00000000-00000000",
        "00000009-00000000-00000000-00000000-00000000",
    ];
    for ((mode, status, code), id) in cases.iter().zip(ids) {
        fake.set_mode(mode.clone());
        let before = fake.image_requests();
        let r = get(&edge.preview_url(id), Some(PREVIEW_KEY)).await;
        let (s, c, message) = json_error(r).await;
        assert_eq!((s, c.as_str()), (*status, *code), "{mode:?}");
        assert!(!message.contains(ORTHANC_PASSWORD) && !message.contains(ORTHANC_USER));
        // Failures are not cached as images: after Orthanc recovers, the image comes through.
        fake.set_mode(Mode::Normal);
        let again = get(&edge.preview_url(id), Some(PREVIEW_KEY)).await;
        if *status == 404 || *status == 415 {
            assert_eq!(again.status(), *status, "404s and 415s are remembered for negative_ttl_s");
            assert_eq!(fake.image_requests(), before + 1, "negative cache hit");
        } else {
            assert_eq!(again.status(), 200, "{mode:?} must not poison the cache");
            assert_eq!(header(&again, "x-cache"), "miss");
            assert_eq!(again.bytes().await.unwrap(), fake_png(id, 0));
        }
    }
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn wrong_service_credentials_and_unreachable_orthanc() {
    let fake = FakeOrthanc::start().await;
    let edge =
        TestEdge::builder(&fake.url).envs(&[("ORTHANC_EDGE__ORTHANC__PASSWORD", "wrong")]).start().await;
    let r = get(&edge.preview_url(ID), Some(PREVIEW_KEY)).await;
    assert_eq!(fake.bad_auth_requests(), 1);
    let (s, code, _) = json_error(r).await;
    assert_eq!((s, code.as_str()), (502, "upstream-auth"), "an Orthanc 401 is never passed on");
    let ready = get(&format!("{}/readyz", edge.url), None).await;
    assert_eq!(ready.status(), 503);
    edge.stop().await;

    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let edge = TestEdge::builder(&dead).start().await;
    let r = get(&edge.preview_url(ID), Some(PREVIEW_KEY)).await;
    assert!(r.headers().get("retry-after").is_some());
    let (s, code, _) = json_error(r).await;
    assert_eq!((s, code.as_str()), (502, "upstream-unavailable"));
    let health = get(&format!("{}/healthz", edge.url), None).await;
    assert_eq!(health.status(), 200);
    let ready = get(&format!("{}/readyz", edge.url), None).await;
    assert_eq!(ready.status(), 503);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs --features test-hooks")]
async fn corrupted_disk_entry_is_never_served() {
    let fake = FakeOrthanc::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(&fake.url, dir.path(), &[]);
    let edge = TestEdge::start(cfg.clone()).await;
    assert_eq!(get(&edge.preview_url(ID), Some(PREVIEW_KEY)).await.status(), 200);
    // Disk writes happen after the response.
    edge.state.cache.settle_writes(Duration::from_secs(5)).await;
    #[cfg(feature = "test-hooks")]
    {
        let key = format!("p/{ID}/0/png");
        assert!(edge.state.cache.disk().corrupt_for_test(key.as_bytes()).unwrap());
    }
    edge.stop().await;

    let edge = TestEdge::start(cfg).await;
    let r = get(&edge.preview_url(ID), Some(PREVIEW_KEY)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), "miss", "the damaged entry was dropped and refetched");
    assert_eq!(r.bytes().await.unwrap(), fake_png(ID, 0));
    assert_eq!(fake.image_requests(), 2);
    assert_eq!(edge.state.cache.disk().stats.checksum_failures.load(std::sync::atomic::Ordering::Relaxed), 1);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn bad_ids_params_and_keys_get_documented_4xx() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let u = &edge.url;
    let cases: Vec<(String, Option<&str>, u16, &str)> = vec![
        (format!("{u}/instances/not-an-id/preview"), Some(PREVIEW_KEY), 400, "bad-id"),
        (format!("{u}/instances/{}/preview", ID.to_uppercase()), Some(PREVIEW_KEY), 400, "bad-id"),
        (format!("{u}/instances/{ID}/frames/x/preview"), Some(PREVIEW_KEY), 400, "bad-id"),
        (format!("{u}/instances/{ID}/frames/-1/preview"), Some(PREVIEW_KEY), 400, "bad-id"),
        (format!("{u}/instances/{ID}/frames/99999999999/preview"), Some(PREVIEW_KEY), 400, "bad-id"),
        (format!("{u}/instances/{ID}/preview?width=10"), Some(PREVIEW_KEY), 400, "bad-param"),
        // /rendered's sizing is Orthanc's; /preview has none (as Orthanc's).
        (format!("{u}/instances/{ID}/preview?smooth=1"), Some(PREVIEW_KEY), 400, "bad-param"),
        (format!("{u}/instances/{ID}/preview?quality=101"), Some(PREVIEW_KEY), 400, "bad-param"),
        (format!("{u}/instances/{ID}/preview?quality=0"), Some(PREVIEW_KEY), 400, "bad-param"),
        (format!("{u}/instances/{ID}/preview?quality=5&quality=6"), Some(PREVIEW_KEY), 400, "bad-param"),
        (format!("{u}/instances/{ID}/preview"), None, 401, "unauthenticated"),
        (format!("{u}/instances/{ID}/preview"), Some("wrong-key"), 401, "invalid-credentials"),
        (format!("{u}/instances/{ID}/preview"), Some(ADMIN_KEY), 403, "forbidden"),
        // Only preview routes exist: the rest of Orthanc's API is not reachable.
        (format!("{u}/system"), Some(PREVIEW_KEY), 404, "no-route"),
        (format!("{u}/instances/{ID}"), Some(PREVIEW_KEY), 404, "no-route"),
        (format!("{u}/instances/{ID}/file"), Some(PREVIEW_KEY), 404, "no-route"),
        (format!("{u}/instances/{ID}/preview/../../../system"), Some(PREVIEW_KEY), 404, "no-route"),
        (format!("{u}/tools/lookup"), Some(PREVIEW_KEY), 404, "no-route"),
    ];
    for (url, key, status, code) in cases {
        let r = get(&url, key).await;
        let (s, c, message) = json_error(r).await;
        assert_eq!((s, c.as_str()), (status, code), "{url}: {message}");
        assert!(!message.is_empty());
    }
    let named = get(&format!("{u}/instances/{ID}/preview?width=5&foo=1"), Some(PREVIEW_KEY)).await;
    let (_, _, message) = json_error(named).await;
    assert!(message.contains("`width`") && message.contains("`foo`"), "{message}");
    // Bearer works like X-Api-Key.
    let bearer = client().get(edge.preview_url(ID)).bearer_auth(PREVIEW_KEY).send().await.unwrap();
    assert_eq!(bearer.status(), 200);
    let post = client().post(edge.preview_url(ID)).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
    assert_eq!(json_error(post).await.0, 405);
    // Nothing above reached Orthanc except the one bearer request.
    assert_eq!(fake.image_requests(), 1);
    edge.stop().await;
    fake.stop().await;
}

/// Clients built on a base URL with a trailing slash (pyorthanc, many others) send
/// `//instances/...`: the same image, the same cache entry. Monitors that probe with HEAD get 200.
#[actix_web::test]
async fn doubled_slashes_are_one_and_probes_answer_head() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let get = |url: String| async move {
        client().get(url).header("X-Api-Key", PREVIEW_KEY).header("Accept", "image/png").send().await.unwrap()
    };
    let first = get(format!("{}//instances/{ID}/preview?w=32", edge.url)).await;
    assert_eq!((first.status().as_u16(), header(&first, "x-cache")), (200, "miss"));
    for path in [format!("/instances/{ID}/preview?w=32"), format!("/instances//{ID}//preview?w=32")] {
        let r = get(format!("{}{path}", edge.url)).await;
        assert_eq!((r.status().as_u16(), header(&r, "x-cache")), (200, "hit-memory"), "{path}");
    }
    assert_eq!(fake.image_requests(), 1);
    for base in [&edge.url, &edge.admin_url] {
        for probe in ["/healthz", "/readyz", "//healthz"] {
            let r = client().head(format!("{base}{probe}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "HEAD {base}{probe}");
        }
    }
    edge.stop().await;
    fake.stop().await;
}

/// A request's futures hold no miss path: the miss runs in a task of its own (`Leader::run`
/// spawns it) and the shared lookups of authorization are boxed (`Parents::node`,
/// `Delegate::decide`), so a hit moves a few KB of future state. Before, the authorization's
/// future alone was 49 KB (moka's `try_get_with` with Orthanc's and the validator's requests in
/// it), copied on every move of every preview request's future: 11 % of a hit's CPU in memmove.
#[test]
fn a_preview_future_holds_no_miss_path() {
    use orthanc_edge::previews::{Output, PreviewSpec};
    let dir = tempfile::tempdir().unwrap();
    let state =
        orthanc_edge::state::AppState::build(test_config("http://127.0.0.1:9", dir.path(), &[])).unwrap();
    let spec = PreviewSpec {
        instance: orthanc_edge::ids::OrthancId::parse("8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe")
            .unwrap(),
        frame: 0,
        output: Output::Orthanc { format: orthanc_edge::model::ImageFormat::Png, quality: None },
    };
    let client: std::sync::Arc<str> = "client".into();
    let get = std::mem::size_of_val(&state.previews.get(&spec, &client));
    let tile = std::mem::size_of_val(&state.previews.get_or_unsupported_tile(&spec, &client));
    let principal = orthanc_edge::auth::Principal {
        name: "k".into(),
        scopes: std::sync::Arc::from([orthanc_edge::auth::Scope::Preview]),
        restriction: None,
        link: None,
        via: orthanc_edge::auth::Via::ApiKey,
    };
    let authz = std::mem::size_of_val(&state.auth.authorize(
        &principal,
        orthanc_edge::auth::Scope::Preview,
        orthanc_edge::auth::Resource::Instance(&spec.instance),
    ));
    eprintln!("future sizes: get {get} B, get_or_unsupported_tile {tile} B, authorize {authz} B");
    for (what, size) in [("get", get), ("get_or_unsupported_tile", tile), ("authorize", authz)] {
        assert!(size <= 8192, "the {what} future is {size} B");
    }
}

//! Upstream resilience against a fake Orthanc: circuit breaker opens, serves the cache, fails fast, recovers;
//! a slow Orthanc gets a bounded queue; request size limits.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::support::*;

async fn get(url: &str) -> reqwest::Response {
    client().get(url).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap()
}

async fn code_of(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap();
    (status, v["code"].as_str().unwrap_or_default().to_owned())
}

fn id(n: u32) -> String {
    format!("{n:08x}-00000000-00000000-00000000-00000000")
}

#[actix_web::test]
async fn circuit_opens_serves_cache_fails_fast_and_recovers_by_itself() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url)
        .envs(&[
            ("ORTHANC_EDGE__ORTHANC__BREAKER_FAILURES", "3"),
            ("ORTHANC_EDGE__ORTHANC__BREAKER_PROBE_MS", "300"),
        ])
        .start()
        .await;
    // Warm: one original and one variant.
    assert_eq!(get(&edge.preview_url(ID)).await.status(), 200);
    let variant = format!("{}?w=32&format=png", edge.preview_url(ID));
    assert_eq!(get(&variant).await.status(), 200);
    let ready = client().get(format!("{}/readyz", edge.url)).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    fake.set_mode(Mode::Status(500));
    for n in 0..3 {
        let (s, code) = code_of(get(&edge.preview_url(&id(n))).await).await;
        assert_eq!((s, code.as_str()), (502, "upstream-error"));
    }
    assert_eq!(edge.state.health.breaker().state().as_str(), "open");
    let before = fake.image_requests();
    let started = Instant::now();
    for n in 10..30 {
        let r = get(&edge.preview_url(&id(n))).await;
        let retry: u64 = header(&r, "retry-after").parse().unwrap();
        assert!((1..=2).contains(&retry), "Retry-After {retry}");
        let (s, code) = code_of(r).await;
        assert_eq!((s, code.as_str()), (503, "upstream-circuit-open"));
    }
    assert!(started.elapsed() < Duration::from_millis(500), "open circuit fails fast");
    assert_eq!(fake.image_requests(), before, "no request reaches Orthanc while open");
    // Cached images, and new variants of a cached source, are still served.
    for url in [edge.preview_url(ID), variant, format!("{}?w=20&format=jpeg", edge.preview_url(ID))] {
        let r = get(&url).await;
        assert_eq!(r.status(), 200, "{url}");
    }
    // Still in rotation: an edge that serves its cache must not be taken out because Orthanc is down.
    let ready = client().get(format!("{}/readyz", edge.url)).send().await.unwrap();
    assert_eq!(ready.status(), 200, "Orthanc answered once: degraded, not unready");
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!((ready["status"].as_str(), ready["circuit"].as_str()), (Some("degraded"), Some("open")));
    assert_eq!(ready["orthanc"], "upstream-error");

    // Orthanc recovers: the background probe closes the circuit without any client request.
    fake.set_mode(Mode::Normal);
    let deadline = Instant::now() + Duration::from_secs(5);
    while edge.state.health.breaker().state().as_str() == "open" {
        assert!(Instant::now() < deadline, "circuit did not close");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(&edge.preview_url(&id(10))).await.status(), 200);
    let stats = &edge.state.health.breaker().stats;
    assert_eq!(stats.opened.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(stats.closed.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(stats.rejected.load(std::sync::atomic::Ordering::Relaxed), 20);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn slow_orthanc_gets_a_bounded_queue_and_every_answer_is_in_time() {
    let fake = FakeOrthanc::start().await;
    fake.set_mode(Mode::Slow(Duration::from_millis(1500)));
    let edge = TestEdge::builder(&fake.url)
        .envs(&[
            ("ORTHANC_EDGE__ORTHANC__MAX_CONCURRENCY", "2"),
            ("ORTHANC_EDGE__ORTHANC__MAX_WAITING", "4"),
            ("ORTHANC_EDGE__ORTHANC__TIMEOUT_MS", "1000"),
            ("ORTHANC_EDGE__ORTHANC__BREAKER_FAILURES", "0"),
        ])
        .start()
        .await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let url = edge.preview_url(&id(n));
            tokio::spawn(async move {
                let t = Instant::now();
                let r = get(&url).await;
                let retry = r.headers().contains_key("retry-after");
                let (s, code) = code_of(r).await;
                (s, code, retry, t.elapsed())
            })
        })
        .collect();
    let mut busy = 0;
    let mut timeouts = 0;
    for t in tasks {
        let (s, code, retry, took) = t.await.unwrap();
        assert!(retry, "{s} {code} without Retry-After");
        assert!(took < Duration::from_millis(1600), "{code} took {took:?}, more than timeout + margin");
        match (s, code.as_str()) {
            (503, "upstream-busy") => busy += 1,
            (504, "upstream-timeout") => timeouts += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(busy + timeouts, 40);
    assert!(timeouts <= 6, "at most max_concurrency + max_waiting wait: {timeouts}");
    assert!(busy >= 34, "{busy}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        fake.image_requests() <= 2 + 4,
        "Orthanc never sees more than the slots: {}",
        fake.image_requests()
    );
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn oversized_urls_and_headers_are_refused_with_json() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let long = format!("{}?w=1{}", edge.preview_url(ID), "0".repeat(3000));
    let (s, code) = code_of(get(&long).await).await;
    assert_eq!((s, code.as_str()), (414, "uri-too-long"));
    let r = client()
        .get(edge.preview_url(ID))
        .header("X-Api-Key", PREVIEW_KEY)
        .header("X-Junk", "a".repeat(20_000))
        .send()
        .await
        .unwrap();
    let (s, code) = code_of(r).await;
    assert_eq!((s, code.as_str()), (431, "headers-too-large"));
    // Past actix's own 128 KiB bound the connection is refused before any handler; the edge lives on.
    let huge = client().get(edge.preview_url(ID)).header("X-Junk", "a".repeat(200_000)).send().await;
    if let Ok(r) = huge {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    assert_eq!(get(&edge.preview_url(ID)).await.status(), 200);
    assert_eq!(fake.image_requests(), 1);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn slow_clients_are_cut_off_and_do_not_hold_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url)
        .envs(&[("ORTHANC_EDGE__SERVER__REQUEST_TIMEOUT_MS", "500")])
        .start()
        .await;
    let addr = edge.url.trim_start_matches("http://").to_owned();
    // 50 slowloris connections: a request line, then one header byte now and then.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ").await.unwrap();
        slow.push(s);
    }
    // A normal client is served meanwhile.
    let t = Instant::now();
    assert_eq!(client().get(format!("{}/healthz", edge.url)).send().await.unwrap().status(), 200);
    assert!(t.elapsed() < Duration::from_millis(300));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Each slow connection was answered 408 or closed by the server.
    let mut closed = 0;
    for mut s in slow {
        let _ = s.write_all(b"b").await;
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(n)) if buf[..n].starts_with(b"HTTP/1.1 408") => closed += 1,
            other => panic!("slow connection still open: {other:?}"),
        }
    }
    assert_eq!(closed, 50);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn flood_of_distinct_cache_busting_urls_stays_bounded() {
    let fake = FakeOrthanc::start().await;
    let memory: u64 = 2 << 20;
    let edge = TestEdge::builder(&fake.url)
        .envs(&[
            ("ORTHANC_EDGE__CACHE__MEMORY_BYTES", &memory.to_string()),
            ("ORTHANC_EDGE__TRANSFORM__WORKERS", "1"),
            ("ORTHANC_EDGE__TRANSFORM__QUEUE", "4"),
        ])
        .start()
        .await;
    let started = Instant::now();
    let mut outcomes = std::collections::BTreeMap::new();
    // 40 waves of 50 concurrent requests, every URL distinct.
    for wave in 0..40u32 {
        let tasks: Vec<_> = (0..50u32)
            .map(|i| {
                let url = format!("{}?w={}&h={}&format=png", edge.preview_url(ID), 1 + i, 1 + wave);
                tokio::spawn(async move {
                    let r = get(&url).await;
                    let s = r.status().as_u16();
                    let code = if s == 200 { String::new() } else { code_of(r).await.1 };
                    (s, code)
                })
            })
            .collect();
        for t in tasks {
            *outcomes.entry(t.await.unwrap()).or_insert(0u32) += 1;
        }
    }
    eprintln!("2000 distinct URLs in {:?}: {outcomes:?}", started.elapsed());
    for (s, code) in outcomes.keys() {
        assert!(*s == 200 || (*s == 503 && code == "overloaded"), "{s} {code}");
    }
    assert_eq!(fake.image_requests(), 1, "one Orthanc render for every size of one frame");
    assert!(edge.state.cache.memory().weighted_size().await <= memory, "memory tier within its bound");
    assert_eq!(edge.state.previews.in_flight(), 0, "no fill left behind");
    assert_eq!(get(&edge.preview_url(ID)).await.status(), 200);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn presets_only_mode_refuses_arbitrary_sizes() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url)
        .envs(&[("ORTHANC_EDGE__TRANSFORM__ALLOW_ARBITRARY", "false")])
        .start()
        .await;
    let (s, code) = code_of(get(&format!("{}?w=77", edge.preview_url(ID))).await).await;
    assert_eq!((s, code.as_str()), (400, "bad-param"));
    assert_eq!(get(&format!("{}?preset=thumb", edge.preview_url(ID))).await.status(), 200);
    assert_eq!(fake.image_requests(), 1);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn a_client_past_its_miss_budget_gets_429_for_new_images_only() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url)
        .envs(&[
            ("ORTHANC_EDGE__TRANSFORM__MISSES_PER_MINUTE", "6"),
            ("ORTHANC_EDGE__TRANSFORM__MISS_BURST", "3"),
            ("ORTHANC_EDGE__AUTH__JWT__SECRET", JWT_SECRET),
        ])
        .start()
        .await;
    let sized = |w: u32| format!("{}?w={w}&format=png", edge.preview_url(ID));
    // The burst: three new images (the first also fetches the source).
    for w in [10, 11, 12] {
        assert_eq!(get(&sized(w)).await.status(), 200, "w={w}");
    }
    let renders = fake.image_requests();
    let r = get(&sized(13)).await;
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    assert_eq!(code_of(r).await, (429, "too-many-misses".to_owned()));
    assert_eq!(fake.image_requests(), renders, "a refused miss reaches nothing");
    // Its cached images are still served, as are other clients' new ones.
    assert_eq!(get(&sized(11)).await.status(), 200);
    let now = jsonwebtoken::get_current_timestamp();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "another-viewer", "exp": now + 60}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let other = client().get(sized(13)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(other.status(), 200, "another client has its own budget");
    edge.stop().await;
    fake.stop().await;
}

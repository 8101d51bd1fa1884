//! Operations surface: `/metrics` on the admin listener (families, counters that move), Server-Timing.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::support::*;

async fn scrape(edge: &TestEdge) -> String {
    let r = client().get(format!("{}/metrics", edge.admin_url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    r.text().await.unwrap()
}

/// The value of one series (`name{labels}` exactly as exposed), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.split_whitespace().next().unwrap().parse().unwrap())
        .unwrap_or(0.0)
}

const LOOKUP: &str = "orthanc_edge_cache_lookups_total";
const PREVIEW_200: &str =
    "orthanc_edge_http_requests_total{route=\"/instances/{id}/preview\",method=\"GET\",status=\"200\"}";

#[actix_web::test]
async fn metrics_families_and_counters_move() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let c = client();
    let before = scrape(&edge).await;

    let miss = c.get(edge.preview_url(ID)).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
    assert_eq!(miss.headers()["x-cache"], "miss");
    let timing = miss.headers()["server-timing"].to_str().unwrap().to_owned();
    assert!(timing.starts_with("cache;desc=miss, upstream;dur="), "{timing}");
    assert!(timing.contains("total;dur="), "{timing}");
    let after_miss = scrape(&edge).await;
    let d = |series: &str, a: &str, b: &str| value(b, series) - value(a, series);
    assert_eq!(d(&format!("{LOOKUP}{{outcome=\"miss\"}}"), &before, &after_miss), 1.0);
    assert_eq!(d(&format!("{LOOKUP}{{outcome=\"hit-memory\"}}"), &before, &after_miss), 0.0);
    let ok = "orthanc_edge_upstream_requests_total{op=\"image\",outcome=\"ok\"}";
    assert_eq!(d(ok, &before, &after_miss), 1.0);

    let hit = c.get(edge.preview_url(ID)).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
    assert_eq!(hit.headers()["x-cache"], "hit-memory");
    let timing = hit.headers()["server-timing"].to_str().unwrap().to_owned();
    assert!(timing.starts_with("cache;desc=hit-memory, total;dur="), "{timing}");
    // A variant: a source fetch plus a transform job.
    let v = c
        .get(format!("{}?w=32&format=png", edge.preview_url(ID2)))
        .header("X-Api-Key", PREVIEW_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(v.status(), 200);
    assert!(v.headers()["server-timing"].to_str().unwrap().contains("transform;dur="));
    // Denials by reason.
    assert_eq!(c.get(edge.preview_url(ID)).send().await.unwrap().status(), 401);
    let r = c.get(edge.preview_url(ID)).header("X-Api-Key", ADMIN_KEY).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Disk writes happen after the response, on the writer thread: let them land.
    edge.state.cache.settle_writes(Duration::from_secs(5)).await;
    let after = scrape(&edge).await;

    assert_eq!(d(&format!("{LOOKUP}{{outcome=\"miss\"}}"), &after_miss, &after), 1.0, "the variant");
    assert_eq!(d(&format!("{LOOKUP}{{outcome=\"hit-memory\"}}"), &after_miss, &after), 1.0);
    assert_eq!(d(PREVIEW_200, &before, &after), 3.0);
    let denied = |reason: &str| format!("orthanc_edge_auth_denials_total{{reason=\"{reason}\"}}");
    assert_eq!(d(&denied("unauthenticated"), &before, &after), 1.0);
    assert_eq!(d(&denied("forbidden"), &before, &after), 1.0);
    assert!(d("orthanc_edge_transform_duration_seconds_count", &before, &after) >= 2.0);
    // Orthanc's preview and the variant; the variant's source stays in memory.
    assert!(value(&after, "orthanc_edge_cache_entries{tier=\"disk\"}") >= 2.0, "{after}");
    assert!(value(&after, "orthanc_edge_cache_bytes{tier=\"memory\"}") > 0.0);
    assert_eq!(value(&after, "orthanc_edge_draining"), 0.0);
    for family in [
        "orthanc_edge_http_requests",
        "orthanc_edge_http_request_duration_seconds",
        "orthanc_edge_cache_lookups",
        "orthanc_edge_cache_bytes",
        "orthanc_edge_cache_entries",
        "orthanc_edge_cache_evictions",
        "orthanc_edge_cache_checksum_failures",
        "orthanc_edge_cache_disk_write_errors",
        "orthanc_edge_upstream_requests",
        "orthanc_edge_upstream_request_duration_seconds",
        "orthanc_edge_single_flight_waiters",
        "orthanc_edge_single_flight_joins",
        "orthanc_edge_transform_queue_depth",
        "orthanc_edge_transform_duration_seconds",
        "orthanc_edge_transform_rejected",
        "orthanc_edge_auth_denials",
        "orthanc_edge_warm_jobs",
        "orthanc_edge_warm_items",
        "orthanc_edge_draining",
    ] {
        assert!(after.contains(&format!("# HELP {family} ")), "family {family} missing");
    }
    // Secrets never appear in the exposition.
    for secret in [PREVIEW_KEY, ADMIN_KEY, ORTHANC_PASSWORD] {
        assert!(!after.contains(secret));
    }
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn metrics_only_on_the_admin_listener_and_probes_on_both() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let c = client();
    let r = c.get(format!("{}/metrics", edge.url)).send().await.unwrap();
    assert_eq!(r.status(), 404, "no metrics on the public listener");
    let r = c.get(edge.preview_url(ID)).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(format!("{}/instances/{ID}/preview", edge.admin_url)).send().await.unwrap();
    assert_eq!(r.status(), 404, "no images on the admin listener");
    // Label values stay bounded: an invented method is counted as `other`.
    let brew = reqwest::Method::from_bytes(b"BREW").unwrap();
    assert_eq!(c.request(brew, edge.preview_url(ID)).send().await.unwrap().status(), 405);
    let text = scrape(&edge).await;
    assert!(text.contains("method=\"other\",status=\"405\"} 1"), "{text}");
    assert!(!text.contains("BREW"));
    for base in [&edge.url, &edge.admin_url] {
        assert_eq!(c.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
        assert_eq!(c.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    }
    // Draining (server.drain_delay_ms): unready, but still serving.
    edge.state.lifecycle.begin_drain();
    for base in [&edge.url, &edge.admin_url] {
        let r = c.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 503, "unready while draining");
        assert_eq!(c.get(format!("{base}/healthz")).send().await.unwrap().status(), 200, "still alive");
    }
    let r = c.get(edge.preview_url(ID)).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
    assert_eq!(r.status(), 200, "served during the drain delay");
    // Then refusing: new requests on open connections get 503 and are told to reconnect.
    edge.state.lifecycle.stop_admitting();
    let r = c.get(edge.preview_url(ID)).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["connection"], "close");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "shutting-down");
    assert_eq!(value(&scrape(&edge).await, "orthanc_edge_draining"), 1.0);
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn disk_upstream_and_breaker_counters_are_exported() {
    let fake = FakeOrthanc::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(&fake.url, dir.path(), &[("ORTHANC_EDGE__ORTHANC__BREAKER_FAILURES", "1")]);
    let edge = TestEdge::start(cfg.clone()).await;
    let c = client();
    let r = c.get(edge.preview_url(ID)).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
    assert_eq!(r.status(), 200);
    edge.state.cache.settle_writes(Duration::from_secs(5)).await;
    // One failure opens the circuit; the next miss is refused at once.
    fake.set_mode(Mode::Status(500));
    for expected in [502, 503] {
        let r = c.get(edge.preview_url(ID2)).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
        assert_eq!(r.status(), expected);
    }
    let text = scrape(&edge).await;
    for series in [
        "orthanc_edge_cache_disk_writes_skipped_total",
        "orthanc_edge_cache_disk_read_errors_total",
        "orthanc_edge_cache_disk_verified_total",
        "orthanc_edge_upstream_queue_timeouts_total",
        "orthanc_edge_upstream_circuit_changes_total{to=\"closed\"}",
        "orthanc_edge_upstream_circuit_probes_total{outcome=\"ok\"}",
        "orthanc_edge_upstream_circuit_probes_total{outcome=\"failed\"}",
    ] {
        assert!(text.lines().any(|l| l.starts_with(&format!("{series} "))), "missing {series} in\n{text}");
    }
    assert_eq!(value(&text, "orthanc_edge_upstream_circuit_changes_total{to=\"open\"}"), 1.0);
    assert_eq!(value(&text, "orthanc_edge_upstream_circuit_rejected_total"), 1.0);
    edge.stop().await;

    // After a restart the start-up scan verifies the entry the first edge stored.
    fake.set_mode(Mode::Normal);
    let edge = TestEdge::start(cfg).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while value(&scrape(&edge).await, "orthanc_edge_cache_disk_verified_total") < 1.0 {
        assert!(std::time::Instant::now() < deadline, "the start-up scan was not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    edge.stop().await;
    fake.stop().await;
}

//! No amplification, against a fake Orthanc: repeated unknown ids and UIDs, readiness probes and
//! bursts of metadata requests cost Orthanc a bounded number of requests.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use orthanc_edge::cache::{CacheKey, Entry};
use orthanc_edge::ids::OrthancId;
use serde_json::json;

/// A session token limited to `study`: every instance it asks for needs its parents from Orthanc.
fn study_token(study: &str) -> String {
    let claims = json!({"sub": "a", "exp": jsonwebtoken::get_current_timestamp() + 300, "studies": [study]});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn status(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.unwrap().status().as_u16()
}

#[actix_web::test]
async fn an_unknown_instance_is_looked_up_once_for_a_restricted_token() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).jwt_secret(JWT_SECRET).start().await;
    let token = study_token(&synth_id('c', 1));
    let url = edge.preview_url(ID2);
    let first = status(client().get(&url).bearer_auth(&token)).await;
    assert!(matches!(first, 403 | 404), "{first}");
    let asked = fake.parent_lookups();
    assert!(asked >= 1);
    for _ in 0..49 {
        assert_eq!(status(client().get(&url).bearer_auth(&token)).await, first);
    }
    assert_eq!(fake.parent_lookups(), asked, "50 requests, one GET /instances/{{id}}");
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn an_unknown_uid_is_looked_up_once() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let url = format!("{}/dicom-web/studies/1.2.3.4.999/series/1.2.3.4.998/thumbnail", edge.url);
    let get = || client().get(&url).header("X-Api-Key", PREVIEW_KEY);
    assert_eq!(status(get()).await, 404);
    let asked = fake.uid_lookups();
    assert!(asked >= 1);
    for _ in 0..49 {
        assert_eq!(status(get()).await, 404);
    }
    assert_eq!(fake.uid_lookups(), asked, "50 requests, one POST /tools/lookup per UID");
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn readiness_pings_orthanc_at_most_once_a_second() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let url = format!("{}/readyz", edge.url);
    let started = Instant::now();
    for _ in 0..100 {
        assert_eq!(status(client().get(&url)).await, 200);
    }
    // Concurrent probes share one ping.
    let burst: Vec<_> = (0..100).map(|_| status(client().get(&url))).collect();
    for s in futures_util::future::join_all(burst).await {
        assert_eq!(s, 200);
    }
    let seconds = started.elapsed().as_secs() as usize;
    let pings = fake.pings();
    assert!(pings >= 1 && pings <= seconds + 2, "200 probes in {seconds} s: {pings} pings");
    let body: serde_json::Value = client().get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["orthanc"], "ok");
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn metadata_requests_pass_a_bounded_gate() {
    let fake = FakeOrthanc::start().await;
    fake.set_metadata_delay(Duration::from_millis(150));
    let edge = TestEdge::builder(&fake.url)
        .jwt_secret(JWT_SECRET)
        .envs(&[("ORTHANC_EDGE__ORTHANC__MAX_METADATA_CONCURRENCY", "2")])
        .start()
        .await;
    let token = study_token(&synth_id('c', 1));
    // Twelve distinct unknown instances at once: each needs its own GET /instances/{id}.
    let requests: Vec<_> = (0..12)
        .map(|n| status(client().get(edge.preview_url(&synth_id('a', n))).bearer_auth(&token)))
        .collect();
    let gauge = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        edge.state.health.metadata_load()
    };
    let (statuses, (in_flight, waiting)) =
        futures_util::join!(futures_util::future::join_all(requests), gauge);
    for s in statuses {
        assert!(matches!(s, 403 | 404), "{s}");
    }
    assert_eq!(fake.parent_lookups(), 12);
    assert!(fake.max_metadata_in_flight() <= 2, "at most 2 at Orthanc: {}", fake.max_metadata_in_flight());
    assert_eq!(in_flight, 2, "the gate was full");
    assert!(waiting >= 1, "the rest queued: {waiting}");
    assert_eq!(edge.state.health.metadata_load(), (0, 0));
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn a_404_purges_only_that_instance_and_is_remembered() {
    let fake = FakeOrthanc::start().await;
    let edge = TestEdge::builder(&fake.url).start().await;
    let memory = edge.state.cache.memory().clone();
    // Many other entries, and one cached image of an instance Orthanc no longer has.
    for n in 0..5_000 {
        let key = CacheKey {
            instance: OrthancId::parse(&synth_id('d', n)).unwrap(),
            frame: 0,
            variant: "png".into(),
        };
        memory.insert(key, Arc::new(Entry::new("image/png", vec![1u8; 16].into()))).await;
    }
    let gone = OrthancId::parse(ID).unwrap();
    let key = CacheKey { instance: gone.clone(), frame: 0, variant: "png".into() };
    memory.insert(key.clone(), Arc::new(Entry::new("image/png", fake_png(ID, 0).into()))).await;
    // A variant not cached yet reaches Orthanc, which answers 404: the instance was deleted.
    fake.set_mode(Mode::Status(404));
    let variant = format!("{}?w=32&format=png", edge.preview_url(ID));
    let get = || client().get(&variant).header("X-Api-Key", PREVIEW_KEY);
    assert_eq!(status(get()).await, 404);
    assert!(memory.get(&key).await.is_none(), "the deleted instance's cached image is purged");
    assert_eq!(memory.indexed_keys(&gone), 0);
    assert_eq!(memory.indexed_total().await, 5_000, "nothing else is");
    let asked = fake.image_requests();
    for _ in 0..20 {
        assert_eq!(status(get()).await, 404);
    }
    assert_eq!(fake.image_requests(), asked, "remembered: no new Orthanc request");
    edge.stop().await;
    fake.stop().await;
}

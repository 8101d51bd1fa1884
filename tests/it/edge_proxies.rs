//! The client address behind reverse proxies (`server.trusted_proxies`): the failed-auth limit per real client, no spoofing from untrusted peers, IPv6 /64 keys, the access line's `client`.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::support::*;
use actix_web::test::TestRequest;

/// A config with a tight failed-auth limit (a burst of 3) and `trusted` as the proxies.
fn config(fake: &FakeOrthanc, dir: &std::path::Path, trusted: &str) -> orthanc_edge::config::Config {
    test_config(
        &fake.url,
        dir,
        &[
            ("ORTHANC_EDGE__AUTH__RATE_LIMIT__FAILURES_PER_MINUTE", "6"),
            ("ORTHANC_EDGE__AUTH__RATE_LIMIT__BURST", "3"),
            ("ORTHANC_EDGE__SERVER__TRUSTED_PROXIES", trusted),
        ],
    )
}

async fn status(c: &reqwest::Client, url: &str, key: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut r = c.get(url).header("X-Api-Key", key);
    for (n, v) in headers {
        r = r.header(*n, *v);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    (s, body["code"].as_str().unwrap_or("").to_owned())
}

fn ok() -> (u16, String) {
    (200, String::new())
}

fn err(s: u16, code: &str) -> (u16, String) {
    (s, code.to_owned())
}

#[actix_web::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_failure_budget() {
    let fake = FakeOrthanc::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The test's TCP peer is 127.0.0.1: the "ingress".
    let edge = TestEdge::start(config(&fake, dir.path(), r#"["127.0.0.1/32"]"#)).await;
    let url = edge.preview_url(ID);
    let c = client();
    let guesser = [("X-Forwarded-For", "198.51.100.66, 203.0.113.1")];
    for _ in 0..3 {
        assert_eq!(status(&c, &url, "guess", &guesser).await, err(401, "invalid-credentials"));
    }
    assert_eq!(status(&c, &url, "guess", &guesser).await, err(429, "too-many-failures"));
    assert_eq!(status(&c, &url, PREVIEW_KEY, &guesser).await, err(429, "too-many-failures"));
    // Another client through the same proxy is not locked out, whichever header names it.
    let other = [("X-Forwarded-For", "203.0.113.2")];
    assert_eq!(status(&c, &url, PREVIEW_KEY, &other).await, ok());
    assert_eq!(status(&c, &url, "guess", &other).await, err(401, "invalid-credentials"));
    let rfc = [("Forwarded", r#"for="[2001:db8:1:9::5]:4711";proto=https"#)];
    assert_eq!(status(&c, &url, PREVIEW_KEY, &rfc).await, ok());
    // Nor is the proxy itself (its probes, requests without the header).
    assert_eq!(status(&c, &url, PREVIEW_KEY, &[]).await, ok());

    // IPv6 clients are counted by /64: another address in the guesser's /64 is the same client.
    let v6 = |a: &'static str| [("X-Forwarded-For", a)];
    for _ in 0..3 {
        assert_eq!(status(&c, &url, "guess", &v6("2001:db8:1:2::1")).await, err(401, "invalid-credentials"));
    }
    assert_eq!(status(&c, &url, "guess", &v6("2001:db8:1:2::1")).await, err(429, "too-many-failures"));
    let same64 = v6("2001:db8:1:2:ffff:ffff:ffff:fffe");
    assert_eq!(status(&c, &url, PREVIEW_KEY, &same64).await, err(429, "too-many-failures"));
    assert_eq!(status(&c, &url, PREVIEW_KEY, &v6("2001:db8:1:3::1")).await, ok());
    // An IPv4-mapped address is the IPv4 client.
    let mapped = v6("::ffff:203.0.113.1");
    assert_eq!(status(&c, &url, PREVIEW_KEY, &mapped).await, err(429, "too-many-failures"));
    edge.stop().await;
    fake.stop().await;
}

#[actix_web::test]
async fn forged_forwarding_headers_from_an_untrusted_peer_do_not_reset_the_limit() {
    let fake = FakeOrthanc::start().await;
    for trusted in ["[]", r#"["10.0.0.0/8", "fd00::/8"]"#] {
        let dir = tempfile::tempdir().unwrap();
        let edge = TestEdge::start(config(&fake, dir.path(), trusted)).await;
        let url = edge.preview_url(ID);
        let c = client();
        let forged = |i: u32| {
            let xff = format!("198.51.100.{i}");
            let fwd = format!("for=198.51.100.{i}");
            (xff, fwd)
        };
        for i in 0..3 {
            let (xff, fwd) = forged(i);
            let h = [("X-Forwarded-For", xff.as_str()), ("Forwarded", fwd.as_str())];
            assert_eq!(status(&c, &url, "guess", &h).await, err(401, "invalid-credentials"), "{trusted}");
        }
        let (xff, fwd) = forged(99);
        let h = [("X-Forwarded-For", xff.as_str()), ("Forwarded", fwd.as_str())];
        assert_eq!(status(&c, &url, "guess", &h).await, err(429, "too-many-failures"), "{trusted}");
        assert_eq!(
            status(&c, &url, PREVIEW_KEY, &[("X-Forwarded-For", "10.1.2.3")]).await,
            err(429, "too-many-failures")
        );
        assert_eq!(status(&c, &url, PREVIEW_KEY, &[]).await, err(429, "too-many-failures"));
        edge.stop().await;
    }
    fake.stop().await;
}

/// A `MakeWriter` that keeps what the JSON formatter writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix_web::test]
async fn the_access_line_names_the_client_and_ipv6_peers_share_their_64() {
    let fake = FakeOrthanc::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&fake, dir.path(), r#"["10.0.0.0/8"]"#);
    let state = orthanc_edge::state::AppState::build(cfg).unwrap();
    let call = in_process(state).await;
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let req = |peer: &str, xff: Option<&str>, key: &str| {
        let mut r =
            TestRequest::get().uri(&format!("/instances/{ID}/preview")).peer_addr(peer.parse().unwrap());
        if let Some(x) = xff {
            r = r.insert_header(("X-Forwarded-For", x));
        }
        r.insert_header(("X-Api-Key", key))
    };
    let r = call(req("10.0.0.1:40000", Some("192.0.2.200, 203.0.113.77"), PREVIEW_KEY)).await;
    assert_eq!(r.status, 200);
    let r = call(req("192.0.2.5:40000", Some("203.0.113.78"), PREVIEW_KEY)).await;
    assert_eq!(r.status, 200);
    // Two IPv6 peers in one /64: one failure budget; a neighbouring /64 has its own.
    for _ in 0..3 {
        assert_eq!(call(req("[2001:db8:5:6::1]:1", None, "guess")).await.status, 401);
    }
    assert_eq!(call(req("[2001:db8:5:6::2]:1", None, "guess")).await.code(), "too-many-failures");
    assert_eq!(call(req("[2001:db8:5:6:abcd::9]:1", None, PREVIEW_KEY)).await.status, 429);
    assert_eq!(call(req("[2001:db8:5:7::1]:1", None, PREVIEW_KEY)).await.status, 200);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let access: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "orthanc_edge::access")
        .collect();
    let clients: Vec<&str> = access.iter().map(|v| v["fields"]["client"].as_str().unwrap_or("")).collect();
    assert_eq!(
        clients,
        [
            "203.0.113.77",
            "192.0.2.5",
            "2001:db8:5:6::1",
            "2001:db8:5:6::1",
            "2001:db8:5:6::1",
            "2001:db8:5:6::2",
            "2001:db8:5:6:abcd::9",
            "2001:db8:5:7::1"
        ],
        "{text}"
    );
    fake.stop().await;
}

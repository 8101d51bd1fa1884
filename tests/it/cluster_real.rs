//! Three edges as one cluster (static peers on loopback) in front of one real Orthanc, each
//! edge through its own counting proxy, reached round-robin: one Orthanc fetch per image
//! whichever edges serve it, warm-ups and purges cluster-wide, a dead edge costing nothing but
//! latency, one /changes follower, and peer routes closed to anyone without the secret.

#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

const SECRET: &str = "cluster-secret-0123456789abcdef-0123";
const WEBP: &str = "image/webp,*/*;q=0.8";

/// Three edges, each with its own proxy in front of the same Orthanc.
struct Cluster {
    edges: Vec<Option<TestEdge>>,
    proxies: Vec<CountingProxy>,
    /// Each edge's peer URL.
    peers: Vec<String>,
}

/// A loopback port free now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Cluster {
    async fn start(r: &RealOrthanc, extra: &[(&str, &str)]) -> Self {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let peers: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
        let list = serde_json::to_string(&peers).unwrap();
        let mut edges = Vec::new();
        let mut proxies = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let proxy = CountingProxy::start(&r.url).await;
            let listen = format!("127.0.0.1:{port}");
            let edge = r
                .edge(&proxy.url)
                .env("ORTHANC_EDGE__CLUSTER__SELF_URL", &peers[i])
                .env("ORTHANC_EDGE__CLUSTER__PEERS", &list)
                .env("ORTHANC_EDGE__CLUSTER__SECRET", SECRET)
                .env("ORTHANC_EDGE__CLUSTER__LISTEN", &listen)
                .env("ORTHANC_EDGE__CLUSTER__PROBE_MS", "200")
                .envs(extra)
                .start()
                .await;
            edges.push(Some(edge));
            proxies.push(proxy);
        }
        Self { edges, proxies, peers }
    }

    fn edge(&self, i: usize) -> &TestEdge {
        self.edges[i].as_ref().unwrap()
    }

    /// Image requests all proxies saw for `instance` ("" for all).
    fn fetches(&self, instance: &str) -> usize {
        self.proxies.iter().map(|p| p.image_fetches(instance)).sum()
    }

    async fn stop(mut self) {
        for edge in self.edges.iter_mut().filter_map(Option::take) {
            edge.stop().await;
        }
        for p in self.proxies {
            p.stop().await;
        }
    }
}

async fn get(edge: &TestEdge, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", edge.url))
        .header("X-Api-Key", PREVIEW_KEY)
        .header("Accept", WEBP)
        .send()
        .await
        .unwrap()
}

fn x_cache(r: &reqwest::Response) -> String {
    header(r, "x-cache").to_owned()
}

/// Every instance of the manifest.
fn instances(r: &RealOrthanc) -> Vec<String> {
    r.manifest["instances"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["instance"].as_str().unwrap().to_owned())
        .collect()
}

/// What `PATHS` cost Orthanc for each instance through one edge alone (no cluster): the
/// reference three edges must equal.
async fn single_edge_costs(r: &RealOrthanc) -> Vec<(String, usize)> {
    let proxy = CountingProxy::start(&r.url).await;
    let edge = r.edge(&proxy.url).start().await;
    let mut costs = Vec::new();
    for id in instances(r) {
        for path in PATHS {
            assert_eq!(get(&edge, &path.replace("{id}", &id)).await.status(), 200);
        }
        costs.push((id.clone(), proxy.image_fetches(&id)));
    }
    edge.stop().await;
    proxy.stop().await;
    costs
}

/// What each instance's images cost: the thumbnail and the full preview, through every edge.
const PATHS: [&str; 2] = ["/instances/{id}/preview?preset=thumb", "/instances/{id}/preview"];

#[actix_web::test]
async fn every_image_read_through_three_edges_costs_orthanc_one_fetch() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let costs = single_edge_costs(&r).await;
    let c = Cluster::start(&r, &[]).await;
    let mut peer_hops = 0;
    for (n, (id, cost)) in costs.into_iter().enumerate() {
        for path in PATHS {
            let path = path.replace("{id}", &id);
            // Round-robin: each instance starts on another edge, then goes through the other two.
            for k in 0..3 {
                let resp = get(c.edge((n + k) % 3), &path).await;
                assert_eq!(resp.status(), 200, "{path} via edge {}", (n + k) % 3);
                let status = x_cache(&resp);
                peer_hops += usize::from(status == "hit-peer");
                assert!(
                    ["miss", "hit-peer", "hit-memory", "hit-disk"].contains(&status.as_str()),
                    "{status}"
                );
            }
        }
        assert_eq!(c.fetches(&id), cost, "instance {id}: its images through every edge, as through one");
    }
    assert!(peer_hops > 0, "non-owners asked the owner");
    // A second round, all edges: the copies and the owners answer; Orthanc is not asked.
    let before = c.fetches("");
    for id in instances(&r) {
        for k in 0..3 {
            let resp = get(c.edge(k), &PATHS[0].replace("{id}", &id)).await;
            assert_eq!(resp.status(), 200);
            assert!(x_cache(&resp).starts_with("hit-"), "{}", x_cache(&resp));
        }
    }
    assert_eq!(c.fetches(""), before);
    let metrics =
        client().get(format!("{}/metrics", c.edge(0).admin_url)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("orthanc_edge_cluster_peers{state=\"up\"} 3"), "{metrics}");
    assert!(metrics.contains("orthanc_edge_peer_requests_total{op=\"image\""), "{metrics}");
    assert!(metrics.contains("orthanc_edge_cluster_owner_hit_ratio"), "{metrics}");
    c.stop().await;
}

async fn warm(edge: &TestEdge, body: Value) -> Value {
    let resp = client()
        .post(format!("{}/warm", edge.url))
        .header("X-Api-Key", WARM_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = progress(edge, &id).await;
        if p["state"] == "done" {
            return p;
        }
        assert!(Instant::now() < deadline, "warm-up did not finish: {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /warm/{id}` through `edge`.
async fn progress(edge: &TestEdge, id: &str) -> Value {
    let resp =
        client().get(format!("{}/warm/{id}", edge.url)).header("X-Api-Key", WARM_KEY).send().await.unwrap();
    resp.json().await.unwrap()
}

#[actix_web::test]
async fn a_warm_up_or_a_purge_posted_to_one_edge_is_the_clusters() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let c = Cluster::start(&r, &[]).await;
    let study = r.manifest["study"].as_str().unwrap().to_owned();
    let all = instances(&r);
    // The thumbnail alone: one source per instance, two where Orthanc cannot render it.
    let one_edge: usize = r.manifest["instances"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| if v["preview_status"] == 200 { 1 } else { 2 })
        .sum();
    let p = warm(c.edge(0), json!({"studies": [study], "presets": ["thumb"]})).await;
    assert_eq!(p["failed"], 0, "{p}");
    assert_eq!(p["done"].as_u64().unwrap() as usize, all.len() * 2, "thumb in WebP and JPEG: {p}");
    // The job ran on edge 0; its progress is found through the others too.
    let id = p["id"].as_str().unwrap();
    let other = progress(c.edge(2), id).await;
    assert_eq!(other["id"], p["id"], "{other}");
    let warmed = c.fetches("");
    assert_eq!(warmed, one_edge, "one source fetch per instance");
    // Each edge made only what it owns.
    assert!(c.proxies.iter().filter(|p| p.image_fetches("") > 0).count() >= 2, "the work went to the owners");
    for id in &all {
        for k in [1, 2] {
            let resp = get(c.edge(k), &PATHS[0].replace("{id}", id)).await;
            assert_eq!(resp.status(), 200);
            assert!(x_cache(&resp).starts_with("hit-"), "warmed: {}", x_cache(&resp));
        }
    }
    assert_eq!(c.fetches(""), warmed, "reads through the other edges cost Orthanc nothing");

    // A purge through edge 1 reaches every edge: the next read anywhere is a miss.
    let resp = purge_study(&c.edge(1).url, &study, ADMIN_KEY).await;
    assert_eq!(resp.status(), 200);
    let report: Value = resp.json().await.unwrap();
    assert_eq!(report["edges"].as_array().unwrap().len(), 3, "{report}");
    assert!(report["entries"].as_u64().unwrap() >= (all.len() * 2) as u64, "{report}");
    for (n, id) in all.iter().enumerate() {
        for k in 0..3 {
            let edge = (n + k) % 3;
            let resp = get(c.edge(edge), &PATHS[0].replace("{id}", id)).await;
            assert_eq!(resp.status(), 200);
            let want = if k == 0 { "miss" } else { "hit" };
            assert!(x_cache(&resp).starts_with(want), "after the purge, via edge {edge}: {}", x_cache(&resp));
        }
    }
    c.stop().await;
}

#[actix_web::test]
async fn with_one_edge_dead_the_others_answer_everything_and_a_purge_names_it() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let mut c = Cluster::start(&r, &[]).await;
    let study = r.manifest["study"].as_str().unwrap().to_owned();
    c.edges[2].take().unwrap().stop().await;
    let started = Instant::now();
    for id in instances(&r) {
        for k in 0..2 {
            let resp = get(c.edge(k), &PATHS[0].replace("{id}", &id)).await;
            assert_eq!(resp.status(), 200, "{id} via edge {k}");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(30), "a dead peer costs latency once, not per request");
    let resp = purge_study(&c.edge(0).url, &study, ADMIN_KEY).await;
    assert_eq!(resp.status(), 502);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "purge-incomplete", "{body}");
    assert_eq!(body["unreachable"], json!([c.peers[2]]), "{body}");
    assert_eq!(body["edges"].as_array().unwrap().len(), 2, "{body}");
    assert!(body["entries"].as_u64().unwrap() > 0, "{body}");
    c.stop().await;
}

#[actix_web::test]
async fn peer_routes_need_the_secret_and_are_not_on_the_public_listener() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let c = Cluster::start(&r, &[]).await;
    let id = &instances(&r)[0];
    let body = json!({"spec": {"instance": id, "frame": 0, "output": {"Orthanc": {"format": "png", "quality": null}}},
        "client": null, "priority": "Interactive"});
    let peer = &c.peers[0];
    for secret in [None, Some(""), Some("wrong"), Some(&SECRET[..SECRET.len() - 1])] {
        let mut req = client().post(format!("{peer}/peer/v1/image")).json(&body);
        if let Some(s) = secret {
            req = req.header("x-orthanc-edge-peer", s);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{secret:?}");
        assert!(resp.headers().get("www-authenticate").is_none());
        assert_eq!(resp.json::<Value>().await.unwrap()["code"], "peer-secret");
    }
    for path in ["/peer/v1/purge", "/peer/v1/health", "/instances/x/preview"] {
        let resp = client().get(format!("{peer}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{path}: refused before routing");
    }
    assert_eq!(c.fetches(""), 0, "nothing reached Orthanc");
    // The public listener has no peer routes, with or without the secret.
    let resp = client()
        .post(format!("{}/peer/v1/image", c.edge(0).url))
        .header("x-orthanc-edge-peer", SECRET)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // With the secret, the peer listener serves the image.
    let resp = client()
        .post(format!("{peer}/peer/v1/image"))
        .header("x-orthanc-edge-peer", SECRET)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    c.stop().await;
}

#[actix_web::test]
async fn one_edge_follows_changes_and_a_new_study_is_warmed_once() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let follow = [("ORTHANC_EDGE__WARM__FOLLOW_CHANGES", "true"), ("ORTHANC_EDGE__WARM__POLL_MS", "200")];
    let mut c = Cluster::start(&r, &follow).await;
    let followers: Vec<_> = (0..3).map(|i| orthanc_edge::spawn_follower(&c.edge(i).state).unwrap()).collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let polling: Vec<usize> = c.proxies.iter().map(|p| p.requests_to("/changes")).collect();
    assert_eq!(polling.iter().filter(|n| **n > 0).count(), 1, "one edge follows /changes: {polling:?}");
    let leader = polling.iter().position(|n| *n > 0).unwrap();

    let gen = tempfile::tempdir().unwrap();
    let study = (1000 + std::process::id() % 100_000).to_string();
    let ok = std::process::Command::new("python3")
        // A study this Orthanc has not seen (the test may run again on the same Orthanc).
        .args(["scripts/dev/gen_dicom.py", gen.path().to_str().unwrap(), "--study", &study, "--slices", "0"])
        .status()
        .unwrap();
    assert!(ok.success());
    let mut new = Vec::new();
    for name in ["ct16.dcm", "rgb8.dcm"] {
        let v: Value = client()
            .post(format!("{}/instances", r.url))
            .basic_auth(&r.user, Some(&r.password))
            .body(std::fs::read(gen.path().join(name)).unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        new.push(v["ID"].as_str().unwrap().to_owned());
    }
    // Warmed on each instance's owner: look in the disk tiers without making anything.
    let deadline = Instant::now() + Duration::from_secs(40);
    for id in &new {
        let key = format!("p/{id}/0/preview.w128.h128.contain.webp.q80");
        while !(0..3).any(|i| c.edge(i).state.cache.disk().get(key.as_bytes()).unwrap().is_some()) {
            assert!(Instant::now() < deadline, "the new study was not warmed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(c.fetches(id), 1, "{id} fetched once, by its owner");
    }
    // The leader stops: another edge takes over /changes.
    for f in &followers {
        if followers.iter().position(|g| std::ptr::eq(g, f)) == Some(leader) {
            f.abort();
        }
    }
    c.edges[leader].take().unwrap().stop().await;
    let before: Vec<usize> = c.proxies.iter().map(|p| p.requests_to("/changes")).collect();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after: Vec<usize> = c.proxies.iter().map(|p| p.requests_to("/changes")).collect();
    let took_over: Vec<usize> = (0..3).filter(|i| *i != leader && after[*i] > before[*i]).collect();
    assert_eq!(took_over.len(), 1, "one edge took over: {before:?} -> {after:?}");
    for f in followers {
        f.abort();
    }
    c.stop().await;
}

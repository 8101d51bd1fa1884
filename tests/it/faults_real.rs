//! Faults against the real binary and a real Orthanc (scripts/ci/it-orthanc.sh): Orthanc stopped
//! mid-load and restarted, Orthanc made slow by a delaying proxy, 20 rounds of kill -9 under a
//! writer load, and a cache folder on a full filesystem.
//!
//! These tests stop and slow the shared Orthanc: scripts/test.sh runs them one at a time, after
//! the other tests (`-E 'test(/^faults_real::/)' --test-threads 1`). Needs ORTHANC_EDGE_IT_* like
//! edge_real.rs, plus ORTHANC_EDGE_IT_DIR (to pause/resume Orthanc) and, for the disk-full test,
//! ORTHANC_EDGE_IT_SMALLFS (a small tmpfs made by scripts/test.sh). Skipped without them, unless
//! ORTHANC_EDGE_IT_REQUIRED=1.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::RealOrthanc;
use serde_json::Value;

const KEY: &str = "faults-test-key";
const TIMEOUT_MS: u64 = 2000;

fn var(n: &str) -> Option<String> {
    std::env::var(n).ok().filter(|v| !v.is_empty())
}

fn skip(why: &str) {
    assert!(var("ORTHANC_EDGE_IT_REQUIRED").as_deref() != Some("1"), "{why}: run through scripts/test.sh");
    eprintln!("skipped: {why}");
}

fn id(r: &RealOrthanc, name: &str) -> String {
    r.instance(name, "instance")
}

/// Pause or resume the shared Orthanc (scripts/dev/orthanc.sh on ORTHANC_EDGE_IT_DIR).
fn orthanc_sh(cmd: &str) {
    let dir = var("ORTHANC_EDGE_IT_DIR").expect("ORTHANC_EDGE_IT_DIR");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/dev/orthanc.sh");
    let st = Command::new(script).arg(cmd).arg(dir).status().unwrap();
    assert!(st.success(), "orthanc.sh {cmd} failed");
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().no_gzip().timeout(Duration::from_secs(30)).build().unwrap()
}

/// The edge binary as a child process. `env` are ORTHANC_EDGE__* overrides.
struct Edge {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Edge {
    fn start(
        r: &RealOrthanc,
        orthanc_url: &str,
        cache_dir: &Path,
        work: &Path,
        env: &[(&str, String)],
    ) -> Edge {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pw_file = work.join("orthanc-password");
        std::fs::write(&pw_file, format!("{}\n", r.password)).unwrap();
        let config = work.join("edge.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\nworkers = 2\n\
                 [orthanc]\nurl = \"{orthanc_url}\"\nusername = \"{}\"\npassword_file = \"{}\"\n\
                 timeout_ms = {TIMEOUT_MS}\n\
                 [cache]\ndir = \"{}\"\n\
                 [[auth.api_keys]]\nname = \"it\"\nhash = \"{}\"\nscopes = [\"preview\"]\n\
                 [log]\nfilter = \"info\"\nformat = \"json\"\n",
                r.user,
                pw_file.display(),
                cache_dir.display(),
                orthanc_edge::auth::hash_key(KEY)
            ),
        )
        .unwrap();
        let log = work.join(format!("edge-{port}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orthanc-edge"));
        cmd.args(["serve", "--config"]).arg(&config).env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
        let mut edge = Edge { child, url: format!("http://127.0.0.1:{port}"), log };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = edge.child.try_wait().unwrap() {
                panic!("edge exited at start ({st}): {}", edge.log_text());
            }
            if let Ok(resp) = http().get(format!("{}/healthz", edge.url)).send() {
                if resp.status() == 200 {
                    return edge;
                }
            }
            assert!(Instant::now() < deadline, "edge not up: {}", edge.log_text());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, path: &str, accept: &str) -> Result<reqwest::blocking::Response, reqwest::Error> {
        http().get(format!("{}{path}", self.url)).header("X-Api-Key", KEY).header("Accept", accept).send()
    }

    fn kill9(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of Orthanc that can delay each chunk the edge sends (a slow Orthanc).
struct Proxy {
    url: String,
    delay_ms: Arc<AtomicU64>,
    open: Arc<AtomicUsize>,
    max_open: Arc<AtomicUsize>,
}

impl Proxy {
    fn start(target: &str) -> Proxy {
        let target = target.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let delay_ms = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let max_open = Arc::new(AtomicUsize::new(0));
        let (d, o, m) = (delay_ms.clone(), open.clone(), max_open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(upstream) = TcpStream::connect(&target) else {
                    continue; // Orthanc down: the edge sees its connection closed
                };
                let n = o.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(n, Ordering::SeqCst);
                let (d, o) = (d.clone(), o.clone());
                let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                std::thread::spawn(move || {
                    pump(client, upstream, Some(d));
                    o.fetch_sub(1, Ordering::SeqCst);
                });
                std::thread::spawn(move || pump(u2, c2, None));
            }
        });
        Proxy { url, delay_ms, open, max_open }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, delay: Option<Arc<AtomicU64>>) {
    let mut buf = [0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(d) = &delay {
                    let ms = d.load(Ordering::SeqCst);
                    if ms > 0 {
                        std::thread::sleep(Duration::from_millis(ms));
                    }
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

#[derive(Default)]
struct Tally {
    by_outcome: Mutex<HashMap<String, usize>>,
    slowest_ms: AtomicU64,
}

impl Tally {
    fn add(&self, outcome: String, took: Duration) {
        *self.by_outcome.lock().unwrap().entry(outcome).or_default() += 1;
        self.slowest_ms.fetch_max(took.as_millis() as u64, Ordering::SeqCst);
    }
}

/// Status and code of an edge answer ("200" for images), checking Retry-After on 5xx.
fn outcome(resp: reqwest::blocking::Response) -> String {
    let status = resp.status().as_u16();
    if status == 200 {
        return "200".into();
    }
    let retry = resp.headers().contains_key("retry-after");
    let v: Value = resp.json().unwrap_or(Value::Null);
    let code = v["code"].as_str().unwrap_or("?");
    if status >= 500 {
        assert!(retry, "{status} {code} without Retry-After");
    }
    format!("{status} {code}")
}

#[test]
fn orthanc_stopped_mid_load_then_restarted_edge_recovers_by_itself() {
    let Some(r) = RealOrthanc::from_env() else { return };
    if var("ORTHANC_EDGE_IT_DIR").is_none() {
        return skip("ORTHANC_EDGE_IT_DIR not set");
    }
    let work = tempfile::tempdir().unwrap();
    let env: Vec<(&str, String)> = vec![
        ("ORTHANC_EDGE__ORTHANC__BREAKER_FAILURES", "5".into()),
        ("ORTHANC_EDGE__ORTHANC__BREAKER_PROBE_MS", "300".into()),
    ];
    let mut edge = Edge::start(&r, &r.url, &work.path().join("cache"), work.path(), &env);
    let ids: Vec<String> = ["ct16", "cr_mono1", "rgb8", "multiframe3"].iter().map(|n| id(&r, n)).collect();
    // Warm 8 cached previews.
    let cached: Vec<(String, &str)> = ids
        .iter()
        .flat_map(|id| {
            [
                (format!("/instances/{id}/preview"), "image/png"),
                (format!("/instances/{id}/preview"), "image/jpeg"),
            ]
        })
        .collect();
    for (p, a) in &cached {
        assert_eq!(edge.get(p, a).unwrap().status(), 200);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(Tally::default());
    let misses = Arc::new(Tally::default());
    let next_q = Arc::new(AtomicUsize::new(1));
    let mut threads = vec![];
    for t in 0..4 {
        let (stop, hits, misses, next_q) = (stop.clone(), hits.clone(), misses.clone(), next_q.clone());
        let (url, cached, ids) = (edge.url.clone(), cached.clone(), ids.clone());
        threads.push(std::thread::spawn(move || {
            let c = http();
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let started = Instant::now();
                if t % 2 == 0 {
                    let (p, a) = &cached[i % cached.len()];
                    let resp =
                        c.get(format!("{url}{p}")).header("X-Api-Key", KEY).header("Accept", *a).send();
                    hits.add(resp.map(outcome).unwrap_or_else(|e| format!("error {e}")), started.elapsed());
                } else {
                    // A new window each time: a source Orthanc must render (truly uncached).
                    let n = next_q.fetch_add(1, Ordering::SeqCst);
                    let id = &ids[n % ids.len()];
                    let p = format!("/instances/{id}/rendered?window-center={n}&window-width=400");
                    let resp = c.get(format!("{url}{p}")).header("X-Api-Key", KEY).send();
                    misses.add(resp.map(outcome).unwrap_or_else(|e| format!("error {e}")), started.elapsed());
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(800));
    orthanc_sh("pause");
    let stopped_at = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let hits_during: HashMap<String, usize> = hits.by_outcome.lock().unwrap().clone();
    let misses_during: HashMap<String, usize> = misses.by_outcome.lock().unwrap().clone();
    let slowest_miss = misses.slowest_ms.load(Ordering::SeqCst);
    orthanc_sh("resume");
    let resumed_at = Instant::now();
    // Recovery without restarting the edge: uncached previews succeed again.
    let mut recovered = None;
    while resumed_at.elapsed() < Duration::from_secs(15) {
        let n = 100_000 + resumed_at.elapsed().as_millis() as usize;
        let p = format!("/instances/{}/rendered?window-center={n}&window-width=400", ids[0]);
        if edge.get(&p, "*/*").map(|r| r.status() == 200).unwrap_or(false) {
            recovered = Some(resumed_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    eprintln!("orthanc paused {:?}; cached: {hits_during:?}; uncached: {misses_during:?}; slowest uncached {slowest_miss} ms; recovered after {recovered:?}", stopped_at.elapsed());
    assert!(edge.alive());
    assert_eq!(hits_during.len(), 1, "cached previews: 100% success while Orthanc is down: {hits_during:?}");
    assert!(hits_during["200"] > 50);
    let allowed = [
        "200",
        "502 upstream-unavailable",
        "503 upstream-circuit-open",
        "504 upstream-timeout",
        "502 upstream-error",
    ];
    for k in misses_during.keys() {
        assert!(allowed.contains(&k.as_str()), "uncached outcome {k}");
    }
    assert!(misses_during.contains_key("503 upstream-circuit-open"), "circuit opened: {misses_during:?}");
    assert!(slowest_miss <= TIMEOUT_MS + 500, "an uncached request took {slowest_miss} ms");
    assert!(recovered.is_some(), "edge did not recover after Orthanc came back");
    let log = edge.log_text();
    assert!(log.contains("circuit open") && log.contains("circuit closed"), "breaker logged");
}

#[test]
fn slow_orthanc_behind_a_delaying_proxy_bounded_waiters() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let proxy = Proxy::start(&r.url);
    let work = tempfile::tempdir().unwrap();
    let env: Vec<(&str, String)> = vec![
        ("ORTHANC_EDGE__ORTHANC__MAX_CONCURRENCY", "4".into()),
        ("ORTHANC_EDGE__ORTHANC__MAX_WAITING", "8".into()),
        ("ORTHANC_EDGE__ORTHANC__BREAKER_FAILURES", "0".into()),
    ];
    let edge = Edge::start(&r, &proxy.url, &work.path().join("cache"), work.path(), &env);
    let id = id(&r, "ct16");
    let cached = format!("/instances/{id}/preview");
    assert_eq!(edge.get(&cached, "image/png").unwrap().status(), 200);
    proxy.delay_ms.store(1500, Ordering::SeqCst);
    let tally = Arc::new(Tally::default());
    let threads: Vec<_> = (0..60)
        .map(|n| {
            // Distinct windows: distinct sources, each one Orthanc request (no single flight to share).
            let p = format!("/instances/{id}/rendered?window-center={n}&window-width=300");
            let (url, tally) = (edge.url.clone(), tally.clone());
            std::thread::spawn(move || {
                let t = Instant::now();
                let resp = http().get(format!("{url}{p}")).header("X-Api-Key", KEY).send().unwrap();
                tally.add(outcome(resp), t.elapsed());
            })
        })
        .collect();
    // Cached previews stay fast while Orthanc is slow and the queue is full.
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(edge.get(&cached, "image/png").unwrap().status(), 200);
        assert!(t.elapsed() < Duration::from_millis(200), "hit took {:?}", t.elapsed());
    }
    for t in threads {
        t.join().unwrap();
    }
    proxy.delay_ms.store(0, Ordering::SeqCst);
    let by: HashMap<String, usize> = tally.by_outcome.lock().unwrap().clone();
    let slowest = tally.slowest_ms.load(Ordering::SeqCst);
    eprintln!(
        "slow Orthanc, 60 concurrent misses: {by:?}; slowest {slowest} ms; proxy max open connections {}",
        proxy.max_open.load(Ordering::SeqCst)
    );
    for k in by.keys() {
        // 502 upstream-unavailable: a pooled keep-alive connection the proxy closed under us.
        assert!(
            ["200", "503 upstream-busy", "504 upstream-timeout", "502 upstream-unavailable"]
                .contains(&k.as_str()),
            "{k}"
        );
    }
    assert!(by.get("503 upstream-busy").copied().unwrap_or(0) >= 60 - 12, "beyond 4 + 8, refused at once");
    assert!(slowest <= TIMEOUT_MS + 500, "slowest {slowest} ms");
    let _ = proxy.open.load(Ordering::SeqCst);
}

/// Key `n` of the crash test. The first ORTHANC_KEYS are Orthanc's own bytes (JPEG /preview at
/// quality 1..=100 of 6 frames), compared with Orthanc's answer; the rest are edge-made variants
/// (a new size each), compared with the bytes first acknowledged for them (variants are
/// deterministic, so a lost entry made again gives the same bytes).
const ORTHANC_KEYS: usize = 600;

fn crash_key(frames: &[(String, u32)], n: usize) -> String {
    if n < ORTHANC_KEYS {
        let (id, f) = &frames[n % frames.len()];
        format!("/instances/{id}/frames/{f}/preview?quality={}", 1 + (n / frames.len()) % 100)
    } else {
        let (id, f) = &frames[n % 4];
        format!(
            "/instances/{id}/frames/{f}/preview?w={}&h={}&format=jpeg",
            16 + n % 997,
            16 + (n / 997) % 997
        )
    }
}

#[test]
fn kill_9_under_writes_never_serves_a_corrupt_image() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let rounds: usize = var("CRASH_ROUNDS").and_then(|v| v.parse().ok()).unwrap_or(20);
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let mf = id(&r, "multiframe3");
    let frames: Arc<Vec<(String, u32)>> = Arc::new(vec![
        (id(&r, "ct16"), 0),
        (id(&r, "cr_mono1"), 0),
        (id(&r, "rgb8"), 0),
        (mf.clone(), 0),
        (mf.clone(), 1),
        (mf, 2),
    ]);
    // Key → blake3 of its acknowledged bytes (what a later answer must equal).
    let acked: Arc<Mutex<HashMap<usize, blake3::Hash>>> = Arc::default();
    let mut rng = 0x9e3779b97f4a7c15u64;
    let mut rand = move |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    };
    let (mut from_disk, mut refetched, mut checked, mut moved_aside, mut dropped) = (0, 0, 0, 0, 0);
    let next = Arc::new(AtomicUsize::new(0));
    let mut last_round: Vec<usize> = vec![];
    let check = |edge: &Edge, n: usize, want: blake3::Hash, round: usize| -> bool {
        let p = crash_key(&frames, n);
        let resp = edge.get(&p, "image/jpeg").unwrap();
        assert_eq!(resp.status(), 200, "round {round} {p}");
        let from = resp.headers()["x-cache"].to_str().unwrap().to_owned();
        let body = resp.bytes().unwrap();
        assert!(
            blake3::hash(&body) == want,
            "round {round}: {p} ({from}) differs from the acknowledged bytes: CORRUPT"
        );
        if n < ORTHANC_KEYS {
            assert!(
                body == r.direct_blocking(&p, "image/jpeg").1,
                "round {round}: {p} differs from Orthanc's bytes"
            );
        }
        from == "hit-disk"
    };
    for round in 0..rounds {
        let edge = Edge::start(&r, &r.url, &cache, work.path(), &[]);
        // Read back what the last round acknowledged (the writes the kill could hit) and a sample
        // of older keys: each is absent (refetched) or byte-identical.
        let all: Vec<(usize, blake3::Hash)> = acked.lock().unwrap().iter().map(|(k, v)| (*k, *v)).collect();
        let map: HashMap<usize, blake3::Hash> = all.iter().copied().collect();
        let mut sample: Vec<usize> = last_round.clone();
        for _ in 0..30.min(all.len()) {
            sample.push(all[rand(all.len() as u64) as usize].0);
        }
        for n in sample {
            if check(&edge, n, map[&n], round) {
                from_disk += 1;
            } else {
                refetched += 1;
            }
            checked += 1;
        }
        let log = edge.log_text();
        if log.contains("moving it aside") {
            moved_aside += 1;
        }
        if log.contains("damaged entries dropped") {
            dropped += 1;
        }
        // Writer load: 3 threads, each request a new key, killed at a random moment.
        let stop = Arc::new(AtomicBool::new(false));
        let this_round: Arc<Mutex<Vec<usize>>> = Arc::default();
        let writers: Vec<_> = (0..3)
            .map(|_| {
                let (url, stop, acked, next) = (edge.url.clone(), stop.clone(), acked.clone(), next.clone());
                let (frames, this_round) = (frames.clone(), this_round.clone());
                std::thread::spawn(move || {
                    let c = http();
                    while !stop.load(Ordering::SeqCst) {
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        let p = crash_key(&frames, n);
                        let Ok(resp) = c
                            .get(format!("{url}{p}"))
                            .header("X-Api-Key", KEY)
                            .header("Accept", "image/jpeg")
                            .send()
                        else {
                            break;
                        };
                        if resp.status() != 200 {
                            continue;
                        }
                        if let Ok(body) = resp.bytes() {
                            acked.lock().unwrap().insert(n, blake3::hash(&body));
                            this_round.lock().unwrap().push(n);
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + rand(900)));
        edge.kill9();
        stop.store(true, Ordering::SeqCst);
        for w in writers {
            w.join().unwrap();
        }
        last_round = this_round.lock().unwrap().clone();
    }
    // A last start, then every key ever acknowledged.
    let edge = Edge::start(&r, &r.url, &cache, work.path(), &[]);
    let all: Vec<(usize, blake3::Hash)> = acked.lock().unwrap().iter().map(|(k, v)| (*k, *v)).collect();
    let (mut final_disk, mut final_refetched) = (0, 0);
    for (n, want) in &all {
        if check(&edge, *n, *want, rounds) {
            final_disk += 1;
        } else {
            final_refetched += 1;
        }
    }
    eprintln!(
        "kill -9: {rounds} rounds, {} keys acknowledged; per-round read-backs {checked} ({from_disk} from disk, \
         {refetched} absent and refetched); final read-back of all: {final_disk} from disk, {final_refetched} \
         refetched; 0 corrupt; 0 start-up failures; {moved_aside} folders moved aside; {dropped} starts dropped damaged entries",
        all.len()
    );
    assert!(from_disk + final_disk > 0, "some entries survived the kills");
}

#[test]
fn full_disk_keeps_answering_200() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let Some(smallfs) = var("ORTHANC_EDGE_IT_SMALLFS") else {
        return skip("ORTHANC_EDGE_IT_SMALLFS not set");
    };
    let work = tempfile::tempdir().unwrap();
    let cache = PathBuf::from(&smallfs).join(format!("cache-{}", std::process::id()));
    let env: Vec<(&str, String)> = vec![
        ("ORTHANC_EDGE__CACHE__DISK_BYTES", (1u64 << 30).to_string()),
        ("ORTHANC_EDGE__CACHE__MEMORY_BYTES", (64u64 << 20).to_string()),
    ];
    let mut edge = Edge::start(&r, &r.url, &cache, work.path(), &env);
    let ids: Vec<String> = ["cr_mono1", "rgb8", "ct16"].iter().map(|n| id(&r, n)).collect();
    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (url, ids, tally, next) = (edge.url.clone(), ids.clone(), tally.clone(), next.clone());
            std::thread::spawn(move || {
                let c = http();
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= 450 {
                        break;
                    }
                    // Big, distinct PNG variants: the small filesystem fills within the first hundred.
                    let p = format!("/instances/{}/preview?w={}&format=png", ids[n % 3], 2048 - n);
                    let t = Instant::now();
                    let resp = c.get(format!("{url}{p}")).header("X-Api-Key", KEY).send().unwrap();
                    tally.add(outcome(resp), t.elapsed());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let by: HashMap<String, usize> = tally.by_outcome.lock().unwrap().clone();
    let df = Command::new("df").arg("-k").arg(&smallfs).output().unwrap();
    let df = String::from_utf8_lossy(&df.stdout).into_owned();
    eprintln!("full disk: {by:?}; slowest {} ms\n{df}", tally.slowest_ms.load(Ordering::SeqCst));
    assert_eq!(by.get("200"), Some(&450), "every request answered 200: {by:?}");
    assert!(edge.alive(), "edge alive");
    // Still serving: from memory, and new misses from Orthanc.
    for p in [
        format!("/instances/{}/preview?w=2048&format=png", ids[0]),
        format!("/instances/{}/preview?w=7&format=png", ids[1]),
    ] {
        assert_eq!(edge.get(&p, "*/*").unwrap().status(), 200, "{p}");
    }
    let log = edge.log_text();
    assert!(log.contains("disk cache write failed"), "the full disk was noticed and logged");
    drop(edge);
    let _ = std::fs::remove_dir_all(&cache);
}

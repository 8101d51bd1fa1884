//! The real binary under SIGTERM: in-flight requests finish, new ones are refused, readiness drops,
//! exit code 0, and the disk tier reopens with what was written. Also checks the JSON access lines.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::*;
use orthanc_edge::auth::hash_key;
use orthanc_edge::cache::DiskCache;

/// `orthanc-edge serve --config cfg_path`, and its stderr lines as they come.
fn serve(cfg_path: &std::path::Path) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orthanc-edge"))
        .args(["serve", "--config"])
        .arg(cfg_path)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{i:08x}-22222222-33333333-44444444-55555555")).collect()
}

/// Wait for a JSON log line satisfying `pred`, collecting every line seen into `seen`.
fn wait_line(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    limit: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    let deadline = Instant::now() + limit;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = rx.recv_timeout(left) else { break };
        seen.push(line.clone());
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            if pred(&v) {
                return Some(v);
            }
        }
    }
    None
}

#[actix_web::test]
async fn sigterm_drains_in_flight_refuses_new_and_exits_zero() {
    let fake = FakeOrthanc::start().await;
    fake.set_mode(Mode::Slow(Duration::from_millis(1500)));
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let cfg_path = dir.path().join("edge.toml");
    let mut f = std::fs::File::create(&cfg_path).unwrap();
    write!(
        f,
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 2
shutdown_grace_s = 10
[orthanc]
url = "{url}"
username = "{ORTHANC_USER}"
password = "{ORTHANC_PASSWORD}"
timeout_ms = 5000
[cache]
dir = "{dir}"
[[auth.api_keys]]
name = "viewer"
hash = "{hash}"
scopes = ["preview"]
[log]
format = "json"
filter = "info"
"#,
        url = fake.url,
        dir = cache_dir.display(),
        hash = hash_key(PREVIEW_KEY),
    )
    .unwrap();
    drop(f);

    let (mut child, rx) = serve(&cfg_path);
    let mut seen = Vec::new();
    let started =
        wait_line(&rx, &mut seen, Duration::from_secs(20), |v| v["message"] == "orthanc-edge serving")
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("edge did not start: {seen:#?}")
            });
    let base = format!("http://{}", started["listen"].as_str().unwrap());
    let admin = format!("http://{}", started["admin_listen"].as_str().unwrap());
    let c = client();
    assert_eq!(c.get(format!("{admin}/readyz")).send().await.unwrap().status(), 200);

    // Slow misses in flight...
    let ids = ids(4);
    let mut inflight = Vec::new();
    for id in &ids {
        let url = format!("{base}/instances/{id}/preview");
        inflight.push(tokio::spawn(async move {
            let r = client().get(url).header("X-Api-Key", PREVIEW_KEY).send().await.unwrap();
            (
                r.status().as_u16(),
                r.headers()["x-cache"].to_str().unwrap().to_owned(),
                r.bytes().await.unwrap(),
            )
        }));
    }
    let t = Instant::now();
    while fake.image_requests() < ids.len() {
        assert!(t.elapsed() < Duration::from_secs(5), "requests did not reach Orthanc");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...then SIGTERM.
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let term_at = Instant::now();

    // Readiness drops at once (the admin listener outlives the drain).
    let mut unready = false;
    while term_at.elapsed() < Duration::from_secs(1) {
        if c.get(format!("{admin}/readyz")).send().await.is_ok_and(|r| r.status() == 503) {
            unready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(unready, "/readyz did not turn 503 within 1 s of SIGTERM");
    // New requests are refused: connection refused, a connection closed without an answer (it
    // raced the listener's close), or 503 shutting-down; never served, never hanging.
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let refused = fresh
        .get(format!("{base}/instances/{}/preview", ID))
        .header("X-Api-Key", PREVIEW_KEY)
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    match refused {
        Err(e) => assert!(!e.is_timeout(), "a new request hung during the drain: {e}"),
        Ok(r) => assert_eq!(r.status(), 503, "a new request during drain must be refused"),
    }
    assert!(fake.image_requests() == ids.len(), "a refused request reached Orthanc");

    // In-flight requests complete with their images.
    for (task, id) in inflight.into_iter().zip(&ids) {
        let (status, cache, body) = task.await.unwrap();
        assert_eq!(status, 200, "in-flight request for {id} was cut");
        assert_eq!(cache, "miss");
        assert_eq!(body.as_ref(), fake_png(id, 0).as_slice());
    }
    // Exit 0, within the grace.
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "edge did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    wait_line(&rx, &mut seen, Duration::from_secs(2), |_| false);

    // The JSON access lines: one per request, with the principal's name and never a secret.
    let access: Vec<serde_json::Value> = seen
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "orthanc_edge::access")
        .collect();
    let images: Vec<_> = access.iter().filter(|v| v["route"] == "/instances/{id}/preview").collect();
    assert!(images.len() >= ids.len(), "{access:#?}");
    let ok = images.iter().find(|v| v["status"] == 200).unwrap();
    for field in ["request_id", "method", "cache", "bytes", "upstream_ms", "transform_ms", "elapsed_ms"] {
        assert!(!ok[field].is_null(), "access line lacks {field}: {ok}");
    }
    assert_eq!(ok["principal"], "viewer");
    assert_eq!(ok["cache"], "miss");
    assert!(ok["upstream_ms"].as_f64().unwrap() >= 1400.0, "{ok}");
    for line in &seen {
        assert!(!line.contains(PREVIEW_KEY) && !line.contains(ORTHANC_PASSWORD), "secret in log: {line}");
    }

    // The disk tier reopens cleanly with every image written before the exit.
    let disk = DiskCache::open(&cache_dir, 1 << 30).unwrap();
    assert_eq!(disk.len(), ids.len());
    let moved = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().contains("broken"));
    assert!(!moved, "the cache folder was moved aside: it did not reopen cleanly");
    fake.stop().await;
}

/// A generated key may start with '-' (`secrets.token_urlsafe` does 1 time in 32): `hash-key`
/// hashes it rather than reading it as an option.
#[test]
fn hash_key_takes_a_key_that_starts_with_a_hyphen() {
    for key in ["-Eabc", "--x", "plain"] {
        let out = Command::new(env!("CARGO_BIN_EXE_orthanc-edge")).args(["hash-key", key]).output().unwrap();
        assert!(out.status.success(), "hash-key {key}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), hash_key(key), "hash-key {key}");
    }
}

/// `orthanc-edge token` mints what the edge accepts: an unrestricted session, one restricted to a
/// study (another study is 403), and a signed link that serves its own URL.
#[actix_web::test]
async fn the_token_command_mints_what_the_edge_accepts() {
    let fake = FakeOrthanc::start().await;
    const STUDY: &str = "0e1437e1-8e289db9-3ecf395f-d8aae463-f4bb49fe";
    const SERIES: &str = "3ecf395f-0e1437e1-8e289db9-d8aae463-f4bb49fe";
    fake.add_instance(ID, SERIES, STUDY);
    fake.add_instance(
        ID2,
        "3ecf395f-0e1437e1-8e289db9-d8aae463-00000002",
        "0e1437e1-8e289db9-3ecf395f-d8aae463-00000002",
    );
    let edge = TestEdge::builder(&fake.url).jwt_secret(JWT_SECRET).start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("edge.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[orthanc]\nurl = \"{}\"\nusername = \"u\"\npassword = \"p\"\n[cache]\ndir = \"{}\"\n[auth.jwt]\nsecret = \"{JWT_SECRET}\"\n[auth.sign]\npublic_url = \"{}\"\n",
            fake.url,
            dir.path().join("cache").display(),
            edge.url
        ),
    )
    .unwrap();
    let token = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_orthanc-edge"))
            .arg("token")
            .args(args)
            .arg("--config")
            .arg(&cfg_path)
            .output()
            .unwrap();
        assert!(out.status.success(), "token {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let status = |url: String| async move { client().get(url).send().await.unwrap().status().as_u16() };
    let any = token(&["--sub", "alice", "--lifetime", "10m"]);
    assert_eq!(status(format!("{}?token={any}", edge.preview_url(ID))).await, 200);
    let one = token(&["--sub", "alice", "--study", STUDY]);
    assert_eq!(status(format!("{}?token={one}", edge.preview_url(ID))).await, 200);
    assert_eq!(status(format!("{}?token={one}", edge.preview_url(ID2))).await, 403);
    let link = token(&["--sub", "alice", "--link", ID]);
    assert!(link.starts_with(&format!("{}/instances/{ID}/preview?token=", edge.url)), "{link}");
    assert_eq!(status(link.clone()).await, 200);
    assert_eq!(status(link.replace("/preview?", "/rendered?")).await, 403, "a link serves its own URL only");
    // A lifetime it cannot have, and a config without a secret, are refused with a reason.
    let refused = Command::new(env!("CARGO_BIN_EXE_orthanc-edge"))
        .args(["token", "--sub", "a", "--lifetime", "1y", "--config"])
        .arg(&cfg_path)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("lifetime"));
    edge.stop().await;
    fake.stop().await;
}

/// Text logs into a pipe (a file, a collector) carry no ANSI colour codes.
#[actix_web::test]
async fn text_logs_off_a_terminal_have_no_colour() {
    let fake = FakeOrthanc::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("edge.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[orthanc]\nurl = \"{}\"\nusername = \"{ORTHANC_USER}\"\npassword = \"{ORTHANC_PASSWORD}\"\n[cache]\ndir = \"{}\"\n[log]\nformat = \"text\"\nfilter = \"info\"\n",
            fake.url,
            dir.path().join("cache").display()
        ),
    )
    .unwrap();
    let (mut child, rx) = serve(&cfg_path);
    let line = rx.recv_timeout(Duration::from_secs(20)).expect("a log line");
    let _ = child.kill();
    let _ = child.wait();
    assert!(!line.contains('\x1b'), "ANSI in {line:?}");
    assert!(line.contains("INFO") || line.contains("WARN"), "{line}");
    fake.stop().await;
}

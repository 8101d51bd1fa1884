//! The `orthanc-edge` binary against a real Orthanc (started by scripts/ci/it-orthanc.sh): pixels, bytes, errors, logs.
//!
//! Needs ORTHANC_EDGE_IT_URL / _USER / _PASSWORD / _MANIFEST. Without them the tests are skipped,
//! unless ORTHANC_EDGE_IT_REQUIRED=1 (scripts/test.sh sets it), where they fail.

#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{CountingProxy, RealOrthanc};
use image::GenericImageView;
use serde_json::{json, Value};

const ID0: &str = "00000000-00000000-00000000-00000000-00000000";

const KEY: &str = "real-orthanc-test-key";
const MINT_KEY: &str = "real-orthanc-mint-key";
const JWT_SECRET: &str = "real-orthanc-jwt-secret-0123456789abcdef";

/// Session tokens on, minting on, no leeway.
fn auth_toml() -> String {
    format!(
        "[[auth.api_keys]]\nname = \"app\"\nhash = \"{}\"\nscopes = [\"mint\"]\n\
         [auth.jwt]\nsecret = \"{JWT_SECRET}\"\nleeway_s = 0\n",
        orthanc_edge::auth::hash_key(MINT_KEY)
    )
}

fn token(claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// The edge binary as a child process, with its log captured.
struct Edge {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Edge {
    fn start(r: &RealOrthanc) -> Edge {
        Edge::start_full(r, &r.url, "")
    }

    /// Start with `orthanc_url` as the Orthanc to talk to (e.g. a counting proxy in front of it).
    fn start_via(r: &RealOrthanc, orthanc_url: &str) -> Edge {
        Edge::start_full(r, orthanc_url, "")
    }

    /// Started with `extra` TOML appended to the test config (e.g. `[auth.jwt]` settings).
    fn start_with(r: &RealOrthanc, extra: &str) -> Edge {
        Edge::start_full(r, &r.url, extra)
    }

    fn start_full(r: &RealOrthanc, orthanc_url: &str, extra: &str) -> Edge {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pw_file = dir.path().join("orthanc-password");
        std::fs::write(&pw_file, format!("{}\n", r.password)).unwrap();
        let config = dir.path().join("edge.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n\
                 [orthanc]\nurl = \"{}\"\nusername = \"{}\"\npassword_file = \"{}\"\n\
                 [cache]\ndir = \"{}\"\n\
                 [[auth.api_keys]]\nname = \"it\"\nhash = \"{}\"\nscopes = [\"preview\"]\n\
                 [log]\nfilter = \"debug\"\nformat = \"json\"\n{}",
                orthanc_url,
                r.user,
                pw_file.display(),
                dir.path().join("cache").display(),
                orthanc_edge::auth::hash_key(KEY),
                extra
            ),
        )
        .unwrap();
        let log = dir.path().join("edge.log");
        let child = Command::new(env!("CARGO_BIN_EXE_orthanc-edge"))
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let edge = Edge { child, url: format!("http://127.0.0.1:{port}"), log, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reqwest::blocking::get(format!("{}/readyz", edge.url)) {
                if r.status() == 200 {
                    return edge;
                }
            }
            assert!(Instant::now() < deadline, "edge not ready: {}", edge.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        let mut s = String::new();
        std::fs::File::open(&self.log).unwrap().read_to_string(&mut s).unwrap();
        s
    }

    /// SIGTERM, wait for a clean exit, return the whole log.
    fn stop(mut self) -> String {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "edge exit status {status}");
                break;
            }
            assert!(Instant::now() < deadline, "edge did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log_text()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().no_gzip().build().unwrap()
}

fn instance<'a>(r: &'a RealOrthanc, name: &str) -> &'a Value {
    &r.manifest["instances"][name]
}

fn via_edge(edge: &Edge, path: &str, accept: &str) -> reqwest::blocking::Response {
    http()
        .get(format!("{}{path}", edge.url))
        .header("X-Api-Key", KEY)
        .header("Accept", accept)
        .send()
        .unwrap()
}

#[test]
fn previews_match_orthanc_pixels_and_bytes() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let edge = Edge::start(&r);
    let cases = [
        ("ct16", image::ColorType::L8),
        ("cr_mono1", image::ColorType::L8),
        ("rgb8", image::ColorType::Rgb8),
        ("multiframe3", image::ColorType::L8),
    ];
    for (name, color) in cases {
        let inst = instance(&r, name);
        let id = inst["instance"].as_str().unwrap();
        let (w, h) = (inst["width"].as_u64().unwrap() as u32, inst["height"].as_u64().unwrap() as u32);
        for (accept, ct) in [("image/png", "image/png"), ("image/jpeg", "image/jpeg"), ("*/*", "image/png")] {
            let path = format!("/instances/{id}/preview");
            let resp = via_edge(&edge, &path, accept);
            assert_eq!(resp.status(), 200, "{name} {accept}");
            assert_eq!(resp.headers()["content-type"], ct);
            // `*/*` gets PNG, the entry the `image/png` request just made.
            let expected = if accept == "*/*" { "hit-memory" } else { "miss" };
            assert_eq!(resp.headers()["x-cache"], expected, "{name} {accept}");
            let body = resp.bytes().unwrap().to_vec();
            let (status, reference) = r.direct_blocking(&path, accept);
            assert_eq!(status, 200);
            assert!(body == reference, "{name} {accept}: edge bytes differ from Orthanc's");
            let img = image::load_from_memory(&body).unwrap();
            assert_eq!(img.dimensions(), (w, h), "{name} {accept}");
            if ct == "image/png" {
                assert_eq!(img.color(), color, "{name}");
            }
            let again = via_edge(&edge, &path, accept);
            assert_eq!(again.headers()["x-cache"], "hit-memory");
            assert!(again.bytes().unwrap() == body);
        }
    }
    drop(edge);
}

#[test]
fn frames_are_independent_and_out_of_range_is_404() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let edge = Edge::start(&r);
    let id = instance(&r, "multiframe3")["instance"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    for f in 0..3 {
        let path = format!("/instances/{id}/frames/{f}/preview");
        let resp = via_edge(&edge, &path, "image/png");
        assert_eq!(resp.status(), 200);
        let body = resp.bytes().unwrap().to_vec();
        assert!(body == r.direct_blocking(&path, "image/png").1, "frame {f}");
        assert!(!seen.contains(&body), "frame {f} differs from the others");
        seen.push(body);
    }
    let resp = via_edge(&edge, &format!("/instances/{id}/frames/3/preview"), "image/png");
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().unwrap();
    assert_eq!(v["code"], "not-found");
    let unknown =
        via_edge(&edge, "/instances/00000000-00000000-00000000-00000000-00000000/preview", "image/png");
    assert_eq!(unknown.status(), 404);
}

/// With `render.mode = "orthanc"`: see tests/it/render_real.rs for the edge decoding it.
#[test]
fn undecodable_transfer_syntax_is_415_when_only_orthanc_renders() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let edge = Edge::start_with(&r, "[render]\nmode = \"orthanc\"\n");
    let id = instance(&r, "j2k")["instance"].as_str().unwrap().to_owned();
    let resp = via_edge(&edge, &format!("/instances/{id}/preview"), "image/png");
    assert_eq!(resp.status(), 415);
    let v: Value = resp.json().unwrap();
    assert_eq!(v["code"], "unsupported-image");
}

#[test]
fn scoped_tokens_use_real_parents() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let edge = Edge::start_with(&r, &auth_toml());
    let ct = instance(&r, "ct16");
    let rgb = instance(&r, "rgb8");
    let (ct_id, rgb_id) = (ct["instance"].as_str().unwrap(), rgb["instance"].as_str().unwrap());
    let status = |id: &str, t: &str| {
        http().get(format!("{}/instances/{id}/preview?token={t}", edge.url)).send().unwrap().status().as_u16()
    };
    let exp = now() + 300;
    let study = token(json!({"sub": "s", "exp": exp, "studies": [r.manifest["study"]]}));
    assert_eq!(status(ct_id, &study), 200);
    assert_eq!(status(rgb_id, &study), 200);
    let series = token(json!({"sub": "s", "exp": exp, "series": [ct["series"]]}));
    assert_eq!(status(ct_id, &series), 200);
    assert_eq!(status(rgb_id, &series), 403);
    let other =
        token(json!({"sub": "s", "exp": exp, "studies": ["00000000-00000000-00000000-00000000-00000000"]}));
    assert_eq!(status(ct_id, &other), 403);
    // Signed links from /auth/sign work as they are.
    let signed: Value = http()
        .post(format!("{}/auth/sign", edge.url))
        .header("X-Api-Key", MINT_KEY)
        .json(&json!({"instances": [ct_id], "lifetime_s": 60}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let link = format!("{}{}", edge.url, signed["links"][0]["url"].as_str().unwrap());
    let resp = http().get(&link).send().unwrap();
    assert_eq!(resp.status(), 200);
    let log = edge.stop();
    assert!(log.contains("\"audit\"") && log.contains(rgb_id), "denials are audited with the resource id");
}

#[test]
fn secrets_and_patient_names_stay_out_of_responses_and_logs() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let edge = Edge::start_with(&r, &auth_toml());
    let id = instance(&r, "ct16")["instance"].as_str().unwrap().to_owned();
    let good = token(json!({"sub": "user-7", "exp": now() + 300}));
    let expired = token(json!({"sub": "user-7", "exp": now() - 300}));
    let scoped = token(json!({"sub": "user-7", "exp": now() + 300, "instances": [ID0]}));
    let mut seen = String::new();
    let mut tokens = vec![good.clone(), expired.clone(), scoped.clone()];
    for t in [&good, &expired, &scoped] {
        let resp = http().get(format!("{}/instances/{id}/preview?token={t}", edge.url)).send().unwrap();
        assert!(resp.headers().get("www-authenticate").is_none());
        for (name, value) in resp.headers() {
            seen.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
        }
        seen.push_str(&String::from_utf8_lossy(&resp.bytes().unwrap()));
    }
    for (path, body) in
        [("/auth/sign", json!({"instances": [id]})), ("/auth/session", json!({"sub": "user-7"}))]
    {
        let resp = http()
            .post(format!("{}{path}", edge.url))
            .header("X-Api-Key", MINT_KEY)
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        for (name, value) in resp.headers() {
            seen.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
        }
        let v: Value = resp.json().unwrap();
        if let Some(t) = v["token"].as_str() {
            tokens.push(t.to_owned());
        }
        if let Some(u) = v["links"][0]["url"].as_str() {
            tokens.push(u.split("token=").nth(1).unwrap().to_owned());
        }
    }
    for (path, key) in [
        (format!("/instances/{id}/preview"), Some(KEY)),
        (format!("/instances/{id}/preview"), None),
        (format!("/instances/{id}/preview"), Some("bad")),
        ("/system".to_owned(), Some(KEY)),
        (format!("/instances/{id}"), Some(KEY)),
        (format!("/instances/{id}/preview?foo=1"), Some(KEY)),
        ("/readyz".to_owned(), None),
    ] {
        let mut req = http().get(format!("{}{path}", edge.url));
        if let Some(k) = key {
            req = req.header("X-Api-Key", k);
        }
        let resp = req.send().unwrap();
        assert!(resp.headers().get("www-authenticate").is_none());
        for (name, value) in resp.headers() {
            seen.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
        }
        seen.push_str(&String::from_utf8_lossy(&resp.bytes().unwrap()));
    }
    let log = edge.stop();
    assert!(log.contains("\"request\""), "request lines are logged");
    for t in &tokens {
        assert!(!log.contains(t.as_str()), "a session token reached the log");
        // Not even its signature.
        assert!(!log.contains(t.rsplit('.').next().unwrap()));
    }
    assert!(log.contains("token-expired") && log.contains("jwt:user-7"));
    for secret in [r.password.as_str(), KEY, MINT_KEY, JWT_SECRET] {
        assert!(!seen.contains(secret), "a secret reached a response");
        assert!(!log.contains(secret), "a secret reached the log");
    }
    let basic = format!("{}:{}", r.user, r.password);
    assert!(!log.contains(&basic));
    for phi in ["Doe", "Jane", "EDGE-TEST-1"] {
        assert!(!log.contains(phi), "patient data `{phi}` reached the log");
        assert!(!seen.contains(phi));
    }
}

const CHROME_ACCEPT: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

#[test]
fn five_variants_cost_one_orthanc_render() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let proxy = CountingProxy::start_detached(&r.url);
    let edge = Edge::start_via(&r, &proxy.url);
    let id = instance(&r, "ct16")["instance"].as_str().unwrap().to_owned();
    let base = format!("/instances/{id}/preview");
    let cases = [
        ("?w=128&format=jpeg", "*/*", "image/jpeg", (128, 128)),
        ("?w=256&format=webp", "*/*", "image/webp", (256, 256)),
        ("?preset=thumb", CHROME_ACCEPT, "image/webp", (128, 128)),
        ("?w=64&h=32&fit=cover&format=png", "*/*", "image/png", (64, 32)),
        ("?h=100&format=jpeg&q=50", "*/*", "image/jpeg", (100, 100)),
    ];
    for (qs, accept, ct, (w, h)) in cases {
        let resp = via_edge(&edge, &format!("{base}{qs}"), accept);
        assert_eq!(resp.status(), 200, "{qs}");
        assert_eq!(resp.headers()["content-type"], ct, "{qs}");
        let body = resp.bytes().unwrap();
        let size = if ct == "image/webp" {
            let img = webp::Decoder::new(&body).decode().unwrap();
            (img.width(), img.height())
        } else {
            image::load_from_memory(&body).unwrap().dimensions()
        };
        assert_eq!(size, (w, h), "{qs}");
    }
    assert_eq!(proxy.renders(), 1, "five variants, one Orthanc render");

    let auto = via_edge(&edge, &format!("{base}?w=200&format=auto"), CHROME_ACCEPT);
    assert_eq!(auto.headers()["content-type"], "image/webp");
    assert_eq!(auto.headers()["vary"], "Accept");
    let jpeg = via_edge(&edge, &format!("{base}?w=200&format=auto"), "image/jpeg");
    assert_eq!(jpeg.headers()["content-type"], "image/jpeg");
    assert_eq!(jpeg.headers()["vary"], "Accept");
    assert_eq!(proxy.renders(), 1);
}

#[test]
fn edge_made_pngs_have_orthancs_pixels() {
    let Some(r) = RealOrthanc::from_env() else { return };
    let edge = Edge::start(&r);
    for name in ["ct16", "cr_mono1", "rgb8", "multiframe3"] {
        let id = instance(&r, name)["instance"].as_str().unwrap().to_owned();
        for path in [
            format!("/instances/{id}/preview"),
            format!("/instances/{id}/rendered"),
            format!("/instances/{id}/rendered?window-center=100&window-width=80"),
        ] {
            let sep = if path.contains('?') { '&' } else { '?' };
            let ours = via_edge(&edge, &format!("{path}{sep}format=png"), "*/*");
            assert_eq!(ours.status(), 200, "{name} {path}");
            let ours = image::load_from_memory(&ours.bytes().unwrap()).unwrap();
            let (status, theirs) = r.direct_blocking(&path, "image/png");
            assert_eq!(status, 200);
            let theirs = image::load_from_memory(&theirs).unwrap();
            assert_eq!(ours.color(), theirs.color(), "{name} {path}");
            assert!(ours.as_bytes() == theirs.as_bytes(), "{name} {path}: pixels differ from Orthanc's");
        }
    }
}

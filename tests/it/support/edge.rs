//! The real edge under test: its config, a builder, on ephemeral ports or in process without sockets.

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::test::{self as atest, TestRequest};
use actix_web::web;
use futures_util::future::LocalBoxFuture;
use orthanc_edge::auth::hash_key;
use orthanc_edge::config::Config;
use orthanc_edge::state::AppState;

use super::{ADMIN_KEY, MINT_KEY, ORTHANC_PASSWORD, ORTHANC_USER, PREVIEW_KEY, WARM_KEY};

/// A config for tests: the given Orthanc, a cache folder, three API keys; `env` overrides on top.
pub fn test_config(orthanc_url: &str, cache_dir: &Path, env: &[(&str, &str)]) -> Config {
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 2
flight_wait_ms = 5000
[orthanc]
url = "{orthanc_url}"
username = "{ORTHANC_USER}"
password = "{ORTHANC_PASSWORD}"
timeout_ms = 2000
max_body_bytes = 1048576
[cache]
dir = "{dir}"
memory_bytes = 33554432
disk_bytes = 67108864
negative_ttl_s = 5
[[auth.api_keys]]
name = "viewer"
hash = "{h1}"
scopes = ["preview"]
[[auth.api_keys]]
name = "ops"
hash = "{h2}"
scopes = ["admin"]
[[auth.api_keys]]
name = "warmer"
hash = "{h3}"
scopes = ["warm"]
[[auth.api_keys]]
name = "app"
hash = "{h4}"
scopes = ["mint"]
"#,
        dir = cache_dir.display(),
        h1 = hash_key(PREVIEW_KEY),
        h2 = hash_key(ADMIN_KEY),
        h3 = hash_key(WARM_KEY),
        h4 = hash_key(MINT_KEY),
    );
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(toml.as_bytes()).unwrap();
    let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::load_from(Some(f.path()), env).unwrap()
}

/// The real edge app, in process, on an ephemeral port.
pub struct TestEdge {
    pub url: String,
    /// The admin listener (metrics, probes).
    pub admin_url: String,
    pub state: AppState,
    handle: ServerHandle,
    admin: ServerHandle,
    /// The peer listener, when `[cluster]` is on.
    peer: Option<ServerHandle>,
    /// The cache folder the builder made, when the test gave none: removed with the edge.
    _dir: Option<tempfile::TempDir>,
}

/// How to start a [`TestEdge`]: [`test_config`] for an Orthanc, with settings on top.
pub struct TestEdgeBuilder {
    orthanc_url: String,
    env: Vec<(String, String)>,
    dir: Option<PathBuf>,
}

impl TestEdgeBuilder {
    /// A configuration setting as an environment variable (`ORTHANC_EDGE__SECTION__KEY`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Several [`env`](Self::env) settings, in order.
    pub fn envs(mut self, env: &[(&str, &str)]) -> Self {
        self.env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// Accept HS256 session tokens signed with `secret`.
    pub fn jwt_secret(self, secret: &str) -> Self {
        self.env("ORTHANC_EDGE__AUTH__JWT__SECRET", secret)
    }

    /// Keep the cache in `dir` (owned by the test, e.g. to restart on it); else a fresh
    /// temporary folder owned by the edge.
    pub fn cache_dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_owned());
        self
    }

    /// The edge's configuration, in the cache folder given (or `dir`).
    fn config_in(&self, dir: &Path) -> Config {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        test_config(&self.orthanc_url, dir, &env)
    }

    pub async fn start(self) -> TestEdge {
        match &self.dir {
            Some(dir) => TestEdge::start(self.config_in(dir)).await,
            None => {
                let dir = tempfile::tempdir().unwrap();
                let mut edge = TestEdge::start(self.config_in(dir.path())).await;
                edge._dir = Some(dir);
                edge
            }
        }
    }
}

impl TestEdge {
    /// An edge on `orthanc_url`, set up step by step; `.start().await` runs it.
    pub fn builder(orthanc_url: &str) -> TestEdgeBuilder {
        TestEdgeBuilder { orthanc_url: orthanc_url.to_owned(), env: vec![], dir: None }
    }

    /// An edge on a configuration made by the test (restarts on one cache, real Orthanc).
    pub async fn start(config: Config) -> Self {
        // The previous run's sled may still be closing: retry the open briefly.
        let mut state = None;
        for _ in 0..50 {
            match AppState::build(config.clone()) {
                Ok(s) => {
                    state = Some(s);
                    break;
                }
                Err(e) if e.to_string().contains("in use") => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("edge failed to start: {e:#}"),
            }
        }
        let state = state.expect("cache folder stayed locked");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = orthanc_edge::start(state.clone(), listener).unwrap();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let admin_url = format!("http://{}", listener.local_addr().unwrap());
        let server = orthanc_edge::start_admin(state.clone(), listener).unwrap();
        let admin = server.handle();
        actix_web::rt::spawn(server);
        let peer = orthanc_edge::start_cluster(&state).unwrap();
        Self { url, admin_url, state, handle, admin, peer, _dir: None }
    }

    /// Graceful stop; flushes and releases the disk tier.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.admin.stop(true).await;
        if let Some(peer) = &self.peer {
            peer.stop(true).await;
        }
        orthanc_edge::shutdown(&self.state).await.unwrap();
    }

    pub fn preview_url(&self, id: &str) -> String {
        format!("{}/instances/{id}/preview", self.url)
    }
}

/// What an in-process request got.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: web::Bytes,
}

impl Reply {
    /// The `code` of a JSON error body ("" for anything else).
    pub fn code(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// The edge's app (routes, request context, CORS) in process, without sockets, for property
/// tests that make thousands of requests. Call the function it returns on the runtime that made it.
pub async fn in_process(state: AppState) -> impl Fn(TestRequest) -> LocalBoxFuture<'static, Reply> {
    let app = Rc::new(atest::init_service(orthanc_edge::app(state)).await);
    move |req: TestRequest| -> LocalBoxFuture<'static, Reply> {
        let app = app.clone();
        Box::pin(async move {
            let resp = atest::call_service(&*app, req.to_request()).await;
            let status = resp.status().as_u16();
            let content_type =
                resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            Reply { status, content_type, body: atest::read_body(resp).await }
        })
    }
}

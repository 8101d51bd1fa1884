//! The memory-hit path: `TieredCache::lookup` on a key already in moka, and full HTTP round trips
//! of memory hits through the real app (auth, routing, middleware, response write) over a
//! keep-alive loopback connection, at each body size of `scripts/bench/load.sh` and one of a
//! full-size CR preview: the response write's cost grows with the body (actix-http copies it into
//! its write buffer), and this guards it. The client is a plain blocking socket that reads exactly
//! the announced length, so the figure is the server's and the kernel's, not an HTTP client's.
//! Orthanc is never called: the cache is filled beforehand.
//!
//! `cargo bench --bench memory_hit` (add `-- --quick` for a fast smoke run).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use orthanc_edge::cache::{CacheStatus, DiskCache, Entry, MemoryCache, TieredCache, Tiers};
use orthanc_edge::config::Config;
use orthanc_edge::ids::OrthancId;
use orthanc_edge::model::ImageFormat;
use orthanc_edge::previews::{Output, PreviewSpec};
use orthanc_edge::state::AppState;

const INSTANCE: &str = "8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe";
const API_KEY: &str = "bench-key-0123456789";
/// About the size of Orthanc's PNG preview of a 512x512 CT slice.
const BODY_LEN: usize = 40 * 1024;
/// The round-trip sizes: Orthanc 1.10.1's PNG previews of the bench-load samples ct16 (512x512
/// CT), cr_mono1 (640x800 CR) and cr_large (2048x2500 CR), and a full-size 807 KB CR preview
/// (issue 16's largest body), each cached under its own instance id.
const SIZES: [(&str, usize, &str); 4] = [
    ("4.9KB", 4_900, "00000001-00000001-00000001-00000001-00000001"),
    ("48KB", 48_000, "00000002-00000002-00000002-00000002-00000002"),
    ("264KB", 264_000, "00000003-00000003-00000003-00000003-00000003"),
    ("807KB", 807_000, "00000004-00000004-00000004-00000004-00000004"),
];

/// PNG magic followed by deterministic incompressible-looking bytes.
fn fake_png() -> Bytes {
    fake_png_of(BODY_LEN)
}

fn fake_png_of(len: usize) -> Bytes {
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut x: u32 = 0x9E37_79B9;
    while body.len() < len {
        // xorshift32
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        body.extend_from_slice(&x.to_le_bytes());
    }
    body.truncate(len);
    Bytes::from(body)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("tokio runtime")
}

fn spec() -> PreviewSpec {
    spec_of(INSTANCE)
}

fn spec_of(instance: &str) -> PreviewSpec {
    PreviewSpec {
        instance: OrthancId::parse(instance).expect("valid id"),
        frame: 0,
        output: Output::Orthanc { format: ImageFormat::Png, quality: None },
    }
}

fn bench_tiered(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = Arc::new(DiskCache::open(dir.path(), 64 << 20).expect("open sled"));
    let cache = TieredCache::new(MemoryCache::new(64 << 20), disk);
    let key = spec().cache_key();
    let entry = Arc::new(Entry::new("image/png", fake_png()));

    assert!(rt.block_on(cache.lookup(&key, Tiers::Both)).is_none(), "empty cache");
    rt.block_on(cache.store(&key, entry, Tiers::Both));
    let (_, status) = rt.block_on(cache.lookup(&key, Tiers::Both)).expect("second get");
    assert_eq!(status, CacheStatus::HitMemory);

    let mut g = c.benchmark_group("tiered");
    g.sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    g.bench_function("lookup_memory_hit", |b| {
        b.to_async(&rt).iter(|| async {
            let (e, status) = cache.lookup(&key, Tiers::Both).await.expect("memory hit");
            debug_assert_eq!(status, CacheStatus::HitMemory);
            e
        })
    });
    // What building the key costs on every request (PreviewSpec -> CacheKey allocates).
    let s = spec();
    g.bench_function("cache_key", |b| b.iter(|| s.cache_key()));
    g.finish();
}

/// The real app on 127.0.0.1:0 in its own actix System thread.
struct RunningEdge {
    addr: std::net::SocketAddr,
    url: String,
    handle: actix_web::dev::ServerHandle,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

fn start_edge(rt: &tokio::runtime::Runtime) -> RunningEdge {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("edge.toml");
    let cache_dir = dir.path().join("cache");
    // Orthanc URL points at the discard port: a cache miss would fail fast, not hang.
    let toml = format!(
        r#"[server]
listen = "127.0.0.1:0"
workers = 1

[orthanc]
url = "http://127.0.0.1:9"
password = "unused"
timeout_ms = 1000

[cache]
dir = "{}"
memory_bytes = 67108864
disk_bytes = 67108864

[[auth.api_keys]]
name = "bench"
hash = "{}"
scopes = ["preview"]

[log]
filter = "warn"
"#,
        cache_dir.display(),
        orthanc_edge::auth::hash_key(API_KEY)
    );
    std::fs::write(&config_path, toml).expect("write config");
    let config = Config::load_from(Some(&config_path), HashMap::new()).expect("load config");
    let state = AppState::build(config).expect("build state");

    let spec = spec();
    let prefill = Arc::new(Entry::new("image/png", fake_png()));
    rt.block_on(state.cache.store(&spec.cache_key(), prefill, Tiers::Both));
    for (_, len, instance) in SIZES {
        let entry = Arc::new(Entry::new("image/png", fake_png_of(len)));
        rt.block_on(state.cache.store(&spec_of(instance).cache_key(), entry, Tiers::MemoryOnly));
    }

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = orthanc_edge::start(state, listener)?;
            let _ = tx.send(server.handle());
            server.await
        })
    });
    let handle = rx.recv_timeout(Duration::from_secs(10)).expect("server did not start");
    RunningEdge {
        addr,
        url: format!("http://{addr}/instances/{INSTANCE}/preview"),
        handle,
        thread,
        _dir: dir,
    }
}

/// A keep-alive HTTP/1.1 client on a blocking socket asking for one URL again and again.
struct RawClient {
    stream: TcpStream,
    request: Vec<u8>,
    buf: Vec<u8>,
}

impl RawClient {
    fn new(addr: std::net::SocketAddr, instance: &str) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let request = format!(
            "GET /instances/{instance}/preview HTTP/1.1\r\nHost: edge\r\nX-Api-Key: {API_KEY}\r\n\r\n"
        );
        Self { stream, request: request.into_bytes(), buf: vec![0; 1 << 20] }
    }

    /// One request; returns the status line's code and the body length read.
    fn get(&mut self) -> (u16, usize) {
        self.stream.write_all(&self.request).expect("write request");
        let mut have = 0;
        let head_end = loop {
            let n = self.stream.read(&mut self.buf[have..]).expect("read head");
            assert!(n > 0, "connection closed");
            have += n;
            if let Some(i) = self.buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).expect("ascii head");
        let status = head[9..12].parse().expect("status");
        let len: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
            .expect("content-length")
            .parse()
            .expect("length");
        let mut body = have - head_end;
        while body < len {
            let n = self.stream.read(&mut self.buf).expect("read body");
            assert!(n > 0, "connection closed");
            body += n;
        }
        assert_eq!(body, len, "one response at a time");
        (status, len)
    }
}

fn bench_http(c: &mut Criterion) {
    let rt = runtime();
    let edge = start_edge(&rt);
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("client");
    let get = || client.get(&edge.url).header("X-Api-Key", API_KEY).send();

    rt.block_on(async {
        let resp = get().await.expect("first request");
        assert_eq!(resp.status(), 200, "edge answered {}", resp.status());
        assert_eq!(resp.headers().get("x-cache").and_then(|v| v.to_str().ok()), Some("hit-memory"));
        let body = resp.bytes().await.expect("body");
        assert_eq!(body, fake_png());
    });

    let mut g = c.benchmark_group("http");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    g.bench_function("preview_memory_hit_round_trip", |b| {
        b.to_async(&rt).iter(|| async {
            let resp = get().await.expect("request");
            debug_assert_eq!(resp.status(), 200);
            resp.bytes().await.expect("body")
        })
    });
    g.finish();

    // The response write at each size, with a client that costs next to nothing.
    let mut g = c.benchmark_group("memory_hit_by_size");
    g.sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for (name, len, instance) in SIZES {
        let mut raw = RawClient::new(edge.addr, instance);
        assert_eq!(raw.get(), (200, len), "{name}");
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(name, |b| b.iter(|| raw.get()));
    }
    g.finish();

    rt.block_on(edge.handle.stop(true));
    match edge.thread.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("server failed: {e}"),
        Err(_) => panic!("server thread panicked"),
    }
}

criterion_group!(benches, bench_tiered, bench_http);
criterion_main!(benches);

//! The HTTP/1 response writes of the vendored actix-http (vendor/README.md): body chunks of 8 KB
//! and more go to the socket from the body's own bytes, in vectored writes, instead of through
//! the write buffer. Byte for byte over a real socket: bodies of every size around the
//! threshold, streamed bodies mixing small and large chunks, chunked encoding (not taken by the
//! new path), HEAD, pipelined requests answered in order, and a reader that falls far behind
//! (the writes stop half way and resume).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use actix_web::body::{BodyStream, SizedStream};
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpResponse, HttpServer};

/// Byte `i` of every body: a pattern with no period a misplaced slice could hide in.
fn byte(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 11)) as u8
}

fn body(n: usize) -> Bytes {
    (0..n).map(byte).collect::<Vec<u8>>().into()
}

/// Chunk sizes of the streamed bodies: small and large, around the 8 KB threshold.
const CHUNKS: [usize; 7] = [3, 8191, 8192, 40_000, 1, 100_000, 5000];

/// `n` bytes of `body(n)` in chunks of the `CHUNKS` sizes in turn.
fn chunks(n: usize) -> Vec<Result<Bytes, std::io::Error>> {
    let whole = body(n);
    let (mut out, mut at, mut k) = (Vec::new(), 0, 0);
    while at < n {
        let len = CHUNKS[k % CHUNKS.len()].min(n - at);
        out.push(Ok(whole.slice(at..at + len)));
        at += len;
        k += 1;
    }
    out
}

async fn whole(n: web::Path<usize>) -> HttpResponse {
    HttpResponse::Ok().body(body(*n))
}

async fn sized(n: web::Path<usize>) -> HttpResponse {
    let n = *n;
    HttpResponse::Ok().body(SizedStream::new(n as u64, futures_util::stream::iter(chunks(n))))
}

async fn chunked(n: web::Path<usize>) -> HttpResponse {
    HttpResponse::Ok().body(BodyStream::new(futures_util::stream::iter(chunks(*n))))
}

/// One response read off `stream`: its status line, headers (lower-case names) and body, read by
/// `Content-Length`, or chunked; `head`: no body whatever the headers say.
fn read_response(stream: &mut impl Read, head: bool) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut one = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut one).unwrap();
        buf.push(one[0]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    assert!(text.starts_with("HTTP/1.1 "), "not a response: {:?}", text.chars().take(60).collect::<String>());
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if head {
    } else if let Some(len) = header("content-length") {
        body.resize(len.parse().unwrap(), 0);
        stream.read_exact(&mut body).unwrap();
    } else {
        assert_eq!(header("transfer-encoding").as_deref(), Some("chunked"), "{status} {headers:?}");
        loop {
            let mut size = Vec::new();
            while !size.ends_with(b"\r\n") {
                stream.read_exact(&mut one).unwrap();
                size.push(one[0]);
            }
            let n = usize::from_str_radix(std::str::from_utf8(&size[..size.len() - 2]).unwrap(), 16).unwrap();
            let mut chunk = vec![0u8; n + 2];
            stream.read_exact(&mut chunk).unwrap();
            assert_eq!(&chunk[n..], b"\r\n");
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    (status, headers, body)
}

fn assert_body(what: &str, got: &[u8], n: usize) {
    assert_eq!(got.len(), n, "{what}: length");
    if let Some(i) = (0..n).find(|&i| got[i] != byte(i)) {
        panic!("{what}: first wrong byte at {i} of {n}");
    }
}

/// Runs `client` (blocking) against a one-worker server of the three routes.
async fn with_server(client: impl FnOnce(SocketAddr) + Send + 'static) {
    let server = HttpServer::new(|| {
        App::new()
            .route("/whole/{n}", web::to(whole))
            .route("/sized/{n}", web::to(sized))
            .route("/chunked/{n}", web::to(chunked))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let done = tokio::task::spawn_blocking(move || client(addr)).await;
    handle.stop(false).await;
    done.unwrap();
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

#[actix_web::test]
async fn bodies_of_every_size_arrive_whole_and_in_order() {
    with_server(|addr| {
        let sizes = [0, 1, 4903, 8191, 8192, 8193, 48_765, 269_797, 807_000, 2 << 20];
        let mut s = connect(addr);
        for route in ["whole", "sized", "chunked"] {
            for n in sizes {
                write!(s, "GET /{route}/{n} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
                let (status, _, got) = read_response(&mut s, false);
                assert!(status.starts_with("HTTP/1.1 200"), "{status}");
                assert_body(&format!("{route} {n}"), &got, n);
            }
        }
    })
    .await;
}

#[actix_web::test]
async fn pipelined_requests_keep_their_order() {
    with_server(|addr| {
        let asks: [(&str, usize); 6] = [
            ("whole", 300_000),
            ("whole", 10),
            ("sized", 170_003),
            ("chunked", 90_000),
            ("sized", 9000),
            ("whole", 20_000),
        ];
        let mut s = connect(addr);
        // All in one write: the dispatcher answers them one after the other on one connection.
        let all: String =
            asks.iter().map(|(route, n)| format!("GET /{route}/{n} HTTP/1.1\r\nHost: t\r\n\r\n")).collect();
        s.write_all(all.as_bytes()).unwrap();
        for (route, n) in asks {
            let (status, _, got) = read_response(&mut s, false);
            assert!(status.starts_with("HTTP/1.1 200"), "{route} {n}: {status}");
            assert_body(&format!("pipelined {route} {n}"), &got, n);
        }
    })
    .await;
}

/// HEAD gets the length and no body, and the connection goes on. (Not pipelined: actix-http
/// takes a response's HEAD-ness from the last request it parsed, vendor/README.md.)
#[actix_web::test]
async fn head_sends_no_body() {
    with_server(|addr| {
        let mut s = connect(addr);
        for (route, n) in [("whole", 50_000), ("sized", 9000), ("whole", 10)] {
            write!(s, "HEAD /{route}/{n} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            let (status, headers, got) = read_response(&mut s, true);
            assert!(status.starts_with("HTTP/1.1 200"), "{status}");
            assert!(got.is_empty());
            assert!(headers.contains(&("content-length".into(), n.to_string())), "{route} {n}: {headers:?}");
            write!(s, "GET /whole/12345 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            assert_body(&format!("after HEAD {route} {n}"), &read_response(&mut s, false).2, 12345);
        }
    })
    .await;
}

#[actix_web::test]
async fn a_reader_far_behind_gets_every_byte() {
    with_server(|addr| {
        // Larger than what loopback buffers hold: the server's writes stop (Pending) mid-body,
        // between and inside queued chunks, and resume as the reader catches up.
        let n = 24 << 20;
        for route in ["whole", "sized"] {
            let mut s = connect(addr);
            write!(
                s,
                "GET /{route}/{n} HTTP/1.1\r\nHost: t\r\n\r\nGET /whole/9000 HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            .unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let (_, _, got) = read_response(&mut SlowReader { inner: &mut s, left: 64 }, false);
            assert_body(&format!("{route} {n} read slowly"), &got, n);
            assert_body("the next response", &read_response(&mut s, false).2, 9000);
        }
    })
    .await;
}

/// Reads its first `left` body reads (the byte-at-a-time header reads do not count) in small
/// pieces with pauses, then as fast as asked.
struct SlowReader<'a> {
    inner: &'a mut TcpStream,
    left: u32,
}

impl Read for SlowReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buf.len() <= 1 {
            return self.inner.read(buf);
        }
        self.left -= 1;
        std::thread::sleep(Duration::from_millis(2));
        let n = buf.len().min(777);
        self.inner.read(&mut buf[..n])
    }
}

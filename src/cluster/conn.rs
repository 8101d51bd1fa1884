//! HTTP/1.1 to other edges' peer listeners over kept-alive connections: one request, its answer
//! read to the byte its `Content-Length` names, no task in between.
//!
//! reqwest (hyper's pooled client) cost the asking edge more than the rest of a hop: the URL
//! parsed per request, the connection's I/O in a task of its own reached through channels, the
//! body in chunks joined again, a timer per pool entry (bench-scaleout: 43 µs of the asker's
//! 59 µs per hop). A peer is another orthanc-edge on plain HTTP, so the exchange is small enough
//! to write out: httparse (hyper's own parser) reads the head.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest answer head read from a peer.
const MAX_HEAD: usize = 16 << 10;
/// Headers an answer may carry.
const MAX_HEADERS: usize = 32;
/// Idle connections kept per peer and thread.
const MAX_IDLE: usize = 16;

/// A connection ready for its next request, and since when.
struct Idle {
    stream: TcpStream,
    since: Instant,
}

/// One thread's idle connections, by peer URL.
struct Pool {
    peers: Vec<(String, Vec<Idle>)>,
    /// When connections idle too long (and peers gone from DNS) were last dropped.
    swept: Option<Instant>,
}

thread_local! {
    /// Per thread: a worker's request goes out and comes back on its own thread (one shared
    /// pool sent exchanges across threads).
    static IDLE: RefCell<Pool> = const { RefCell::new(Pool { peers: Vec::new(), swept: None }) };
}

fn take_idle(peer: &str, idle_for: Duration) -> Option<TcpStream> {
    IDLE.with_borrow_mut(|pool| {
        let (_, stack) = pool.peers.iter_mut().find(|(p, _)| p == peer)?;
        // The most recent first; older ones may be near the peer's keep-alive.
        while let Some(c) = stack.pop() {
            if c.since.elapsed() < idle_for {
                return Some(c.stream);
            }
        }
        None
    })
}

fn put_idle(peer: &str, stream: TcpStream, idle_for: Duration) {
    let now = Instant::now();
    IDLE.with_borrow_mut(|pool| {
        // Once per idle time: what was not reused within it goes, and so does a peer with no
        // connection left (pods replaced in a rollout never come back under their address).
        if pool.swept.is_none_or(|t| now.duration_since(t) >= idle_for) {
            pool.swept = Some(now);
            pool.peers.retain_mut(|(_, stack)| {
                stack.retain(|c| now.duration_since(c.since) < idle_for);
                !stack.is_empty()
            });
        }
        let at = match pool.peers.iter().position(|(p, _)| p == peer) {
            Some(at) => at,
            None => {
                pool.peers.push((peer.to_owned(), Vec::new()));
                pool.peers.len() - 1
            }
        };
        let stack = &mut pool.peers[at].1;
        if stack.len() < MAX_IDLE {
            stack.push(Idle { stream, since: now });
        }
    });
}

/// A peer's answer: its status, head and body.
#[derive(Debug)]
pub(super) struct Reply {
    pub status: u16,
    head: Bytes,
    /// Each header's name and value, as ranges of `head`.
    headers: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
    pub body: Bytes,
}

impl Reply {
    /// The first value of header `name` (ASCII case-insensitive), "" when absent or not text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| self.head[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|(_, v)| std::str::from_utf8(&self.head[v.clone()]).ok())
            .unwrap_or("")
    }
}

/// How to reach the peers, and how long a connection may stay idle.
pub(super) struct Transport {
    connect: Duration,
    idle_for: Duration,
}

/// What goes out: method, path, the secret header and an optional JSON body.
pub(super) struct Outgoing<'a> {
    pub method: &'static str,
    pub path: &'a str,
    pub secret: (&'static str, &'a str),
    pub json: Option<Vec<u8>>,
}

impl Transport {
    /// `keep_alive` is the peers' `server.keep_alive_s` (one deployment, one config): an idle
    /// connection is reused for half of it, so that no request goes out on a connection the peer
    /// is closing (kept 30 s, such a request failed and marked a healthy peer down).
    pub(super) fn new(connect: Duration, keep_alive: Duration) -> Self {
        Self { connect, idle_for: keep_alive / 2 }
    }

    /// One exchange with `peer` (`http://host:port`, maybe with a path prefix), its body at most
    /// `max_body` bytes. A kept connection that fails before answering a byte (the peer closed
    /// it meanwhile) is retried once on a new one.
    pub(super) async fn send(&self, peer: &str, out: &Outgoing<'_>, max_body: u64) -> Result<Reply, String> {
        let (authority, prefix) = split(peer)?;
        let request = request_bytes(authority, prefix, out);
        if let Some(stream) = take_idle(peer, self.idle_for) {
            match exchange(stream, &request, max_body).await {
                Ok((reply, reusable)) => return Ok(self.keep(peer, reply, reusable)),
                Err(Failure::Stale) => {}
                Err(Failure::Broken(why)) => return Err(why),
            }
        }
        let stream = tokio::time::timeout(self.connect, TcpStream::connect(authority))
            .await
            .map_err(|_| "timed out connecting".to_owned())?
            .map_err(|_| "connection refused or unreachable".to_owned())?;
        let _ = stream.set_nodelay(true);
        match exchange(stream, &request, max_body).await {
            Ok((reply, reusable)) => Ok(self.keep(peer, reply, reusable)),
            Err(Failure::Stale) => Err("connection closed before an answer".into()),
            Err(Failure::Broken(why)) => Err(why),
        }
    }

    fn keep(&self, peer: &str, reply: Reply, reusable: Option<TcpStream>) -> Reply {
        if let Some(stream) = reusable {
            put_idle(peer, stream, self.idle_for);
        }
        reply
    }
}

/// `http://host:port/prefix` → (`host:port`, `/prefix`).
fn split(peer: &str) -> Result<(&str, &str), String> {
    let rest = peer.strip_prefix("http://").ok_or_else(|| format!("not an http:// peer URL: {peer}"))?;
    Ok(match rest.find('/') {
        Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
        None => (rest, ""),
    })
}

fn request_bytes(authority: &str, prefix: &str, out: &Outgoing<'_>) -> Vec<u8> {
    let body = out.json.as_deref().unwrap_or_default();
    let mut req = Vec::with_capacity(160 + prefix.len() + out.path.len() + out.secret.1.len() + body.len());
    for part in [out.method, " ", prefix, out.path, " HTTP/1.1\r\nhost: ", authority, "\r\n"] {
        req.extend_from_slice(part.as_bytes());
    }
    for part in [out.secret.0, ": ", out.secret.1, "\r\n"] {
        req.extend_from_slice(part.as_bytes());
    }
    if out.json.is_some() {
        req.extend_from_slice(b"content-type: application/json\r\n");
    }
    req.extend_from_slice(b"content-length: ");
    req.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    req.extend_from_slice(b"\r\n\r\n");
    req.extend_from_slice(body);
    req
}

enum Failure {
    /// Nothing came back on a connection that may have been closed while idle: worth one retry.
    Stale,
    Broken(String),
}

/// Write `request`, read the answer; the connection back when it can carry another request.
async fn exchange(
    mut stream: TcpStream,
    request: &[u8],
    max_body: u64,
) -> Result<(Reply, Option<TcpStream>), Failure> {
    if stream.write_all(request).await.is_err() {
        return Err(Failure::Stale);
    }
    let mut buf = BytesMut::with_capacity(8 << 10);
    let (status, head_len, headers, length, close) = loop {
        let n = match stream.read_buf(&mut buf).await {
            Ok(n) => n,
            Err(_) if buf.is_empty() => return Err(Failure::Stale),
            Err(e) => return Err(broken(&format!("reading the answer: {e}"))),
        };
        if n == 0 {
            return Err(if buf.is_empty() { Failure::Stale } else { broken("connection closed mid-answer") });
        }
        if let Some(head) = parse_head(&buf)? {
            break head;
        }
        if buf.len() >= MAX_HEAD {
            return Err(broken("answer head too large"));
        }
    };
    if length > max_body {
        return Err(broken(&format!("answer over {max_body} bytes")));
    }
    let length = length as usize;
    let head = buf.split_to(head_len).freeze();
    if buf.len() > length {
        return Err(broken("more bytes than the answer's Content-Length"));
    }
    // The body in one allocation of its exact size: what came with the head, then the rest.
    let mut body = BytesMut::with_capacity(length);
    body.extend_from_slice(&buf);
    while body.len() < length {
        let n = stream.read_buf(&mut body).await.map_err(|e| broken(&format!("reading the answer: {e}")))?;
        if n == 0 {
            return Err(broken("connection closed mid-answer"));
        }
    }
    let reply = Reply { status, head, headers, body: body.freeze() };
    Ok((reply, (!close).then_some(stream)))
}

fn broken(why: &str) -> Failure {
    Failure::Broken(why.to_owned())
}

type Head = (u16, usize, Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>, u64, bool);

/// The answer's head once `buf` holds all of it: status, head length, header ranges, body length
/// and whether the peer closes the connection after it.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Failure> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(broken(&format!("unreadable answer head: {e}"))),
    };
    let status = resp.code.unwrap_or(0);
    let offset = |s: &[u8]| s.as_ptr() as usize - buf.as_ptr() as usize;
    let (mut length, mut close) = (None, resp.version == Some(0));
    let mut headers = Vec::with_capacity(resp.headers.len());
    for h in resp.headers.iter() {
        let (name, value) = (h.name.as_bytes(), h.value);
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(value).ok().and_then(|v| v.trim().parse::<u64>().ok());
            length = Some(n.ok_or_else(|| broken("an unreadable Content-Length"))?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(broken("a chunked answer (peers answer with a Content-Length)"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = value.eq_ignore_ascii_case(b"close");
        }
        let n = offset(name);
        let v = offset(value);
        headers.push((n..n + name.len(), v..v + value.len()));
    }
    // Only these answers have no body without saying so.
    let length = match (length, status) {
        (Some(n), _) => n,
        (None, 204 | 304) => 0,
        (None, _) => return Err(broken("an answer without a Content-Length")),
    };
    Ok(Some((status, head_len, headers, length, close)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn out(path: &str) -> Outgoing<'_> {
        Outgoing { method: "POST", path, secret: ("x-secret", "s3"), json: Some(b"{\"a\":1}".to_vec()) }
    }

    /// A server that answers each accepted connection's requests with `answers` in turn.
    async fn serve(answers: Vec<&'static [u8]>) -> (String, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            let (mut s, _) = l.accept().await.unwrap();
            for a in answers {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap();
                seen.push(buf[..n].to_vec());
                s.write_all(a).await.unwrap();
            }
            seen
        });
        (url, task)
    }

    #[tokio::test]
    async fn an_answer_is_read_to_its_length_and_the_connection_kept() {
        let (url, task) = serve(vec![
            b"HTTP/1.1 200 OK\r\nETag: \"e\"\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 422 Unprocessable\r\ncontent-length: 2\r\n\r\n{}",
        ])
        .await;
        let t = Transport::new(Duration::from_secs(1), Duration::from_secs(10));
        let r = t.send(&url, &out("/peer/v1/image"), 100).await.unwrap();
        assert_eq!((r.status, &r.body[..], r.header("etag")), (200, &b"hello"[..], "\"e\""));
        // Same connection: the server accepts only one.
        let r = t.send(&url, &out("/peer/v1/image"), 100).await.unwrap();
        assert_eq!((r.status, &r.body[..]), (422, &b"{}"[..]));
        let seen = task.await.unwrap();
        let first = String::from_utf8(seen[0].clone()).unwrap();
        assert!(first.starts_with("POST /peer/v1/image HTTP/1.1\r\nhost: 127.0.0.1:"), "{first}");
        assert!(
            first.contains("\r\nx-secret: s3\r\n") && first.ends_with("content-length: 7\r\n\r\n{\"a\":1}")
        );
    }

    #[tokio::test]
    async fn oversized_chunked_and_truncated_answers_are_refused() {
        let t = Transport::new(Duration::from_secs(1), Duration::from_secs(10));
        for (answer, why) in [
            (&b"HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\nx"[..], "over 100 bytes"),
            (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", "chunked"),
            (b"HTTP/1.1 200 OK\r\n\r\n", "without a Content-Length"),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nabc", "more bytes"),
        ] {
            let (url, _task) = serve(vec![answer]).await;
            let e = t.send(&url, &out("/x"), 100).await.unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[tokio::test]
    async fn a_kept_connection_the_peer_closed_is_retried_on_a_new_one() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            for _ in 0..2 {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nk").await.unwrap();
                // Closed after one answer: the next request finds it gone.
            }
        });
        let t = Transport::new(Duration::from_secs(1), Duration::from_secs(10));
        for _ in 0..2 {
            let r = t.send(&url, &out("/x"), 100).await.unwrap();
            assert_eq!(&r.body[..], b"k");
        }
    }

    fn idle_peers() -> Vec<(String, usize)> {
        IDLE.with_borrow(|pool| pool.peers.iter().map(|(p, s)| (p.clone(), s.len())).collect())
    }

    #[tokio::test]
    async fn connections_not_reused_within_the_idle_time_are_closed_and_gone_peers_forgotten() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let idle_for = Duration::from_millis(100);
        put_idle("http://gone:1", TcpStream::connect(addr).await.unwrap(), idle_for);
        put_idle("http://gone:1", TcpStream::connect(addr).await.unwrap(), idle_for);
        assert_eq!(idle_peers(), [("http://gone:1".to_owned(), 2)]);
        tokio::time::sleep(Duration::from_millis(150)).await;
        put_idle("http://here:1", TcpStream::connect(addr).await.unwrap(), idle_for);
        assert_eq!(idle_peers(), [("http://here:1".to_owned(), 1)], "the sweep dropped the stale peer");
        assert!(take_idle("http://gone:1", idle_for).is_none());
        assert!(take_idle("http://here:1", idle_for).is_some());
    }

    #[test]
    fn peer_urls_split_into_authority_and_prefix() {
        assert_eq!(split("http://a:1").unwrap(), ("a:1", ""));
        assert_eq!(split("http://a:1/edge/").unwrap(), ("a:1", "/edge"));
        assert!(split("https://a:1").is_err());
    }
}

//! The client's address: the TCP peer, or behind `server.trusted_proxies` the right-most untrusted `X-Forwarded-For` / `Forwarded` hop; IPv6 keyed by its /64.
//!
//! Computed once per request by the request middleware ([`ClientAddr`] in the request's
//! extensions); the rest of the code asks [`client_addr`] for the key limits and budgets count
//! by (the access line logs the full address).
//!
//! Rules, in order:
//! - The peer and every hop are canonical: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the
//!   IPv4 address.
//! - A peer outside `trusted_proxies` is the client; its forwarding headers are not read at all.
//! - From a trusted peer, the chain (all lines of the header, in order) is walked from the right,
//!   skipping trusted hops; the first untrusted hop is the client. If every hop is trusted, the
//!   left-most is.
//! - A hop the proxy could not name (`unknown`, an RFC 7239 obfuscated `_identifier`, a
//!   `Forwarded` element without `for=`) ends the walk: the client is the trusted hop that
//!   reported it (the peer, or the last trusted hop walked over).
//! - A header that does not parse (an entry that is not an address, unbalanced quotes) is
//!   ignored as a whole: the client is the peer.
//! - When a trusted peer sends both headers, each is walked on its own: if they name the same
//!   client, that is it; if they disagree, the client is the peer. A proxy appends to the header
//!   it manages and passes the other through, so a disagreement means a client wrote one of them;
//!   it is then counted with the proxy instead of at an address of its choosing.

use std::net::{IpAddr, Ipv6Addr};

use actix_web::http::header::{HeaderMap, HeaderName};
use actix_web::{web, HttpMessage, HttpRequest};

use crate::net::TrustedProxies;
use crate::state::AppState;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Who sent the request, as worked out once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's address (canonical; mapped IPv4 as IPv4). For log lines.
    pub ip: IpAddr,
    /// What limits and budgets count by: `ip` for IPv4, its /64 for IPv6 (one host has a whole /64).
    pub key: IpAddr,
}

impl ClientAddr {
    pub fn new(ip: IpAddr) -> Self {
        let ip = ip.to_canonical();
        let key = match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u64::MAX as u128))),
        };
        Self { ip, key }
    }
}

/// The client behind `peer` (see the module's rules). `None` without a peer.
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &TrustedProxies) -> Option<ClientAddr> {
    let peer = peer?.to_canonical();
    if !trusted.contains(peer) {
        return Some(ClientAddr::new(peer));
    }
    let xff = walk_header(headers, &X_FORWARDED_FOR, peer, trusted, |v, out| {
        for entry in v.split(',') {
            out.push(hop(entry));
        }
        true
    });
    let fwd = walk_header(headers, &FORWARDED, peer, trusted, forwarded_hops);
    let ip = match (xff, fwd) {
        (Some(a), Some(b)) if a == b => a,
        (Some(_), Some(_)) => peer,
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => peer,
    };
    Some(ClientAddr::new(ip))
}

/// The client's limiting key (IPv6: its /64): what failed-auth limits and per-address budgets count by.
pub fn client_addr(req: &HttpRequest) -> Option<IpAddr> {
    of(req).map(|c| c.key)
}

fn of(req: &HttpRequest) -> Option<ClientAddr> {
    if let Some(c) = req.extensions().get::<ClientAddr>() {
        return Some(*c);
    }
    // Not through the request middleware (an app wired without it): the same rules, uncached.
    compute(req)
}

/// The client of `req` from its peer, its headers and the app's `server.trusted_proxies`.
pub(super) fn compute(req: &HttpRequest) -> Option<ClientAddr> {
    let none = TrustedProxies::default();
    let trusted = req.app_data::<web::Data<AppState>>().map(|s| &s.proxies).unwrap_or(&none);
    resolve(req.peer_addr().map(|a| a.ip()), req.headers(), trusted)
}

/// One hop of a forwarding chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Addr(IpAddr),
    /// `unknown` or an obfuscated identifier: the proxy did not (or would not) name it.
    Opaque,
    Malformed,
}

/// Walk one header's chain; `None` when the header is absent or does not parse.
fn walk_header(
    headers: &HeaderMap,
    name: &HeaderName,
    peer: IpAddr,
    trusted: &TrustedProxies,
    split: impl Fn(&str, &mut Vec<Hop>) -> bool,
) -> Option<IpAddr> {
    let mut hops = Vec::new();
    let mut present = false;
    for value in headers.get_all(name) {
        present = true;
        let Ok(v) = value.to_str() else {
            return None;
        };
        if !split(v, &mut hops) {
            return None;
        }
    }
    if !present {
        return None;
    }
    let mut last = peer;
    for h in hops.iter().rev() {
        match *h {
            Hop::Addr(ip) if trusted.contains(ip) => last = ip,
            Hop::Addr(ip) => return Some(ip),
            Hop::Opaque => return Some(last),
            Hop::Malformed => return None,
        }
    }
    Some(last)
}

/// An `X-Forwarded-For` entry or a `Forwarded` `for=` value (quotes removed): `1.2.3.4`,
/// `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:80`, `unknown`, `_hidden`.
fn hop(s: &str) -> Hop {
    let s = s.trim();
    if s.eq_ignore_ascii_case("unknown") || (s.starts_with('_') && s.len() > 1) {
        return Hop::Opaque;
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Hop::Addr(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Hop::Addr(sa.ip().to_canonical());
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        if let Ok(ip) = inner.parse::<Ipv6Addr>() {
            return Hop::Addr(IpAddr::V6(ip).to_canonical());
        }
    }
    // An address with an obfuscated port (`192.0.2.1:_p`) still names the host.
    if let Some((host, port)) = s.rsplit_once(':') {
        if port.starts_with('_') {
            let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
            if let Ok(ip) = host.parse::<IpAddr>() {
                return Hop::Addr(ip.to_canonical());
            }
        }
    }
    Hop::Malformed
}

/// RFC 7239 `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"`: one hop per
/// element (its `for=`; an element without one is opaque). `false` if the value does not parse.
fn forwarded_hops(v: &str, out: &mut Vec<Hop>) -> bool {
    let Some(elements) = split_quoted(v, ',') else {
        return false;
    };
    for element in elements {
        if element.trim().is_empty() {
            continue;
        }
        let Some(pairs) = split_quoted(element, ';') else {
            return false;
        };
        let mut found = Hop::Opaque;
        for pair in pairs {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let Some((name, value)) = pair.split_once('=') else {
                return false;
            };
            if name.trim().eq_ignore_ascii_case("for") {
                let Some(value) = unquote(value.trim()) else {
                    return false;
                };
                found = hop(&value);
            }
        }
        out.push(found);
    }
    true
}

/// Split on `sep` outside quoted strings; `None` if a quote is left open.
fn split_quoted(s: &str, sep: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    parts.push(&s[start..]);
    Some(parts)
}

/// A token as is, or a quoted-string without its quotes and escapes; `None` if malformed.
fn unquote(v: &str) -> Option<String> {
    let Some(inner) = v.strip_prefix('"') else {
        return (!v.contains('"') && !v.contains('\\')).then(|| v.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(nets).unwrap()
    }

    fn client(peer: &str, headers: &[(&str, &str)], nets: &[&str]) -> IpAddr {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        resolve(Some(ip(peer)), &map, &trusted(nets)).unwrap().ip
    }

    const PROXY: &[&str] = &["10.0.0.0/8"];

    #[test]
    fn untrusted_peers_headers_are_ignored() {
        for h in [("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=1.2.3.4")] {
            assert_eq!(client("192.0.2.9", &[h], &[]), ip("192.0.2.9"));
            assert_eq!(client("192.0.2.9", &[h], PROXY), ip("192.0.2.9"));
        }
        // A trusted address inside the chain does not make an untrusted peer trusted.
        assert_eq!(client("192.0.2.9", &[("x-forwarded-for", "10.1.1.1")], PROXY), ip("192.0.2.9"));
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let xff = |v: &str| client("10.0.0.1", &[("x-forwarded-for", v)], PROXY);
        assert_eq!(xff("203.0.113.7"), ip("203.0.113.7"));
        // The client prepended a forged hop; the proxy appended the real one.
        assert_eq!(xff("6.6.6.6, 203.0.113.7"), ip("203.0.113.7"));
        // Trusted hops (a second proxy) are skipped.
        assert_eq!(xff("6.6.6.6, 203.0.113.7, 10.2.0.5"), ip("203.0.113.7"));
        // Every hop trusted: the left-most.
        assert_eq!(xff("10.9.9.9, 10.2.0.5"), ip("10.9.9.9"));
        // Garbage left of the client is the client's own business.
        assert_eq!(xff("not an address, 203.0.113.7"), ip("203.0.113.7"));
        // Ports and brackets.
        assert_eq!(xff("203.0.113.7:5555"), ip("203.0.113.7"));
        assert_eq!(xff("[2001:db8::1]:443"), ip("2001:db8::1"));
        assert_eq!(xff("[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(xff("2001:db8::1"), ip("2001:db8::1"));
        // Several header lines are one list, in order.
        let two = client(
            "10.0.0.1",
            &[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "203.0.113.7, 10.2.0.5")],
            PROXY,
        );
        assert_eq!(two, ip("203.0.113.7"));
        // No header from a trusted peer: the peer (a probe, the proxy itself).
        assert_eq!(client("10.0.0.1", &[], PROXY), ip("10.0.0.1"));
    }

    #[test]
    fn unknown_hops_count_as_the_proxy_that_reported_them() {
        let xff = |v: &str| client("10.0.0.1", &[("x-forwarded-for", v)], PROXY);
        assert_eq!(xff("203.0.113.7, unknown"), ip("10.0.0.1"));
        assert_eq!(xff("203.0.113.7, UNKNOWN, 10.2.0.5"), ip("10.2.0.5"));
        let fwd = |v: &str| client("10.0.0.1", &[("forwarded", v)], PROXY);
        assert_eq!(fwd("for=203.0.113.7, for=unknown"), ip("10.0.0.1"));
        assert_eq!(fwd("for=203.0.113.7, for=_hidden, for=10.2.0.5"), ip("10.2.0.5"));
        assert_eq!(fwd("for=\"_SEVKISEK\""), ip("10.0.0.1"));
        // An element without `for=` names nobody.
        assert_eq!(fwd("for=203.0.113.7, proto=https;by=10.0.0.1"), ip("10.0.0.1"));
    }

    #[test]
    fn garbage_falls_back_to_the_peer() {
        let xff = |v: &str| client("10.0.0.1", &[("x-forwarded-for", v)], PROXY);
        for v in ["", " ", ",", "203.0.113.7, bogus", "1.2.3.4.5", "[::1", "999.1.1.1", "fe80::1%eth0"] {
            assert_eq!(xff(v), ip("10.0.0.1"), "{v:?}");
        }
        let fwd = |v: &str| client("10.0.0.1", &[("forwarded", v)], PROXY);
        for v in [
            "for=\"[2001:db8::1]",
            "for=203.0.113.7, for=\"unterminated",
            "for",
            "for=nonsense",
            "for=\"a\"b\"",
            "for=\"\\",
            ";;=;",
        ] {
            assert_eq!(fwd(v), ip("10.0.0.1"), "{v:?}");
        }
        // Not UTF-8: ignored, no panic.
        let mut map = HeaderMap::new();
        map.insert(X_FORWARDED_FOR, HeaderValue::from_bytes(b"\xff\xfe1.2.3.4").unwrap());
        assert_eq!(resolve(Some(ip("10.0.0.1")), &map, &trusted(PROXY)).unwrap().ip, ip("10.0.0.1"));
        // Long and deep: still one pass, still the peer or the client.
        let deep = vec!["10.3.3.3"; 2000].join(",");
        assert_eq!(xff(&format!("203.0.113.7,{deep}")), ip("203.0.113.7"));
        assert_eq!(xff(&":".repeat(10_000)), ip("10.0.0.1"));
        assert_eq!(xff(&format!("{}:_p", ":".repeat(10_000))), ip("10.0.0.1"));
        assert_eq!(resolve(None, &HeaderMap::new(), &trusted(PROXY)), None);
    }

    #[test]
    fn forwarded_quoting_and_parameters() {
        let fwd = |v: &str| client("10.0.0.1", &[("forwarded", v)], PROXY);
        assert_eq!(fwd("for=192.0.2.60;proto=http;by=203.0.113.43"), ip("192.0.2.60"));
        assert_eq!(fwd("For=\"[2001:db8:cafe::17]:4711\""), ip("2001:db8:cafe::17"));
        assert_eq!(fwd("for=\"[2001:db8:cafe::17]\""), ip("2001:db8:cafe::17"));
        assert_eq!(fwd("for=\"192.0.2.43:47011\""), ip("192.0.2.43"));
        assert_eq!(fwd("for=\"192.0.2.43:_p1\""), ip("192.0.2.43"));
        assert_eq!(fwd("for=\"[2001:db8::1]:_p1\""), ip("2001:db8::1"));
        assert_eq!(fwd("for=192.0.2.43, for=198.51.100.17"), ip("198.51.100.17"));
        assert_eq!(fwd("for=198.51.100.17, for=10.2.0.5;proto=https"), ip("198.51.100.17"));
        // Separators inside quotes do not split.
        assert_eq!(fwd("for=192.0.2.1;ext=\"a,b;c\", for=198.51.100.17"), ip("198.51.100.17"));
        assert_eq!(fwd("for=\"192.0.2.1\";ext=\"q\\\"x\""), ip("192.0.2.1"));
    }

    #[test]
    fn both_headers_agree_or_the_peer_counts() {
        let both = |x, f| client("10.0.0.1", &[("x-forwarded-for", x), ("forwarded", f)], PROXY);
        assert_eq!(both("203.0.113.7", "for=203.0.113.7"), ip("203.0.113.7"));
        assert_eq!(both("6.6.6.6, 203.0.113.7", "for=203.0.113.7"), ip("203.0.113.7"));
        // One of them was written by the client: counted with the proxy, not where it chose.
        assert_eq!(both("203.0.113.7", "for=6.6.6.6"), ip("10.0.0.1"));
        // One unreadable: the other one decides.
        assert_eq!(both("203.0.113.7", "for=\"broken"), ip("203.0.113.7"));
    }

    #[test]
    fn ipv6_keys_by_64_and_mapped_ipv4_is_ipv4() {
        let a = ClientAddr::new(ip("2001:db8:1:2:aaaa::1"));
        let b = ClientAddr::new(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        let c = ClientAddr::new(ip("2001:db8:1:3::1"));
        assert_eq!(a.key, ip("2001:db8:1:2::"));
        assert_eq!(a.key, b.key);
        assert_ne!(a.key, c.key);
        assert_eq!(a.ip, ip("2001:db8:1:2:aaaa::1"), "logs keep the whole address");
        let m = ClientAddr::new(ip("::ffff:192.0.2.7"));
        assert_eq!((m.ip, m.key), (ip("192.0.2.7"), ip("192.0.2.7")));
        // A mapped peer is matched against IPv4 networks, and mapped hops too.
        assert_eq!(
            client("::ffff:10.0.0.1", &[("x-forwarded-for", "::ffff:203.0.113.7")], PROXY),
            ip("203.0.113.7")
        );
        assert_eq!(client("::ffff:192.0.2.9", &[("x-forwarded-for", "1.2.3.4")], PROXY), ip("192.0.2.9"));
        assert_eq!(
            client("10.0.0.1", &[("x-forwarded-for", "10.1.1.1")], &["::ffff:10.0.0.0/104"]),
            ip("10.1.1.1")
        );
    }
}

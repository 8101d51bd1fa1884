//! Delegated decisions (nginx `auth_request` style): ask a validator about the canonical resource, cache its answer per (credential digest, that resource), fail closed.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Path, Url};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::HttpRequest;

use super::credential::strip_token_param;
use super::hot::Hot;
use super::parents::Described;
use super::{AuthError, ResourceSet};
use crate::config::{DecisionScope, DelegateConfig};
use crate::ids::OrthancId;
use crate::model::Level;
use crate::upstream::UpstreamError;

/// What one cached answer covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Covers {
    /// Every resource of the credential (`decision = "credential"`, or an answer listing studies).
    Credential,
    /// Exactly this resource, as resolved from the URL the validator was shown.
    Resource(Level, OrthancId),
    /// A URL naming no resource Orthanc knows (unknown UID, lineage that does not hold): the
    /// canonical path the validator was shown.
    Unresolved(String),
}

/// Cache key: keyed blake3 digest of the forwarded credential headers, and what it covers.
type Key = ([u8; 32], Covers);

/// The forwarded credential of one request. The raw values are kept only for the validator call.
pub struct ForwardedCredential {
    digest: [u8; 32],
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The route the request matched and its parameters (shared with the request, not copied):
    /// what `uri` rebuilds the `X-Original-URI` from, only when the validator is asked.
    route: Route,
    method: Method,
    /// The client's address, for the failed-authentication limiter and as the budget key of a
    /// user the validator does not name.
    pub client: Option<IpAddr>,
}

impl std::fmt::Debug for ForwardedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardedCredential").field("digest", &self.short_digest()).finish_non_exhaustive()
    }
}

impl ForwardedCredential {
    /// A short, non-reversible name for logs: the digest's first 4 bytes in hex.
    fn short_digest(&self) -> String {
        let mut hex = String::with_capacity(8);
        crate::ids::push_hex(&mut hex, &self.digest[..4]);
        hex
    }

    /// The principal's name, `delegated:<short digest>`. Requests come in runs from one
    /// credential, so each worker thread keeps the last name it made.
    pub fn principal_name(&self) -> Arc<str> {
        thread_local! {
            static LAST: std::cell::RefCell<Option<([u8; 4], Arc<str>)>> = const { std::cell::RefCell::new(None) };
        }
        let prefix: [u8; 4] = [self.digest[0], self.digest[1], self.digest[2], self.digest[3]];
        LAST.with_borrow_mut(|last| match last {
            Some((seen, name)) if *seen == prefix => name.clone(),
            _ => {
                let mut name = String::with_capacity(18);
                name.push_str("delegated:");
                crate::ids::push_hex(&mut name, &prefix);
                let name: Arc<str> = name.into();
                *last = Some((prefix, name.clone()));
                name
            }
        })
    }

    /// The canonical path, then `?` and the canonical query when there is one: the
    /// `X-Original-URI`.
    fn uri(&self) -> String {
        let mut uri = self.route.canonical_path();
        append_canonical_query(&mut uri, self.route.params.get_ref().uri().query().unwrap_or(""));
        uri
    }
}

/// The route pattern a request matched (`None`: a route without one) and its matched parameters.
struct Route {
    pattern: Option<&'static str>,
    params: Path<Url>,
}

/// What the validator is asked about: a resolved resource (described lazily: the description
/// costs Orthanc lookups, made only when no cached answer covers the request), or a URL that
/// resolves to nothing.
pub enum Ask<'a, F> {
    Resource { level: Level, id: &'a OrthancId, describe: F },
    Unresolved { level: Level },
}

/// An allowing answer.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// `Some`: only these studies (the `studies_header`).
    pub studies: Option<Arc<ResourceSet>>,
    /// `delegated-user:<name>` when the validator named the user (`user_header`): the key of
    /// the user's miss budget, made once per answer rather than once per request.
    pub budget: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
enum Verdict {
    Allow(Allowed),
    Unauthenticated,
    Forbidden,
}

#[derive(Debug, Clone)]
struct Decision {
    verdict: Verdict,
    ttl: Duration,
    /// When the answer was made plus `ttl`: where the shared entry and every `hot` copy end.
    until: Instant,
}

struct ByDecision;

impl moka::Expiry<Key, Decision> for ByDecision {
    fn expire_after_create(&self, _: &Key, d: &Decision, _: Instant) -> Option<Duration> {
        Some(d.ttl)
    }
}

struct Inner {
    http: reqwest::Client,
    url: String,
    forward: Vec<HeaderName>,
    ttl: Duration,
    max_ttl: Duration,
    mode: DecisionScope,
    studies_header: Option<HeaderName>,
    user_header: Option<HeaderName>,
    cache: moka::future::Cache<Key, Decision>,
    /// Each worker thread's copies of `cache` (see `auth::hot`), each until its decision's own end.
    hot: Hot<Key, Decision>,
    /// Key of the keyed blake3 digest of forwarded credentials (derived once).
    digest_key: [u8; 32],
}

/// The validator client and its decision cache. Cheap to clone.
#[derive(Clone)]
pub struct Delegate {
    inner: Arc<Inner>,
}

/// Decisions each worker thread keeps in front of the shared cache.
const HOT_DECISIONS: usize = 4096;

fn header_name(name: &str) -> anyhow::Result<Option<HeaderName>> {
    Ok((!name.is_empty()).then(|| HeaderName::from_bytes(name.as_bytes())).transpose()?)
}

impl Delegate {
    /// `None` when `auth.delegate.url` is empty.
    pub fn from_config(cfg: &DelegateConfig) -> anyhow::Result<Option<Self>> {
        if cfg.url.is_empty() {
            return Ok(None);
        }
        let forward = cfg
            .forward_headers
            .iter()
            .map(|h| HeaderName::from_bytes(h.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Self {
            inner: Arc::new(Inner {
                http: reqwest::Client::builder()
                    .timeout(Duration::from_millis(cfg.timeout_ms))
                    .connect_timeout(Duration::from_millis(cfg.timeout_ms))
                    .redirect(reqwest::redirect::Policy::none())
                    .pool_max_idle_per_host(32)
                    .build()?,
                url: cfg.url.clone(),
                forward,
                ttl: Duration::from_secs(cfg.cache_ttl_s),
                max_ttl: Duration::from_secs(cfg.max_cache_ttl_s),
                mode: cfg.decision,
                studies_header: header_name(&cfg.studies_header)?,
                user_header: header_name(&cfg.user_header)?,
                digest_key: blake3::derive_key("orthanc-edge delegated credential v1", b""),
                cache: moka::future::Cache::builder()
                    .max_capacity(cfg.cache_entries)
                    .expire_after(ByDecision)
                    .build(),
                hot: Hot::new(HOT_DECISIONS),
            }),
        }))
    }

    /// The request's forwarded credential, or `None` when it carries none of the headers.
    pub fn presented(&self, req: &HttpRequest, client: Option<IpAddr>) -> Option<ForwardedCredential> {
        let mut headers = Vec::new();
        for name in &self.inner.forward {
            for value in req.headers().get_all(name) {
                headers.push((name.clone(), value.clone()));
            }
        }
        if headers.is_empty() {
            return None;
        }
        // `name\0value\0` of each header, hashed in one call: a streaming `Hasher` is a 1.9 KB
        // value, copied on every request (see `benches/auth_paths.rs`). The scratch buffer is
        // the thread's, as long as the longest headers it has seen (bounded by the server's
        // header limit).
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let digest = SCRATCH.with_borrow_mut(|buf| {
            buf.clear();
            for (name, value) in &headers {
                buf.extend_from_slice(name.as_str().as_bytes());
                buf.push(0);
                buf.extend_from_slice(value.as_bytes());
                buf.push(0);
            }
            *blake3::keyed_hash(&self.inner.digest_key, buf).as_bytes()
        });
        let pattern = req.app_data::<crate::http::RoutePattern>().map(|p| p.0);
        Some(ForwardedCredential {
            digest,
            headers,
            route: Route { pattern, params: req.match_info().clone() },
            method: req.method().clone(),
            client,
        })
    }

    /// The validator's answer for `p` on what `ask` names; `Err` when denied or unavailable.
    /// Concurrent requests for the same key share one validator call.
    pub async fn decide<F>(&self, p: &ForwardedCredential, ask: Ask<'_, F>) -> Result<Allowed, AuthError>
    where
        F: Future<Output = Result<Described, UpstreamError>>,
    {
        let i = &self.inner;
        // An answer that covered every resource of this credential comes first, then one for
        // this resource: this thread's copies, then the shared cache.
        let wide: Key = (p.digest, Covers::Credential);
        if let Some(d) = i.hot.get(&wide) {
            return verdict(d.verdict);
        }
        let covers = match (&ask, i.mode) {
            (_, DecisionScope::Credential) => Covers::Credential,
            (Ask::Resource { level, id, .. }, DecisionScope::Resource) => {
                Covers::Resource(*level, (*id).clone())
            }
            (Ask::Unresolved { .. }, DecisionScope::Resource) => Covers::Unresolved(p.route.canonical_path()),
        };
        let key: Key = (p.digest, covers);
        let narrow = key.1 != Covers::Credential;
        if narrow {
            if let Some(d) = i.hot.get(&key) {
                return verdict(d.verdict);
            }
        }
        for k in [Some(&wide), narrow.then_some(&key)].into_iter().flatten() {
            if let Some(d) = i.cache.get(k).await {
                i.hot.put(k.clone(), d.clone(), Some(d.until));
                return verdict(d.verdict);
            }
        }
        // Not cached: the validator is asked (what `try_get_with` takes is built only now). The
        // call is boxed: with the validator's request in it, it is kilobytes that would otherwise
        // sit in every delegated request's future (see `Parents::node`).
        let d = Box::pin(i.cache.try_get_with(key.clone(), async move {
            let (level, described) = match ask {
                // What Orthanc does not know is not described: no resolved-id headers.
                Ask::Resource { level, describe, .. } => match describe.await {
                    Ok(d) => (level, d),
                    Err(UpstreamError::NotFound) => (level, Described::default()),
                    Err(e) => return Err(AuthError::Upstream(e)),
                },
                Ask::Unresolved { level } => (level, Described::default()),
            };
            self.call(p, level, &described).await
        }))
        .await
        .map_err(|e: Arc<AuthError>| (*e).clone())?;
        if matches!(&d.verdict, Verdict::Allow(Allowed { studies: Some(_), .. })) {
            i.cache.insert(wide.clone(), d.clone()).await;
            i.hot.put(wide, d.clone(), Some(d.until));
        }
        i.hot.put(key, d.clone(), Some(d.until));
        verdict(d.verdict)
    }

    async fn call(
        &self,
        p: &ForwardedCredential,
        level: Level,
        described: &Described,
    ) -> Result<Decision, AuthError> {
        let i = &self.inner;
        let mut req = i
            .http
            .get(&i.url)
            .header("X-Original-URI", p.uri())
            .header("X-Original-Method", p.method.as_str())
            .header("X-Edge-Level", level.as_str());
        for (level, id, uid) in &described.nodes {
            let (id_header, uid_header) = match level {
                Level::Instance => ("X-Edge-Instance", "X-Edge-Instance-UID"),
                Level::Series => ("X-Edge-Series", "X-Edge-Series-UID"),
                Level::Study => ("X-Edge-Study", "X-Edge-Study-UID"),
            };
            req = req.header(id_header, id.as_str());
            if let Some(uid) = uid {
                req = req.header(uid_header, uid.as_str());
            }
        }
        for (name, value) in &p.headers {
            req = req.header(name.as_str(), value.as_bytes());
        }
        let resp = req.send().await.map_err(|e| {
            tracing::warn!(timeout = e.is_timeout(), error = %e.without_url(), "auth validator unreachable");
            AuthError::Unavailable
        })?;
        let status = resp.status().as_u16();
        let verdict = match status {
            200..=299 => {
                let studies = match &i.studies_header {
                    Some(h) => resp.headers().get(h.as_str()).map(|v| studies(v.as_bytes())).transpose()?,
                    None => None,
                };
                let budget = i
                    .user_header
                    .as_ref()
                    .and_then(|h| resp.headers().get(h.as_str()))
                    .and_then(|v| user_name(v.as_bytes()))
                    .map(|user| format!("delegated-user:{user}").into());
                Verdict::Allow(Allowed { studies: studies.map(Arc::new), budget })
            }
            401 => Verdict::Unauthenticated,
            403 => Verdict::Forbidden,
            s => {
                tracing::warn!(status = s, "auth validator answered neither 2xx nor 401/403");
                return Err(AuthError::Unavailable);
            }
        };
        let ttl = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .map_or(i.ttl, |t| t.min(i.max_ttl));
        Ok(Decision { verdict, ttl, until: Instant::now() + ttl })
    }
}

impl Route {
    /// The request path as the route table matched it, each parameter replaced by its decoded,
    /// validated value (`%65…` becomes `e…`, frame `007` becomes `7`): what the validator sees is
    /// what is served. Falls back to the raw path for routes without a pattern.
    fn canonical_path(&self) -> String {
        use std::fmt::Write;
        let Some(pattern) = self.pattern else {
            return self.params.get_ref().uri().path().to_owned();
        };
        let info = &self.params;
        let mut out = String::with_capacity(pattern.len() + 64);
        let mut rest = pattern;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let spec = &rest[open + 1..open + close];
            let name = spec.split(':').next().unwrap_or(spec);
            let value = info.get(name).unwrap_or("");
            match name {
                "frame" => match value.parse::<u32>() {
                    Ok(n) => {
                        let _ = write!(out, "{n}");
                    }
                    Err(_) => percent(&mut out, value),
                },
                _ => percent(&mut out, value),
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// A path segment appended to `out`, percent-encoded where it is not an id, UID or number (those
/// pass as they are).
fn percent(out: &mut String, segment: &str) {
    out.extend(url::form_urlencoded::byte_serialize(segment.as_bytes()));
}

/// `?` and the query without the session `token`, re-encoded from its decoded pairs, appended
/// to `uri`; nothing when that leaves no query.
fn append_canonical_query(uri: &mut String, qs: &str) {
    let qs = strip_token_param(qs);
    if qs.is_empty() {
        return;
    }
    let start = uri.len();
    uri.push('?');
    let mut ser = url::form_urlencoded::Serializer::for_suffix(std::mem::take(uri), start + 1);
    ser.extend_pairs(url::form_urlencoded::parse(qs.as_bytes()));
    *uri = ser.finish();
    if uri.len() == start + 1 {
        uri.truncate(start);
    }
}

/// A validator-named user: printable ASCII, at most 64 characters; anything else is ignored.
fn user_name(v: &[u8]) -> Option<Arc<str>> {
    let s = std::str::from_utf8(v).ok()?.trim();
    (!s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic() || b == b' ')).then(|| s.into())
}

fn verdict(v: Verdict) -> Result<Allowed, AuthError> {
    match v {
        Verdict::Allow(a) => Ok(a),
        Verdict::Unauthenticated => Err(AuthError::Invalid),
        Verdict::Forbidden => Err(AuthError::Denied),
    }
}

/// Study ids separated by commas or spaces; any bad id makes the answer unusable (fail closed).
fn studies(v: &[u8]) -> Result<ResourceSet, AuthError> {
    let text = std::str::from_utf8(v).map_err(|_| AuthError::Unavailable)?;
    let studies = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| OrthancId::parse(s).ok_or(AuthError::Unavailable))
        .collect::<Result<_, _>>()?;
    Ok(ResourceSet { studies, ..Default::default() })
}

/// `Some(ttl)` from `Cache-Control`: `no-store`/`no-cache` → 0, `max-age=N` → N seconds.
fn max_age(cc: &str) -> Option<Duration> {
    let mut age = None;
    for d in cc.split(',').map(str::trim) {
        let lower = d.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            age = n.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_ttl() {
        assert_eq!(max_age("max-age=30"), Some(Duration::from_secs(30)));
        assert_eq!(max_age("private, Max-Age=5"), Some(Duration::from_secs(5)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("max-age=30, no-cache"), Some(Duration::ZERO));
        assert_eq!(max_age("private"), None);
        assert_eq!(max_age("max-age=x"), None);
    }

    #[test]
    fn canonical_queries_drop_the_token_and_reencode() {
        let uri = |qs: &str| {
            let mut u = "/instances/x/preview".to_owned();
            append_canonical_query(&mut u, qs);
            u
        };
        assert_eq!(uri(""), "/instances/x/preview");
        assert_eq!(uri("token=a.b.c"), "/instances/x/preview");
        assert_eq!(uri("w=64&token=a.b.c"), "/instances/x/preview?w=64");
        assert_eq!(uri("w=%36%34&preset=a%20b"), "/instances/x/preview?w=64&preset=a+b");
        assert_eq!(uri("&&"), "/instances/x/preview");
    }

    #[test]
    fn principal_names_carry_the_digest_prefix() {
        let p = |byte| ForwardedCredential {
            digest: [byte; 32],
            headers: Vec::new(),
            route: Route { pattern: None, params: Path::new(Url::new("/x".parse().unwrap())) },
            method: Method::GET,
            client: None,
        };
        let (a, b) = (p(0xab), p(0xcd));
        assert_eq!(&*a.principal_name(), "delegated:abababab");
        assert_eq!(&*a.principal_name(), "delegated:abababab");
        assert_eq!(&*b.principal_name(), "delegated:cdcdcdcd");
        assert_eq!(&*a.principal_name(), "delegated:abababab");
        assert_eq!(format!("delegated:{}", a.short_digest()), &*a.principal_name());
    }

    #[test]
    fn user_names_are_short_printable_ascii() {
        assert_eq!(user_name(b" alice ").as_deref(), Some("alice"));
        assert!(user_name(b"").is_none());
        assert!(user_name(b"a\x01b").is_none());
        assert!(user_name("é".as_bytes()).is_none());
        assert!(user_name("x".repeat(65).as_bytes()).is_none());
    }

    #[test]
    fn studies_header_parsing() {
        let a = "8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe";
        let b = "11111111-22222222-33333333-44444444-55555555";
        let s = studies(format!("{a}, {b}").as_bytes()).unwrap();
        assert_eq!(s.studies.len(), 2);
        assert!(studies(b"").unwrap().is_empty());
        assert!(studies(format!("{a},nope").as_bytes()).is_err());
    }
}

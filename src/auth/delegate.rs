//! Delegated decisions (nginx `auth_request` style): ask a validator, cache its answer per (credential digest, resource), fail closed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::HttpRequest;

use super::credential::strip_token_param;
use super::{AuthError, ResourceSet, Scope};
use crate::config::{DecisionScope, DelegateConfig};
use crate::ids::OrthancId;

/// Cache key: blake3 digest of the forwarded credential headers, and the resource (`None`:
/// an answer covering every resource of that credential).
type Key = ([u8; 32], Option<OrthancId>);

/// The forwarded credential of one request. The raw values are kept only for the validator call.
pub struct Presented {
    digest: [u8; 32],
    headers: Vec<(HeaderName, HeaderValue)>,
    uri: String,
    method: String,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented").field("digest", &self.short_digest()).finish_non_exhaustive()
    }
}

impl Presented {
    /// A short, non-reversible name for logs.
    pub fn short_digest(&self) -> String {
        self.digest[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Debug, Clone)]
enum Verdict {
    Allow,
    AllowStudies(Arc<ResourceSet>),
    Unauthenticated,
    Forbidden,
}

#[derive(Debug, Clone)]
struct Decision {
    verdict: Verdict,
    ttl: Duration,
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
    cache: moka::future::Cache<Key, Decision>,
    /// Key of the keyed blake3 digest of forwarded credentials (derived once).
    digest_key: [u8; 32],
}

/// The validator client and its decision cache. Cheap to clone.
#[derive(Clone)]
pub struct Delegate {
    inner: Arc<Inner>,
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
        let studies_header = (!cfg.studies_header.is_empty())
            .then(|| HeaderName::from_bytes(cfg.studies_header.as_bytes()))
            .transpose()?;
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
                studies_header,
                digest_key: blake3::derive_key("orthanc-edge delegated credential v1", b""),
                cache: moka::future::Cache::builder()
                    .max_capacity(cfg.cache_entries)
                    .expire_after(ByDecision)
                    .build(),
            }),
        }))
    }

    /// The request's forwarded credential, or `None` when it carries none of the headers.
    pub fn presented(&self, req: &HttpRequest) -> Option<Presented> {
        let mut hasher = blake3::Hasher::new_keyed(&self.inner.digest_key);
        let mut headers = Vec::new();
        for name in &self.inner.forward {
            for value in req.headers().get_all(name) {
                hasher.update(name.as_str().as_bytes());
                hasher.update(b"\0");
                hasher.update(value.as_bytes());
                hasher.update(b"\0");
                headers.push((name.clone(), value.clone()));
            }
        }
        if headers.is_empty() {
            return None;
        }
        let qs = strip_token_param(req.query_string());
        let uri = if qs.is_empty() { req.path().to_owned() } else { format!("{}?{qs}", req.path()) };
        Some(Presented {
            digest: *hasher.finalize().as_bytes(),
            headers,
            uri,
            method: req.method().as_str().to_owned(),
        })
    }

    /// The validator's verdict for `p` on `instance`: `Ok(None)` allowed, `Ok(Some(studies))`
    /// allowed if the instance is in those studies, `Err` denied or validator unavailable.
    pub async fn decide(
        &self,
        p: &Presented,
        instance: &OrthancId,
    ) -> Result<Option<Arc<ResourceSet>>, AuthError> {
        let i = &self.inner;
        let wide: Key = (p.digest, None);
        if i.mode == DecisionScope::Resource {
            // An earlier answer listed this credential's studies: it covers every resource.
            if let Some(d) = i.cache.get(&wide).await {
                return verdict(d.verdict);
            }
        }
        let key: Key = match i.mode {
            DecisionScope::Credential => wide.clone(),
            DecisionScope::Resource => (p.digest, Some(instance.clone())),
        };
        // Concurrent requests for the same key share one validator call.
        let d = i.cache.try_get_with(key, self.call(p)).await.map_err(|e: Arc<AuthError>| (*e).clone())?;
        if i.mode == DecisionScope::Resource && matches!(d.verdict, Verdict::AllowStudies(_)) {
            i.cache.insert(wide, d.clone()).await;
        }
        verdict(d.verdict)
    }

    async fn call(&self, p: &Presented) -> Result<Decision, AuthError> {
        let i = &self.inner;
        let mut req = i
            .http
            .get(&i.url)
            .header("X-Original-URI", p.uri.as_str())
            .header("X-Original-Method", p.method.as_str());
        for (name, value) in &p.headers {
            req = req.header(name.as_str(), value.as_bytes());
        }
        let resp = req.send().await.map_err(|e| {
            tracing::warn!(timeout = e.is_timeout(), error = %e.without_url(), "auth validator unreachable");
            AuthError::Unavailable
        })?;
        let status = resp.status().as_u16();
        let verdict = match status {
            200..=299 => match &i.studies_header {
                Some(h) => match resp.headers().get(h.as_str()) {
                    Some(v) => Verdict::AllowStudies(Arc::new(studies(v.as_bytes())?)),
                    None => Verdict::Allow,
                },
                None => Verdict::Allow,
            },
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
        Ok(Decision { verdict, ttl })
    }
}

fn verdict(v: Verdict) -> Result<Option<Arc<ResourceSet>>, AuthError> {
    match v {
        Verdict::Allow => Ok(None),
        Verdict::AllowStudies(s) => Ok(Some(s)),
        Verdict::Unauthenticated => Err(AuthError::Invalid),
        Verdict::Forbidden => Err(AuthError::Forbidden { scope: Scope::Preview }),
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
    fn studies_header_parsing() {
        let a = "8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe";
        let b = "11111111-22222222-33333333-44444444-55555555";
        let s = studies(format!("{a}, {b}").as_bytes()).unwrap();
        assert_eq!(s.studies.len(), 2);
        assert!(studies(b"").unwrap().is_empty());
        assert!(studies(format!("{a},nope").as_bytes()).is_err());
    }
}

//! Who is asking (`Principal`) and what they may see (`Authenticator::authorize`): the one seam every credential type plugs into.

mod api_key;
pub mod cli;
mod credential;
mod delegate;
mod hot;
mod limit;
mod link;
mod mint;
mod parents;
mod session;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use crate::config::{Config, ConfigError, Secret};
use crate::ids::OrthancId;
use crate::upstream::{OrthancClient, UpstreamError};

pub use crate::model::{Level, Scope};
pub use api_key::{hash_key, scopes_of, ApiKeys};
pub use credential::{presented_in_cookie, strip_token_param, Request, TOKEN_PARAM};
pub use delegate::Delegate;
pub use limit::FailureLimiter;
pub use link::{check_link, LinkBinding, LinkRefusal, LinkRoute};
pub use mint::{MintError, Minted, Minter, SessionRequest, SignRequest, Signed};
pub use parents::Parents;
pub use session::{asymmetric_alg, check_algorithms, SessionKeys, MAX_RESOURCES};

/// Orthanc resources a credential is restricted to (from a token's `studies`/`series`/`instances`
/// claims, or a validator's allowed-studies header).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceSet {
    pub studies: HashSet<OrthancId>,
    pub series: HashSet<OrthancId>,
    pub instances: HashSet<OrthancId>,
}

impl ResourceSet {
    pub fn len(&self) -> usize {
        self.studies.len() + self.series.len() + self.instances.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The resource lists a token carries (its `studies`, `series`, `instances` claims) or a session
/// request asks for, as written; [`ResourceLists::parse`] makes them a [`ResourceSet`].
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ResourceLists {
    pub studies: Option<Vec<String>>,
    pub series: Option<Vec<String>>,
    pub instances: Option<Vec<String>>,
}

/// Why resource lists make no [`ResourceSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceListError {
    /// The list named `field` holds something that is not an Orthanc id.
    BadId { field: &'static str },
    /// More than `max` ids in all.
    TooMany { max: usize },
}

impl ResourceLists {
    /// `None` when no list is given (no restriction); else the ids, at most [`MAX_RESOURCES`].
    pub fn parse(&self) -> Result<Option<ResourceSet>, ResourceListError> {
        if self.studies.is_none() && self.series.is_none() && self.instances.is_none() {
            return Ok(None);
        }
        let ids = |list: &Option<Vec<String>>, field| {
            list.as_deref()
                .unwrap_or_default()
                .iter()
                .map(|s| OrthancId::parse(s).ok_or(ResourceListError::BadId { field }))
                .collect::<Result<HashSet<_>, _>>()
        };
        let set = ResourceSet {
            studies: ids(&self.studies, "studies")?,
            series: ids(&self.series, "series")?,
            instances: ids(&self.instances, "instances")?,
        };
        if set.len() > MAX_RESOURCES {
            return Err(ResourceListError::TooMany { max: MAX_RESOURCES });
        }
        Ok(Some(set))
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Via {
    ApiKey,
    /// A session token; kept (redacted in Debug) so `/auth/session` can turn it into a cookie.
    Session {
        token: Arc<Secret>,
        exp: u64,
        /// The token's `sub` (what a token minted on its behalf carries).
        sub: Arc<str>,
    },
    /// Decided per resource by the validator (`auth.delegate`).
    Delegated(Arc<delegate::ForwardedCredential>),
}

/// An authenticated caller. Handlers receive this, never a raw header.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Name for logs and audit (the key's name, `jwt:<sub>`, `delegated:<digest prefix>`; never the secret).
    pub name: Arc<str>,
    pub scopes: Arc<[Scope]>,
    /// `None`: whatever the scopes allow. `Some`: only these resources (and their children).
    pub restriction: Option<Arc<ResourceSet>>,
    /// `Some` for a signed link: the only URL shape it serves (see `check_link`).
    pub link: Option<Arc<LinkBinding>>,
    pub via: Via,
}

/// The thing being accessed, as the request names it.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    Instance(&'a OrthancId),
    Series(&'a OrthancId),
    Study(&'a OrthancId),
    /// A DICOMweb path's UIDs (validated syntax): resolved to Orthanc ids, and the lineage the
    /// path states (series in study, instance in series) checked, before anything is decided.
    /// The deepest UID given is the resource (an instance needs its series).
    Dicom {
        study: &'a str,
        series: Option<&'a str>,
        instance: Option<&'a str>,
    },
    /// The edge itself (cache, jobs), not an image.
    Edge,
}

impl Resource<'_> {
    fn level(&self) -> Option<Level> {
        match self {
            Resource::Instance(_) => Some(Level::Instance),
            Resource::Series(_) => Some(Level::Series),
            Resource::Study(_) => Some(Level::Study),
            Resource::Dicom { instance: Some(_), .. } => Some(Level::Instance),
            Resource::Dicom { series: Some(_), .. } => Some(Level::Series),
            Resource::Dicom { .. } => Some(Level::Study),
            Resource::Edge => None,
        }
    }
}

/// What an authorization decided: the canonical resource, and whom its misses are charged to.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The resource as resolved (for `Resource::Dicom`, the instance or series its UIDs name);
    /// `None` for `Resource::Edge`.
    pub target: Option<(Level, OrthancId)>,
    /// Key of the per-client miss budget: the principal's name, or for a delegated principal the
    /// user its validator named, else the client address (never the cookies a client chose).
    pub client: Arc<str>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("credentials required: an API key, a session token (Bearer, cookie or `token` parameter) or a session the validator knows")]
    Missing,
    #[error("invalid credentials")]
    Invalid,
    #[error("the session token has expired")]
    Expired,
    #[error("this credential lacks the `{scope}` scope")]
    Forbidden { scope: Scope },
    #[error("this credential does not cover this resource")]
    OutOfScope,
    #[error("the authorization service denied access to this resource")]
    Denied,
    /// The request names no resource Orthanc knows (an unknown UID, or a lineage that does not
    /// hold); restricted principals get `OutOfScope` instead, so they learn nothing.
    #[error("no such resource")]
    NotFound,
    #[error("this signed link serves only its own URL, not {0}")]
    LinkMismatch(LinkRefusal),
    #[error("the authorization service is unavailable")]
    Unavailable,
    #[error("too many failed authentications from this address; retry later")]
    RateLimited { retry_after_s: u64 },
    #[error("minting is off: set auth.jwt.secret")]
    MintingDisabled,
    #[error("Orthanc could not be asked about this resource")]
    Upstream(#[from] UpstreamError),
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "unauthenticated",
            AuthError::Invalid => "invalid-credentials",
            AuthError::Expired => "token-expired",
            AuthError::Forbidden { .. }
            | AuthError::OutOfScope
            | AuthError::Denied
            | AuthError::LinkMismatch(_) => "forbidden",
            AuthError::NotFound => "not-found",
            AuthError::Unavailable => "auth-unavailable",
            AuthError::RateLimited { .. } => "too-many-failures",
            AuthError::MintingDisabled => "minting-disabled",
            AuthError::Upstream(e) => e.code(),
        }
    }
}

/// Resolves request credentials to a principal and decides what it may see.
#[derive(Clone)]
pub struct Authenticator {
    api_keys: ApiKeys,
    sessions: Option<SessionKeys>,
    minter: Option<Minter>,
    delegate: Option<Delegate>,
    parents: Parents,
    limiter: FailureLimiter,
    cookie: Arc<str>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

/// What `Config::validate` leaves to auth, which owns the words: API key scopes and the JWT
/// public keys' algorithms. Run by `Authenticator::from_config`, and by `check-config`.
pub fn check_config(cfg: &Config) -> Result<(), ConfigError> {
    for (i, key) in cfg.auth.api_keys.iter().enumerate() {
        scopes_of(key, &format!("auth.api_keys[{i}]"))?;
    }
    check_algorithms(&cfg.auth.jwt)
}

impl Authenticator {
    /// Build from validated config. Reads key files; blocking, call at start-up.
    pub fn from_config(cfg: &Config, upstream: OrthancClient) -> anyhow::Result<Self> {
        check_config(cfg)?;
        let secret = cfg.jwt_secret()?;
        let sessions = SessionKeys::from_config(&cfg.auth.jwt, secret.as_ref())?;
        let minter = secret.as_ref().map(|s| Minter::new(s, &cfg.auth.jwt, &cfg.auth.sign));
        let delegate = Delegate::from_config(&cfg.auth.delegate)?;
        Ok(Self {
            api_keys: ApiKeys::from_config(&cfg.auth.api_keys)?,
            sessions,
            minter,
            delegate,
            parents: Parents::new(upstream),
            limiter: FailureLimiter::new(&cfg.auth.rate_limit),
            cookie: cfg.auth.cookie.name.as_str().into(),
        })
    }

    /// Background work (JWKS refresh); call once inside the server's runtime.
    pub fn spawn_background(&self) {
        if let Some(s) = &self.sessions {
            s.spawn_refresher();
        }
    }

    pub fn minter(&self) -> Option<&Minter> {
        self.minter.as_ref()
    }

    /// The request's credential, in the documented precedence, resolved to a principal.
    /// `client` is the limiting key of the client's address (Http works it out from the peer and
    /// `server.trusted_proxies`): failed attempts are counted by it.
    pub async fn authenticate(&self, req: &Request, client: Option<IpAddr>) -> Result<Principal, AuthError> {
        if let Some(ip) = client {
            self.limiter.check(ip)?;
        }
        let result = self.resolve(req, client).await;
        match &result {
            Err(AuthError::Invalid) => {
                tracing::warn!(target: "audit", client = ?client, code = "invalid-credentials", "authentication failed");
                if let Some(ip) = client {
                    self.limiter.failed(ip)?;
                }
            }
            Err(e @ AuthError::Expired) => {
                tracing::info!(target: "audit", client = ?client, code = e.code(), "authentication failed");
            }
            _ => {}
        }
        result
    }

    async fn resolve(&self, req: &Request, client: Option<IpAddr>) -> Result<Principal, AuthError> {
        use credential::PresentedCredential as P;
        match credential::presented(req, &self.cookie)? {
            P::ApiKey(key) => self.api_keys.verify(key).ok_or(AuthError::Invalid),
            P::Bearer(value) => {
                if let Some(p) = self.api_keys.verify(value) {
                    return Ok(p);
                }
                if credential::looks_like_jwt(value) {
                    if let Some(s) = &self.sessions {
                        return s.verify(value).await;
                    }
                }
                // Not ours: an opaque token the validator may know (it is forwarded).
                self.delegated(req, client).unwrap_or(Err(AuthError::Invalid))
            }
            P::Token(t) => match &self.sessions {
                Some(s) => s.verify(&t).await,
                None => Err(AuthError::Invalid),
            },
            P::Cookie(t) => match &self.sessions {
                Some(s) => s.verify(&t).await,
                None => self.delegated(req, client).unwrap_or(Err(AuthError::Invalid)),
            },
            P::Nothing => self.delegated(req, client).unwrap_or(Err(AuthError::Missing)),
        }
    }

    /// A delegated principal when delegation is on and the request carries a forwarded header.
    fn delegated(&self, req: &Request, client: Option<IpAddr>) -> Option<Result<Principal, AuthError>> {
        let d = self.delegate.as_ref()?;
        let presented = d.presented(req, client)?;
        // Every delegated principal has the same scopes: one shared list, not one per request.
        static PREVIEW_ONLY: std::sync::LazyLock<Arc<[Scope]>> =
            std::sync::LazyLock::new(|| Arc::from([Scope::Preview]));
        Some(Ok(Principal {
            name: presented.principal_name(),
            scopes: PREVIEW_ONLY.clone(),
            restriction: None,
            link: None,
            via: Via::Delegated(Arc::new(presented)),
        }))
    }

    /// May `principal` use `scope` on `resource`? The single decision point: ids and UIDs are
    /// resolved and their lineage checked first, and only that canonical resource is decided on
    /// (and shown to a validator). Denials are audited; a validator's 401 counts as a failed
    /// authentication of the client address, like a bad key.
    pub async fn authorize(
        &self,
        principal: &Principal,
        scope: Scope,
        resource: Resource<'_>,
    ) -> Result<Grant, AuthError> {
        let result = self.decide(principal, scope, resource).await;
        let Err(e) = &result else {
            return result;
        };
        if matches!(
            e,
            AuthError::Forbidden { .. }
                | AuthError::OutOfScope
                | AuthError::Denied
                | AuthError::Invalid
                | AuthError::Missing
        ) {
            let id = match resource {
                Resource::Instance(id) | Resource::Series(id) | Resource::Study(id) => id.as_str(),
                Resource::Dicom { instance: Some(uid), .. } => uid,
                Resource::Dicom { series: Some(uid), .. } => uid,
                Resource::Dicom { study, .. } => study,
                Resource::Edge => "-",
            };
            tracing::warn!(target: "audit", principal = %principal.name, resource = id, code = e.code(), "denied");
        }
        if let (AuthError::Invalid, Via::Delegated(p)) = (e, &principal.via) {
            if let Some(ip) = p.client {
                self.limiter.failed(ip)?;
            }
        }
        result
    }

    async fn decide(
        &self,
        principal: &Principal,
        scope: Scope,
        resource: Resource<'_>,
    ) -> Result<Grant, AuthError> {
        if !principal.scopes.contains(&scope) {
            return Err(AuthError::Forbidden { scope });
        }
        let Some(level) = resource.level() else {
            // Minting, warm-up and purges are for API keys only: a token never mints a wider token.
            return match principal.via {
                Via::ApiKey => Ok(Grant { target: None, client: principal.name.clone() }),
                _ => Err(AuthError::Forbidden { scope }),
            };
        };
        // `None`: the URL names nothing Orthanc knows. Native ids are taken as they are (an
        // unknown one is Orthanc's 404 later, or outside every restriction); UIDs are resolved.
        let target: Option<(Level, OrthancId)> = match resource {
            Resource::Instance(id) | Resource::Series(id) | Resource::Study(id) => Some((level, id.clone())),
            Resource::Dicom { study, series, instance } => {
                match self.parents.resolve_dicom(study, series, instance).await {
                    Ok(t) => Some(t),
                    Err(UpstreamError::NotFound) => None,
                    Err(e) => return Err(e.into()),
                }
            }
            Resource::Edge => None,
        };
        let mut client = principal.name.clone();
        let mut studies = None;
        if let Via::Delegated(presented) = &principal.via {
            let d = self.delegate.as_ref().ok_or(AuthError::Unavailable)?;
            let allowed = match &target {
                Some((level, id)) => {
                    let describe = self.parents.describe(*level, id);
                    d.decide(presented, delegate::Ask::Resource { level: *level, id, describe }).await?
                }
                None => d.decide(presented, delegate::Ask::Unresolved::<NoDescription> { level }).await?,
            };
            client = match (&allowed.budget, presented.client) {
                (Some(user), _) => user.clone(),
                (None, Some(ip)) => addr_budget_key(ip),
                (None, None) => client,
            };
            studies = allowed.studies;
        }
        let restricted = principal.restriction.is_some() || studies.is_some();
        let Some((level, id)) = target else {
            // A restricted principal cannot tell "not yours" from "does not exist".
            return Err(if restricted { AuthError::OutOfScope } else { AuthError::NotFound });
        };
        for set in [studies.as_deref(), principal.restriction.as_deref()].into_iter().flatten() {
            self.parents.within(set, &id, level).await?;
        }
        Ok(Grant { target: Some((level, id)), client })
    }
}

/// `delegated-addr:<ip>`, the miss-budget key of a delegated client its validator does not name.
/// Requests come from few addresses (often one proxy), so each worker thread keeps the last one
/// it made instead of formatting an address on every request.
fn addr_budget_key(ip: IpAddr) -> Arc<str> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, Arc<str>)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((seen, key)) if *seen == ip => key.clone(),
        _ => {
            let key: Arc<str> = format!("delegated-addr:{ip}").into();
            *last = Some((ip, key.clone()));
            key
        }
    })
}

/// The description future of an `Ask` that has none.
type NoDescription = std::future::Ready<Result<parents::Described, UpstreamError>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_budget_keys_name_their_address() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(&*addr_budget_key(a), "delegated-addr:192.0.2.1");
        assert_eq!(&*addr_budget_key(a), "delegated-addr:192.0.2.1");
        assert_eq!(&*addr_budget_key(b), "delegated-addr:2001:db8::1");
        assert_eq!(&*addr_budget_key(a), "delegated-addr:192.0.2.1");
    }

    #[test]
    fn scopes_read_in_messages_as_in_config() {
        let e = AuthError::Forbidden { scope: Scope::Preview };
        assert_eq!(e.to_string(), "this credential lacks the `preview` scope");
        for s in [Scope::Preview, Scope::Admin, Scope::Warm, Scope::Mint] {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::Value::String(s.to_string()));
        }
    }
}

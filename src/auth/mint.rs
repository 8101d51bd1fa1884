//! Minting: `Minter` signs the HS256 tokens the edge hands out (session tokens, signed links), and the policy of what it signs: lifetimes, id lists, the answers to `/auth/sign` and `/auth/session`.

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use super::credential::TOKEN_PARAM;
use super::{LinkBinding, LinkRoute, Principal, ResourceListError, ResourceLists, ResourceSet, Via};
use crate::config::{JwtConfig, Secret, SignConfig};
use crate::ids::OrthancId;

/// Most links one `/auth/sign` request may ask for.
const MAX_LINKS: usize = 1000;
/// Most sizes per sign request, and the largest side a size may name.
const MAX_SIZES: usize = 16;
const MAX_SIDE: u32 = 4096;

/// Why nothing was minted: the request's fault (400), or signing failing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MintError {
    #[error("{0}")]
    BadParam(String),
    #[error("{0}")]
    BadId(String),
    #[error("minting a {what} token: {why}")]
    Sign { what: &'static str, why: String },
}

/// `POST /auth/sign` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    instances: Vec<String>,
    #[serde(default, deserialize_with = "objects")]
    sizes: Vec<Size>,
    #[serde(default)]
    lifetime_s: Option<u64>,
    /// End user the links are for (audit logs); defaults to the API key's name.
    #[serde(default)]
    sub: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Size {
    w: u32,
    h: u32,
}

#[derive(Debug, Serialize)]
struct Link {
    instance: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    size: Option<Size>,
    url: String,
}

/// `POST /auth/sign` answer: one link per instance and size, all expiring together.
#[derive(Debug, Serialize)]
pub struct Signed {
    expires_at: u64,
    links: Vec<Link>,
}

impl Signed {
    /// The links' URLs, in order.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.links.iter().map(|l| l.url.as_str())
    }
}

/// `POST /auth/session` body (empty: a session for the caller, unrestricted).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    lifetime_s: Option<u64>,
    #[serde(flatten)]
    resources: ResourceLists,
}

/// A list of JSON objects, each as `T` (serde alone would also take a `T` from an array).
fn objects<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    Vec::<serde_json::Map<String, serde_json::Value>>::deserialize(d)?
        .into_iter()
        .map(|m| serde_json::from_value(serde_json::Value::Object(m)).map_err(serde::de::Error::custom))
        .collect()
}

fn bad_id(field: &str) -> MintError {
    MintError::BadId(format!(
        "`{field}` must list Orthanc ids: 5 groups of 8 lowercase hex digits joined by '-'"
    ))
}

/// Claims of a token the edge mints.
#[derive(Debug, Serialize)]
struct MintClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    studies: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    series: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instances: Option<Vec<&'a str>>,
    /// `auth.jwt.required_scope`, so that the edge accepts its own tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<&'a LinkBinding>,
}

/// A freshly minted token.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub exp: u64,
}

/// Mints HS256 session tokens with `auth.jwt.secret` (the key the edge also verifies with).
#[derive(Clone)]
pub struct Minter {
    key: Arc<EncodingKey>,
    issuer: Option<Arc<str>>,
    audience: Option<Arc<str>>,
    required_scope: Option<Arc<str>>,
    pub default_lifetime: u64,
    pub max_lifetime: u64,
    pub public_url: Arc<str>,
}

impl Minter {
    pub fn new(secret: &Secret, jwt: &JwtConfig, sign: &SignConfig) -> Self {
        Self {
            key: Arc::new(EncodingKey::from_secret(secret.expose().as_bytes())),
            issuer: (!jwt.issuer.is_empty()).then(|| jwt.issuer.as_str().into()),
            audience: (!jwt.audience.is_empty()).then(|| jwt.audience.as_str().into()),
            required_scope: (!jwt.required_scope.is_empty()).then(|| jwt.required_scope.as_str().into()),
            default_lifetime: sign.default_lifetime_s,
            max_lifetime: sign.max_lifetime_s,
            public_url: sign.public_url.trim_end_matches('/').into(),
        }
    }

    /// A token for `sub`, valid `lifetime` seconds, restricted to `resources` when given, and to
    /// one URL shape when `link` is given (a signed link).
    pub fn mint(
        &self,
        sub: &str,
        lifetime: u64,
        resources: Option<&ResourceSet>,
        link: Option<&LinkBinding>,
    ) -> Result<Minted, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let exp = now + lifetime;
        fn list(s: &HashSet<OrthancId>) -> Vec<&str> {
            let mut v: Vec<&str> = s.iter().map(OrthancId::as_str).collect();
            v.sort_unstable();
            v
        }
        let claims = MintClaims {
            sub,
            iat: now,
            exp,
            iss: self.issuer.as_deref(),
            aud: self.audience.as_deref(),
            studies: resources.map(|r| list(&r.studies)),
            series: resources.map(|r| list(&r.series)),
            instances: resources.map(|r| list(&r.instances)),
            scope: self.required_scope.as_deref(),
            link,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)?;
        Ok(Minted { token, exp })
    }
}

impl Minter {
    /// The lifetime a request asked for, or the default; refused beyond `auth.sign.max_lifetime_s`.
    fn lifetime(&self, asked: Option<u64>) -> Result<u64, MintError> {
        match asked {
            None => Ok(self.default_lifetime),
            Some(n) if (1..=self.max_lifetime).contains(&n) => Ok(n),
            Some(_) => Err(MintError::BadParam(format!(
                "`lifetime_s` must be from 1 to {} (auth.sign.max_lifetime_s)",
                self.max_lifetime
            ))),
        }
    }

    /// Signed links for `caller` (an API key's name): one short token per instance and size,
    /// scoped to its instance and bound to its URL (route, frameless path, the link's own `w`/`h`
    /// or none), so that another size, format or route is 403.
    pub fn sign(&self, caller: &str, req: &SignRequest) -> Result<Signed, MintError> {
        if req.instances.is_empty() || req.instances.len() > MAX_LINKS {
            return Err(MintError::BadParam(format!("`instances` must list 1 to {MAX_LINKS} instance ids")));
        }
        if req.sizes.len() > MAX_SIZES
            || req.sizes.iter().any(|s| !(1..=MAX_SIDE).contains(&s.w) || !(1..=MAX_SIDE).contains(&s.h))
        {
            return Err(MintError::BadParam(format!(
                "`sizes` must be at most {MAX_SIZES} {{w, h}} pairs from 1 to {MAX_SIDE}"
            )));
        }
        let lifetime = self.lifetime(req.lifetime_s)?;
        let sub = req.sub.as_deref().unwrap_or(caller);
        let sizes: Vec<Option<Size>> =
            if req.sizes.is_empty() { vec![None] } else { req.sizes.iter().copied().map(Some).collect() };
        let mut links = Vec::with_capacity(req.instances.len() * sizes.len());
        let mut expires_at = 0;
        for raw in &req.instances {
            let id = OrthancId::parse(raw).ok_or_else(|| bad_id("instances"))?;
            let scope = ResourceSet { instances: HashSet::from([id.clone()]), ..Default::default() };
            for size in &sizes {
                let params = size.map(|s| [("w", s.w.to_string()), ("h", s.h.to_string())]);
                let binding =
                    LinkBinding::new(LinkRoute::InstancePreview, None, params.into_iter().flatten());
                let minted = self
                    .mint(sub, lifetime, Some(&scope), Some(&binding))
                    .map_err(|e| MintError::Sign { what: "link", why: e.to_string() })?;
                expires_at = minted.exp;
                let query = match size {
                    Some(s) => format!("w={}&h={}&{TOKEN_PARAM}={}", s.w, s.h, minted.token),
                    None => format!("{TOKEN_PARAM}={}", minted.token),
                };
                links.push(Link {
                    instance: id.to_string(),
                    size: *size,
                    url: format!("{}/instances/{id}/preview?{query}", self.public_url),
                });
            }
        }
        Ok(Signed { expires_at, links })
    }

    /// A new session token for `caller` (an API key's name), restricted to the resources the
    /// request lists, if it lists any.
    pub fn session(&self, caller: &str, req: &SessionRequest) -> Result<Minted, MintError> {
        let lifetime = self.lifetime(req.lifetime_s)?;
        let restriction = req.resources.parse().map_err(|e| match e {
            ResourceListError::BadId { field } => bad_id(field),
            ResourceListError::TooMany { max } => MintError::BadParam(format!("at most {max} resource ids")),
        })?;
        let sub = req.sub.as_deref().unwrap_or(caller);
        self.mint(sub, lifetime, restriction.as_ref(), None)
            .map_err(|e| MintError::Sign { what: "session", why: e.to_string() })
    }

    /// For a principal holding a session token: whom links made on its behalf name, and how long
    /// they live (what is left of its token, at most the default). `None` for other principals.
    pub fn on_behalf<'p>(&self, principal: &'p Principal) -> Option<(&'p str, u64)> {
        let Via::Session { exp, sub, .. } = &principal.via else { return None };
        let left = exp.saturating_sub(jsonwebtoken::get_current_timestamp());
        Some((&**sub, left.min(self.default_lifetime)))
    }

    /// A signed link token for `/series/{series}/preview?preset={preset}` and no other URL.
    pub fn series_link(&self, sub: &str, lifetime: u64, series: OrthancId, preset: &str) -> Option<String> {
        let scope = ResourceSet { series: HashSet::from([series]), ..Default::default() };
        let link = LinkBinding::new(LinkRoute::SeriesPreview, None, [("preset", preset.to_owned())]);
        self.mint(sub, lifetime, Some(&scope), Some(&link)).ok().map(|m| m.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn session_requests_refuse_unknown_fields_next_to_the_lists() {
        let ok: SessionRequest = serde_json::from_value(json!({"sub": "u", "series": []})).unwrap();
        assert_eq!(ok.resources.parse().unwrap().map(|s| s.len()), Some(0));
        assert!(serde_json::from_value::<SessionRequest>(json!({}))
            .unwrap()
            .resources
            .parse()
            .unwrap()
            .is_none());
        for bad in
            [json!({"stud1es": []}), json!({"sub": "u", "extra": 1}), json!({"studies": ["x"], "q": 1})]
        {
            assert!(serde_json::from_value::<SessionRequest>(bad.clone()).is_err(), "{bad}");
        }
        let bad_id: SessionRequest = serde_json::from_value(json!({"series": ["nope"]})).unwrap();
        assert_eq!(bad_id.resources.parse(), Err(ResourceListError::BadId { field: "series" }));
    }
}

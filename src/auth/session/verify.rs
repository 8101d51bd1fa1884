//! A presented token checked: signature by a matching pinned key, claims, and the principal they make.

use std::sync::Arc;
use std::time::Instant;

use jsonwebtoken::errors::ErrorKind;
use serde::Deserialize;

use super::keys::VerifyKey;
use super::{SessionKeys, VERIFIED_TTL};
use crate::auth::{AuthError, LinkBinding, Principal, ResourceLists, Scope, Via};
use crate::config::Secret;

/// The claims the edge reads. Unknown claims are ignored.
#[derive(Debug, Deserialize)]
struct Claims {
    exp: u64,
    #[serde(default)]
    sub: Option<String>,
    /// Checked by jsonwebtoken, which also accepts an array with one matching entry; RFC 7519
    /// makes `iss` one string, so typing it here refuses `["https://app", "https://evil"]`.
    #[serde(default, rename = "iss")]
    _issuer: Option<String>,
    #[serde(default)]
    scope: Option<ScopeClaim>,
    // Read as they are (not flattened into `ResourceLists`: a flattened struct buffers every
    // unknown claim, recursing into it, where these fields skip them).
    studies: Option<Vec<String>>,
    series: Option<Vec<String>>,
    instances: Option<Vec<String>>,
    /// A signed link's binding (route kind, frame, exact parameters); see `link.rs`.
    #[serde(default)]
    link: Option<LinkBinding>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    Words(String),
    List(Vec<String>),
}

impl ScopeClaim {
    fn contains(&self, word: &str) -> bool {
        match self {
            ScopeClaim::Words(s) => s.split_whitespace().any(|w| w == word),
            ScopeClaim::List(l) => l.iter().any(|w| w == word),
        }
    }
}

impl SessionKeys {
    /// Verify `token` and turn its claims into a principal.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let digest = *blake3::hash(token.as_bytes()).as_bytes();
        let cached = match self.inner.hot.get(&digest) {
            Some(p) => Some(p),
            None => self.inner.verified.get(&digest).await.map(|(p, until)| {
                self.inner.hot.put(digest, p.clone(), Some(until));
                p
            }),
        };
        if let Some(p) = cached {
            if let Via::Session { exp, .. } = p.via {
                if exp.saturating_add(self.inner.rules.leeway) >= jsonwebtoken::get_current_timestamp() {
                    return Ok(p);
                }
                self.inner.verified.invalidate(&digest).await;
                return Err(AuthError::Expired);
            }
        }
        // Boxed: with a JWKS refetch in it, it would make every request's future kilobytes larger.
        let p = Box::pin(self.verify_uncached(token)).await?;
        let until = Instant::now() + VERIFIED_TTL;
        self.inner.verified.insert(digest, (p.clone(), until)).await;
        self.inner.hot.put(digest, p.clone(), Some(until));
        Ok(p)
    }

    async fn verify_uncached(&self, token: &str) -> Result<Principal, AuthError> {
        // `alg: none` (or any unknown alg) fails here: it is not an `Algorithm`.
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        let matches = |k: &VerifyKey| {
            k.alg == header.alg
                && match (&header.kid, &k.kid) {
                    (Some(want), Some(have)) => want == have,
                    _ => true,
                }
        };
        let mut result = self.try_keys(token, matches, &self.jwks_keys());
        if result.is_none() && self.inner.jwks.is_some() {
            // A key we have not seen: the IdP may have rotated. Refetch (rate-limited) and retry.
            self.refresh_jwks(true).await;
            result = self.try_keys(token, matches, &self.jwks_keys());
        }
        let claims = result.ok_or(AuthError::Invalid)??;
        self.principal(claims, token)
    }

    /// `None` when no key matched the header; otherwise the first decisive answer.
    fn try_keys(
        &self,
        token: &str,
        matches: impl Fn(&VerifyKey) -> bool,
        jwks: &[VerifyKey],
    ) -> Option<Result<Claims, AuthError>> {
        let mut answer = None;
        for k in self.inner.static_keys.iter().chain(jwks).filter(|k| matches(k)) {
            match jsonwebtoken::decode::<Claims>(token, &k.key, &k.validation) {
                Ok(data) => return Some(Ok(data.claims)),
                Err(e) => {
                    let err = match e.kind() {
                        // Signature was good: the holder is who they say, just late.
                        ErrorKind::ExpiredSignature => AuthError::Expired,
                        _ => AuthError::Invalid,
                    };
                    if answer.is_none() || matches!(err, AuthError::Expired) {
                        answer = Some(Err(err));
                    }
                }
            }
        }
        answer
    }

    fn principal(&self, claims: Claims, token: &str) -> Result<Principal, AuthError> {
        let scopes: Arc<[Scope]> = match &self.inner.required_scope {
            Some(word) if !claims.scope.as_ref().is_some_and(|s| s.contains(word)) => Arc::from([]),
            // A token only ever reads previews: it never mints or administers.
            _ => Arc::from([Scope::Preview]),
        };
        let lists =
            ResourceLists { studies: claims.studies, series: claims.series, instances: claims.instances };
        let restriction = lists.parse().map_err(|_| AuthError::Invalid)?.map(Arc::new);
        let link = match claims.link {
            Some(b) if !b.is_bounded() => return Err(AuthError::Invalid),
            b => b.map(Arc::new),
        };
        let sub: String =
            claims.sub.as_deref().unwrap_or("-").chars().filter(|c| !c.is_control()).take(64).collect();
        Ok(Principal {
            name: format!("jwt:{sub}").into(),
            scopes,
            restriction,
            link,
            via: Via::Session { token: Arc::new(Secret::new(token)), exp: claims.exp, sub: sub.into() },
        })
    }
}

//! Who is asking (`Principal`) and what they may see (`authorize`): the one seam every credential type plugs into.

mod api_key;

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::ids::OrthancId;

pub use api_key::{hash_key, ApiKeys};

/// What a credential allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read preview images.
    Preview,
    /// Manage the edge (purge). Does not imply `Preview`: an operator key reads no images.
    Admin,
    /// Start and watch warm-up jobs.
    Warm,
}

/// An authenticated caller. Handlers receive this, never a raw header.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Name for logs and audit (the key's configured name; never the secret).
    pub name: Arc<str>,
    pub scopes: Arc<[Scope]>,
}

/// The thing being accessed.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    Instance(&'a OrthancId),
    Series(&'a OrthancId),
    Study(&'a OrthancId),
    /// The edge itself (cache, jobs), not an image.
    Edge,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("credentials required: send an API key as X-Api-Key or Authorization: Bearer")]
    Missing,
    #[error("invalid credentials")]
    Invalid,
    #[error("this credential lacks the `{scope:?}` scope")]
    Forbidden { scope: Scope },
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "unauthenticated",
            AuthError::Invalid => "invalid-credentials",
            AuthError::Forbidden { .. } => "forbidden",
        }
    }
}

/// May `principal` use `scope` on `resource`? The single decision point.
pub fn authorize(principal: &Principal, scope: Scope, resource: Resource<'_>) -> Result<(), AuthError> {
    let _ = resource; // resource-restricted credentials (sessions, signed links) narrow this later
    if principal.scopes.contains(&scope) {
        Ok(())
    } else {
        Err(AuthError::Forbidden { scope })
    }
}

/// Resolves request credentials to a principal.
#[derive(Debug, Clone)]
pub struct Authenticator {
    api_keys: ApiKeys,
}

impl Authenticator {
    pub fn new(api_keys: ApiKeys) -> Self {
        Self { api_keys }
    }

    pub fn authenticate(&self, req: &HttpRequest) -> Result<Principal, AuthError> {
        let key = credential(req).ok_or(AuthError::Missing)?;
        self.api_keys.verify(key).ok_or(AuthError::Invalid)
    }
}

/// The presented secret: `X-Api-Key`, else `Authorization: Bearer`.
fn credential(req: &HttpRequest) -> Option<&str> {
    let headers = req.headers();
    if let Some(v) = headers.get("x-api-key") {
        return v.to_str().ok().map(str::trim).filter(|s| !s.is_empty());
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim()).filter(|s| !s.is_empty())
}

impl FromRequest for Principal {
    type Error = AppError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.app_data::<web::Data<Authenticator>>() {
            Some(auth) => auth.authenticate(req).map_err(AppError::from),
            None => Err(AppError::Internal("authenticator not configured".into())),
        };
        if let Ok(p) = &result {
            tracing::Span::current().record("principal", &*p.name);
        }
        ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn principal(scopes: &[Scope]) -> Principal {
        Principal { name: "t".into(), scopes: scopes.into() }
    }

    #[test]
    fn scope_decides() {
        let id = OrthancId::parse("8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe").unwrap();
        assert!(authorize(&principal(&[Scope::Preview]), Scope::Preview, Resource::Instance(&id)).is_ok());
        assert!(authorize(&principal(&[Scope::Admin]), Scope::Preview, Resource::Instance(&id)).is_err());
        assert!(matches!(
            authorize(&principal(&[Scope::Preview]), Scope::Admin, Resource::Instance(&id)),
            Err(AuthError::Forbidden { scope: Scope::Admin })
        ));
    }

    #[test]
    fn credential_sources() {
        let r = TestRequest::default().insert_header(("X-Api-Key", " k1 ")).to_http_request();
        assert_eq!(credential(&r), Some("k1"));
        let r = TestRequest::default().insert_header(("Authorization", "Bearer k2")).to_http_request();
        assert_eq!(credential(&r), Some("k2"));
        let r = TestRequest::default().insert_header(("Authorization", "bearer   k3")).to_http_request();
        assert_eq!(credential(&r), Some("k3"));
        let r =
            TestRequest::default().insert_header(("Authorization", "Basic dXNlcjpwdw==")).to_http_request();
        assert_eq!(credential(&r), None);
        let r = TestRequest::default().insert_header(("Authorization", "Bearer ")).to_http_request();
        assert_eq!(credential(&r), None);
        assert_eq!(credential(&TestRequest::default().to_http_request()), None);
    }
}

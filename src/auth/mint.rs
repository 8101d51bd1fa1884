//! Minting: `Minter` signs the HS256 tokens the edge hands out (session tokens, signed links).

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::{LinkBinding, ResourceSet};
use crate::config::{JwtConfig, Secret, SignConfig};
use crate::ids::OrthancId;

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

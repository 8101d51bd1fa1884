//! Session tokens (JWT): verification with algorithm-pinned keys (HS secret, PEM files, JWKS), claims → Principal, and minting.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{AuthError, LinkBinding, Principal, ResourceSet, Scope, Via};
use crate::config::{invalid, ConfigError, JwtConfig, Secret, SignConfig};
use crate::ids::OrthancId;
use crate::sync::RwLockExt as _;

/// Most resource ids a token may list (bounds the work one token can cause).
pub const MAX_RESOURCES: usize = 10_000;

/// Largest JWKS response read (a real key set is a few KiB); a bigger one is refused and the
/// keys of the last good fetch are kept.
pub const MAX_JWKS_BYTES: usize = 1 << 20;

/// The asymmetric algorithm named `name`, or `None` (HS* is never a public-key algorithm here).
pub fn asymmetric_alg(name: &str) -> Option<Algorithm> {
    let alg = Algorithm::from_str(name).ok()?;
    (!matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)).then_some(alg)
}

/// Every `auth.jwt.public_keys[i].alg` names an asymmetric algorithm.
pub fn check_algorithms(cfg: &JwtConfig) -> Result<(), ConfigError> {
    for (i, k) in cfg.public_keys.iter().enumerate() {
        if asymmetric_alg(&k.alg).is_none() {
            return Err(invalid(
                &format!("auth.jwt.public_keys[{i}].alg"),
                format!(
                    "`{}` is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA",
                    k.alg
                ),
            ));
        }
    }
    Ok(())
}

/// One verification key, pinned to exactly one algorithm.
struct VerifyKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

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
    #[serde(default)]
    studies: Option<Vec<String>>,
    #[serde(default)]
    series: Option<Vec<String>>,
    #[serde(default)]
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

struct ValidationRules {
    leeway: u64,
    issuer: Option<String>,
    audience: Option<String>,
}

impl ValidationRules {
    fn for_alg(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.algorithms = vec![alg];
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.issuer {
            Some(iss) => {
                v.set_issuer(&[iss]);
                required.push("iss");
            }
            None => v.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }
}

struct Jwks {
    url: String,
    http: reqwest::Client,
    keys: RwLock<Arc<Vec<VerifyKey>>>,
    refresh: Duration,
    cooldown: Duration,
    /// When the last fetch started; the lock also coalesces concurrent refreshes.
    last: tokio::sync::Mutex<Option<Instant>>,
}

/// Verified tokens are remembered this long (bounded by their own `exp`): a page of 100
/// images presents the same token 100 times. Also bounds how long a token signed by a key that
/// has since left the JWKS keeps working.
const VERIFIED_TTL: Duration = Duration::from_secs(30);
const VERIFIED_ENTRIES: u64 = 50_000;

struct Inner {
    /// blake3(token) → its principal, for tokens that verified.
    verified: moka::future::Cache<[u8; 32], Principal>,
    static_keys: Vec<VerifyKey>,
    jwks: Option<Jwks>,
    rules: ValidationRules,
    required_scope: Option<String>,
}

/// Verifies session tokens. Cheap to clone.
#[derive(Clone)]
pub struct SessionKeys {
    inner: Arc<Inner>,
}

impl SessionKeys {
    /// `None` when no key of any kind is configured (session tokens off).
    pub fn from_config(cfg: &JwtConfig, secret: Option<&Secret>) -> anyhow::Result<Option<Self>> {
        let rules = ValidationRules {
            leeway: cfg.leeway_s,
            issuer: (!cfg.issuer.is_empty()).then(|| cfg.issuer.clone()),
            audience: (!cfg.audience.is_empty()).then(|| cfg.audience.clone()),
        };
        let mut static_keys = Vec::new();
        if let Some(s) = secret {
            static_keys.push(VerifyKey {
                kid: None,
                alg: Algorithm::HS256,
                key: DecodingKey::from_secret(s.expose().as_bytes()),
                validation: rules.for_alg(Algorithm::HS256),
            });
        }
        for (i, k) in cfg.public_keys.iter().enumerate() {
            let alg = asymmetric_alg(&k.alg)
                .with_context(|| format!("auth.jwt.public_keys[{i}].alg: `{}`", k.alg))?;
            let pem = std::fs::read(&k.path).with_context(|| {
                format!("auth.jwt.public_keys[{i}].path: cannot read {}", k.path.display())
            })?;
            let key = match alg {
                Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
                Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
                _ => DecodingKey::from_rsa_pem(&pem),
            }
            .with_context(|| {
                format!(
                    "auth.jwt.public_keys[{i}]: {} is not a {} public key in PEM",
                    k.path.display(),
                    k.alg
                )
            })?;
            static_keys.push(VerifyKey { kid: k.kid.clone(), alg, key, validation: rules.for_alg(alg) });
        }
        let jwks = if cfg.jwks_url.is_empty() {
            None
        } else {
            Some(Jwks {
                url: cfg.jwks_url.clone(),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .redirect(reqwest::redirect::Policy::limited(3))
                    .build()?,
                keys: RwLock::new(Arc::new(Vec::new())),
                refresh: Duration::from_secs(cfg.jwks_refresh_s),
                cooldown: Duration::from_secs(cfg.jwks_cooldown_s),
                last: tokio::sync::Mutex::new(None),
            })
        };
        if static_keys.is_empty() && jwks.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            inner: Arc::new(Inner {
                verified: moka::future::Cache::builder()
                    .max_capacity(VERIFIED_ENTRIES)
                    .time_to_live(VERIFIED_TTL)
                    .build(),
                static_keys,
                jwks,
                rules,
                required_scope: (!cfg.required_scope.is_empty()).then(|| cfg.required_scope.clone()),
            }),
        }))
    }

    /// Fetch the JWKS now and then every `jwks_refresh_s` (no-op without a JWKS URL).
    pub fn spawn_refresher(&self) {
        if self.inner.jwks.is_none() {
            return;
        }
        let this = self.clone();
        actix_web::rt::spawn(async move {
            loop {
                this.refresh_jwks(false).await;
                let Some(j) = &this.inner.jwks else { return };
                tokio::time::sleep(j.refresh).await;
            }
        });
    }

    /// Fetch the JWKS; with `cooldown`, only if the last fetch is older than `jwks_cooldown_s`.
    async fn refresh_jwks(&self, cooldown: bool) {
        let Some(j) = &self.inner.jwks else { return };
        let mut last = j.last.lock().await;
        if cooldown && last.is_some_and(|t| t.elapsed() < j.cooldown) {
            return;
        }
        *last = Some(Instant::now());
        match fetch_jwks(j, &self.inner.rules).await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "JWKS refreshed");
                *j.keys.write_locked() = Arc::new(keys);
                // A key may have left the set: nothing it signed stays trusted from memory.
                self.inner.verified.invalidate_all();
            }
            // Keep the keys we have: an IdP blip must not lock every user out.
            Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; keeping the previous keys"),
        }
    }

    fn jwks_keys(&self) -> Arc<Vec<VerifyKey>> {
        match &self.inner.jwks {
            Some(j) => j.keys.read_locked().clone(),
            None => Arc::new(Vec::new()),
        }
    }

    /// Verify `token` and turn its claims into a principal.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let digest = *blake3::hash(token.as_bytes()).as_bytes();
        if let Some(p) = self.inner.verified.get(&digest).await {
            if let Via::Session { exp, .. } = p.via {
                if exp.saturating_add(self.inner.rules.leeway) >= jsonwebtoken::get_current_timestamp() {
                    return Ok(p);
                }
                self.inner.verified.invalidate(&digest).await;
                return Err(AuthError::Expired);
            }
        }
        let p = self.verify_uncached(token).await?;
        self.inner.verified.insert(digest, p.clone()).await;
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
        let restriction = if claims.studies.is_some() || claims.series.is_some() || claims.instances.is_some()
        {
            let set = ResourceSet {
                studies: ids(claims.studies.as_deref())?,
                series: ids(claims.series.as_deref())?,
                instances: ids(claims.instances.as_deref())?,
            };
            if set.len() > MAX_RESOURCES {
                return Err(AuthError::Invalid);
            }
            Some(Arc::new(set))
        } else {
            None
        };
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

fn ids(list: Option<&[String]>) -> Result<HashSet<OrthancId>, AuthError> {
    list.unwrap_or_default().iter().map(|s| OrthancId::parse(s).ok_or(AuthError::Invalid)).collect()
}

async fn fetch_jwks(j: &Jwks, rules: &ValidationRules) -> anyhow::Result<Vec<VerifyKey>> {
    let mut resp = j.http.get(&j.url).send().await?.error_for_status()?;
    let too_big = || anyhow::anyhow!("JWKS response larger than {MAX_JWKS_BYTES} bytes; refused");
    if resp.content_length().is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
        return Err(too_big());
    }
    // Read in chunks, so that a body without (or lying about) its length is cut off too.
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    let set: JwkSet = serde_json::from_slice(&body)?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        // The algorithm is pinned per key: declared `alg`, else the one its key type implies.
        let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(ka), _) => match asymmetric_alg(&ka.to_string()) {
                Some(a) => a,
                None => continue,
            },
            (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
            (None, AlgorithmParameters::EllipticCurve(p)) => match p.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => continue,
            },
            (None, AlgorithmParameters::OctetKeyPair(_)) => Algorithm::EdDSA,
            // Symmetric keys never come from a JWKS: that is how algorithm confusion starts.
            (None, AlgorithmParameters::OctetKey(_)) => continue,
        };
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        keys.push(VerifyKey { kid: jwk.common.key_id.clone(), alg, key, validation: rules.for_alg(alg) });
    }
    Ok(keys)
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";
    const ID: &str = "8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe";

    fn cfg() -> JwtConfig {
        JwtConfig {
            secret: None,
            secret_file: None,
            public_keys: vec![],
            jwks_url: String::new(),
            jwks_refresh_s: 300,
            jwks_cooldown_s: 10,
            issuer: String::new(),
            audience: String::new(),
            leeway_s: 5,
            required_scope: String::new(),
        }
    }

    fn keys(cfg: &JwtConfig) -> SessionKeys {
        SessionKeys::from_config(cfg, Some(&Secret::new(SECRET))).unwrap().unwrap()
    }

    fn hs(claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn verify(k: &SessionKeys, t: &str) -> Result<Principal, AuthError> {
        futures_util::FutureExt::now_or_never(k.verify(t)).unwrap()
    }

    #[test]
    fn valid_expired_not_yet_valid_tampered_wrong_key() {
        let k = keys(&cfg());
        let ok = hs(json!({"sub": "alice", "exp": now() + 60}), SECRET);
        let p = verify(&k, &ok).unwrap();
        assert_eq!(&*p.name, "jwt:alice");
        assert_eq!(&*p.scopes, &[Scope::Preview]);
        assert!(p.restriction.is_none());
        let expired = hs(json!({"sub": "a", "exp": now() - 60}), SECRET);
        assert!(matches!(verify(&k, &expired), Err(AuthError::Expired)));
        // Within the leeway: still fine.
        let skewed = hs(json!({"sub": "a", "exp": now() - 2}), SECRET);
        assert!(verify(&k, &skewed).is_ok());
        let future = hs(json!({"sub": "a", "exp": now() + 600, "nbf": now() + 300}), SECRET);
        assert!(matches!(verify(&k, &future), Err(AuthError::Invalid)));
        let no_exp = hs(json!({"sub": "a"}), SECRET);
        assert!(matches!(verify(&k, &no_exp), Err(AuthError::Invalid)));
        let wrong = hs(json!({"sub": "a", "exp": now() + 60}), "another-secret-another-secret-another");
        assert!(matches!(verify(&k, &wrong), Err(AuthError::Invalid)));
        // Tamper with the payload (widen the sub), keep the signature.
        let parts: Vec<&str> = ok.split('.').collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = b64.encode(serde_json::to_vec(&json!({"sub": "mallory", "exp": now() + 60})).unwrap());
        let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert!(matches!(verify(&k, &tampered), Err(AuthError::Invalid)));
        assert!(matches!(verify(&k, "a.b.c"), Err(AuthError::Invalid)));
    }

    #[test]
    fn alg_none_and_confusion_are_refused() {
        let k = keys(&cfg());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = b64.encode(serde_json::to_vec(&json!({"sub": "a", "exp": now() + 60})).unwrap());
        for alg in ["none", "None", "NONE"] {
            let header = b64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            for sig in ["", "x"] {
                let t = format!("{header}.{payload}.{sig}");
                assert!(matches!(verify(&k, &t), Err(AuthError::Invalid)), "{alg}");
            }
        }
        // An HS384 token made with the right secret: the secret is pinned to HS256.
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS384),
            &json!({"sub": "a", "exp": now() + 60}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(matches!(verify(&k, &t), Err(AuthError::Invalid)));
        // A JWKS never yields a symmetric key, and a PEM public key is never an HS key.
        assert!(asymmetric_alg("HS256").is_none());
        assert_eq!(asymmetric_alg("RS256"), Some(Algorithm::RS256));
        assert!(asymmetric_alg("none").is_none());
    }

    #[test]
    fn issuer_audience_and_required_scope() {
        let mut c = cfg();
        c.issuer = "https://app".into();
        c.audience = "edge".into();
        c.required_scope = "edge:preview".into();
        let k = keys(&c);
        let good = hs(
            json!({"sub": "a", "exp": now() + 60, "iss": "https://app", "aud": "edge", "scope": "openid edge:preview"}),
            SECRET,
        );
        assert_eq!(&*verify(&k, &good).unwrap().scopes, &[Scope::Preview]);
        let listed = hs(
            json!({"sub": "a", "exp": now() + 60, "iss": "https://app", "aud": ["x", "edge"], "scope": ["edge:preview"]}),
            SECRET,
        );
        assert!(verify(&k, &listed).is_ok());
        let no_scope = hs(
            json!({"sub": "a", "exp": now() + 60, "iss": "https://app", "aud": "edge", "scope": "openid"}),
            SECRET,
        );
        assert!(verify(&k, &no_scope).unwrap().scopes.is_empty());
        for bad in [
            json!({"sub": "a", "exp": now() + 60, "iss": "https://evil", "aud": "edge"}),
            json!({"sub": "a", "exp": now() + 60, "iss": "https://app", "aud": "other"}),
            json!({"sub": "a", "exp": now() + 60, "aud": "edge"}),
            json!({"sub": "a", "exp": now() + 60, "iss": "https://app"}),
            json!({"sub": "a", "exp": now() + 60, "iss": ["https://app", "https://evil"], "aud": "edge"}),
            json!({"sub": "a", "exp": now() + 60, "iss": ["https://app"], "aud": "edge"}),
        ] {
            assert!(matches!(verify(&k, &hs(bad, SECRET)), Err(AuthError::Invalid)));
        }
    }

    #[test]
    fn resource_claims_and_minting_round_trip() {
        let k = keys(&cfg());
        let t = hs(json!({"sub": "a", "exp": now() + 60, "studies": [ID], "instances": []}), SECRET);
        let r = verify(&k, &t).unwrap().restriction.unwrap();
        assert!(r.studies.contains(&OrthancId::parse(ID).unwrap()));
        assert!(r.instances.is_empty() && r.series.is_empty());
        let bad = hs(json!({"sub": "a", "exp": now() + 60, "series": ["../x"]}), SECRET);
        assert!(matches!(verify(&k, &bad), Err(AuthError::Invalid)));

        let m = Minter::new(
            &Secret::new(SECRET),
            &cfg(),
            &SignConfig { default_lifetime_s: 300, max_lifetime_s: 3600, public_url: String::new() },
        );
        let set = ResourceSet { instances: [OrthancId::parse(ID).unwrap()].into(), ..Default::default() };
        let minted = m.mint("app", 120, Some(&set), None).unwrap();
        assert!(minted.exp >= now() + 119);
        let p = verify(&k, &minted.token).unwrap();
        assert_eq!(&*p.name, "jwt:app");
        assert_eq!(*p.restriction.unwrap(), set);
        let free = m.mint("app", 120, None, None).unwrap();
        assert!(verify(&k, &free.token).unwrap().restriction.is_none());
    }

    fn minter(jwt: &JwtConfig) -> Minter {
        Minter::new(
            &Secret::new(SECRET),
            jwt,
            &SignConfig { default_lifetime_s: 300, max_lifetime_s: 3600, public_url: String::new() },
        )
    }

    #[test]
    fn minted_tokens_carry_the_required_scope_the_bare_sub_and_the_link() {
        let mut c = cfg();
        c.required_scope = "edge:preview".into();
        let (k, m) = (keys(&c), minter(&c));
        let p = verify(&k, &m.mint("alice", 60, None, None).unwrap().token).unwrap();
        assert_eq!(&*p.scopes, &[Scope::Preview], "the edge accepts the tokens it mints");
        assert!(p.link.is_none());
        let Via::Session { sub, .. } = &p.via else { panic!("{:?}", p.via) };
        assert_eq!((&**sub, &*p.name), ("alice", "jwt:alice"));
        // Minting on behalf of that principal keeps the subject as it was.
        let again = verify(&k, &m.mint(sub, 60, None, None).unwrap().token).unwrap();
        assert_eq!(&*again.name, "jwt:alice");

        let b = LinkBinding::new(super::super::LinkRoute::InstancePreview, None, [("w", "64".to_owned())]);
        let p = verify(&k, &m.mint("alice", 60, None, Some(&b)).unwrap().token).unwrap();
        assert_eq!(p.link.as_deref(), Some(&b));
        // A binding too large to be one link's is not a valid token.
        let params: serde_json::Map<String, serde_json::Value> =
            (0..20).map(|i| (format!("p{i}"), json!("1"))).collect();
        let t = hs(
            json!({"sub": "a", "exp": now() + 60, "link": {"route": "instance-preview", "params": params}}),
            SECRET,
        );
        assert!(matches!(verify(&k, &t), Err(AuthError::Invalid)));
        let t = hs(json!({"sub": "a", "exp": now() + 60, "link": {"route": "nowhere"}}), SECRET);
        assert!(matches!(verify(&k, &t), Err(AuthError::Invalid)));
    }
}

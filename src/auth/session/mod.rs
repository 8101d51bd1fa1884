//! Session tokens (JWT): `SessionKeys` verifies them with algorithm-pinned keys (`keys`: HS secret and PEM files; `jwks`: an identity provider's set) and turns their claims into a principal (`verify`).

mod jwks;
mod keys;
mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::hot::Hot;
use crate::auth::Principal;
use crate::config::{JwtConfig, Secret};

pub use keys::{asymmetric_alg, check_algorithms};

use jwks::Jwks;
use keys::{ValidationRules, VerifyKey};

/// Most resource ids a token may list (bounds the work one token can cause).
pub const MAX_RESOURCES: usize = 10_000;

/// Verified tokens are remembered this long (bounded by their own `exp`): a page of 100
/// images presents the same token 100 times. Also bounds how long a token signed by a key that
/// has since left the JWKS keeps working.
const VERIFIED_TTL: Duration = Duration::from_secs(30);
const VERIFIED_ENTRIES: u64 = 50_000;
/// Verified tokens each worker thread keeps in front of `verified`.
const HOT_VERIFIED: usize = 4096;

struct Inner {
    /// blake3(token) → its principal, for tokens that verified, and when that stops counting
    /// (`VERIFIED_TTL` after the check: what `hot` copies are bound by).
    verified: moka::future::Cache<[u8; 32], (Principal, Instant)>,
    /// Each worker thread's copies of `verified` (see `auth::hot`).
    hot: Hot<[u8; 32], Principal>,
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
        let static_keys = keys::static_keys(cfg, secret, &rules)?;
        let jwks = Jwks::from_config(cfg)?;
        if static_keys.is_empty() && jwks.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            inner: Arc::new(Inner {
                verified: moka::future::Cache::builder()
                    .max_capacity(VERIFIED_ENTRIES)
                    .time_to_live(VERIFIED_TTL)
                    .build(),
                hot: Hot::new(HOT_VERIFIED),
                static_keys,
                jwks,
                rules,
                required_scope: (!cfg.required_scope.is_empty()).then(|| cfg.required_scope.clone()),
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::mint::Minter;
    use crate::auth::{AuthError, LinkBinding, ResourceSet, Scope, Via};
    use crate::config::SignConfig;
    use crate::ids::OrthancId;
    use base64::Engine as _;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
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

        let b = LinkBinding::new(crate::auth::LinkRoute::InstancePreview, None, [("w", "64".to_owned())]);
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

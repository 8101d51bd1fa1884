//! The identity provider's key set (JWKS): fetched in the background, refetched (rate-limited) on an unknown `kid`, size-capped.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::keys::{asymmetric_alg, ValidationRules, VerifyKey};
use super::SessionKeys;
use crate::config::JwtConfig;
use crate::sync::RwLockExt as _;

/// Largest JWKS response read (a real key set is a few KiB); a bigger one is refused and the
/// keys of the last good fetch are kept.
const MAX_JWKS_BYTES: usize = 1 << 20;

pub(super) struct Jwks {
    url: String,
    http: reqwest::Client,
    keys: RwLock<Arc<Vec<VerifyKey>>>,
    pub(super) refresh: Duration,
    cooldown: Duration,
    /// When the last fetch started; the lock also coalesces concurrent refreshes.
    last: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    /// `None` without a JWKS URL.
    pub(super) fn from_config(cfg: &JwtConfig) -> anyhow::Result<Option<Self>> {
        Ok(if cfg.jwks_url.is_empty() {
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
        })
    }
}

impl SessionKeys {
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
    pub(super) async fn refresh_jwks(&self, cooldown: bool) {
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
                self.inner.hot.invalidate_all();
            }
            // Keep the keys we have: an IdP blip must not lock every user out.
            Err(e) => tracing::warn!(error = %e, "JWKS refresh failed; keeping the previous keys"),
        }
    }

    pub(super) fn jwks_keys(&self) -> Arc<Vec<VerifyKey>> {
        match &self.inner.jwks {
            Some(j) => j.keys.read_locked().clone(),
            None => Arc::new(Vec::new()),
        }
    }
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

//! Verification keys, each pinned to one algorithm: the HS secret and PEM public keys from config, and the claim rules every key checks.

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::str::FromStr;

use crate::config::{invalid, ConfigError, JwtConfig, Secret};

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
pub(super) struct VerifyKey {
    pub(super) kid: Option<String>,
    pub(super) alg: Algorithm,
    pub(super) key: DecodingKey,
    pub(super) validation: Validation,
}

pub(super) struct ValidationRules {
    pub(super) leeway: u64,
    pub(super) issuer: Option<String>,
    pub(super) audience: Option<String>,
}

impl ValidationRules {
    pub(super) fn for_alg(&self, alg: Algorithm) -> Validation {
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

/// The keys named in config: the HS256 secret (when set) and every PEM public key.
pub(super) fn static_keys(
    cfg: &JwtConfig,
    secret: Option<&Secret>,
    rules: &ValidationRules,
) -> anyhow::Result<Vec<VerifyKey>> {
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
        let alg =
            asymmetric_alg(&k.alg).with_context(|| format!("auth.jwt.public_keys[{i}].alg: `{}`", k.alg))?;
        let pem = std::fs::read(&k.path)
            .with_context(|| format!("auth.jwt.public_keys[{i}].path: cannot read {}", k.path.display()))?;
        let key = match alg {
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
            _ => DecodingKey::from_rsa_pem(&pem),
        }
        .with_context(|| {
            format!("auth.jwt.public_keys[{i}]: {} is not a {} public key in PEM", k.path.display(), k.alg)
        })?;
        static_keys.push(VerifyKey { kid: k.kid.clone(), alg, key, validation: rules.for_alg(alg) });
    }
    Ok(static_keys)
}

//! API keys: stored as blake3 hashes, checked in constant time.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::{Principal, Scope, Via};
use crate::config::{invalid, ApiKeyConfig, ConfigError};

/// The scopes a configured key names (`at` is its config key, e.g. `auth.api_keys[0]`).
pub fn scopes_of(key: &ApiKeyConfig, at: &str) -> Result<Vec<Scope>, ConfigError> {
    use serde::de::{Deserialize as _, IntoDeserializer as _};
    let parse = |(j, s): (usize, &String)| {
        Scope::deserialize(s.as_str().into_deserializer())
            .map_err(|e: serde::de::value::Error| invalid(&format!("{at}.scopes[{j}]"), e))
    };
    key.scopes.iter().enumerate().map(parse).collect()
}

/// The blake3 hash of a key, as written in config (`orthanc-edge hash-key`).
pub fn hash_key(key: &str) -> String {
    blake3::hash(key.as_bytes()).to_hex().to_string()
}

#[derive(Debug, Clone)]
struct Entry {
    hash: [u8; 32],
    principal: Principal,
}

#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    entries: Arc<[Entry]>,
}

impl ApiKeys {
    /// Build from validated config (invalid hashes were refused by `Config::validate`); an
    /// unknown scope name is refused here, naming its key.
    pub fn from_config(keys: &[ApiKeyConfig]) -> Result<Self, ConfigError> {
        let mut entries = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let scopes = scopes_of(k, &format!("auth.api_keys[{i}]"))?;
            let Ok(hash) = blake3::Hash::from_hex(&k.hash) else {
                continue;
            };
            entries.push(Entry {
                hash: *hash.as_bytes(),
                principal: Principal {
                    name: k.name.as_str().into(),
                    scopes: scopes.into(),
                    restriction: None,
                    link: None,
                    via: Via::ApiKey,
                },
            });
        }
        Ok(Self { entries: entries.into() })
    }

    /// The principal of `key`, comparing against every stored hash in constant time.
    pub fn verify(&self, key: &str) -> Option<Principal> {
        let presented = blake3::hash(key.as_bytes());
        let mut found = None;
        // No early exit: the time taken does not say which entry (if any) matched.
        for entry in self.entries.iter() {
            if bool::from(entry.hash.ct_eq(presented.as_bytes())) {
                found = Some(entry.principal.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_by_hash() {
        let keys = ApiKeys::from_config(&[ApiKeyConfig {
            name: "viewer".into(),
            hash: hash_key("correct horse"),
            scopes: vec!["preview".into()],
        }])
        .unwrap();
        let p = keys.verify("correct horse").unwrap();
        assert_eq!(&*p.name, "viewer");
        assert!(keys.verify("correct horsf").is_none());
        assert!(keys.verify("").is_none());
    }

    #[test]
    fn hash_is_blake3_hex() {
        assert_eq!(hash_key("abc").len(), 64);
        assert_eq!(hash_key("abc"), blake3::hash(b"abc").to_hex().to_string());
    }
}

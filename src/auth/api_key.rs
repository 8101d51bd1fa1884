//! API keys: stored as blake3 hashes, checked in constant time.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::{Principal, Scope, Via};
use crate::config::ApiKeyConfig;

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
    /// Build from validated config (invalid hashes were refused by `Config::validate`).
    pub fn from_config(keys: &[ApiKeyConfig]) -> Self {
        let entries = keys
            .iter()
            .filter_map(|k| {
                let hash = blake3::Hash::from_hex(&k.hash).ok()?;
                let scopes: Vec<Scope> = k.scopes.clone();
                Some(Entry {
                    hash: *hash.as_bytes(),
                    principal: Principal {
                        name: k.name.as_str().into(),
                        scopes: scopes.into(),
                        restriction: None,
                        link: None,
                        via: Via::ApiKey,
                    },
                })
            })
            .collect();
        Self { entries }
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
            scopes: vec![Scope::Preview],
        }]);
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

//! `Secret` (never printed, never serialized in clear) and the one place secrets are read from files.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};

use super::{invalid, Config, ConfigError};

/// A secret string: never printed, never serialized in clear.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// The secret in `path` (config key `key`), without its trailing line break.
fn read_secret_file(key: &str, path: &Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
    Ok(Secret::new(text.trim_end_matches(['\r', '\n'])))
}

/// The inline secret, else the one in its file, else `None`.
fn inline_or_file(
    inline: &Option<Secret>,
    file: &Option<PathBuf>,
    file_key: &str,
) -> Result<Option<Secret>, ConfigError> {
    match (inline, file) {
        (Some(s), _) => Ok(Some(s.clone())),
        (None, Some(path)) => read_secret_file(file_key, path).map(Some),
        (None, None) => Ok(None),
    }
}

/// HS256 is only as strong as its secret: ask for at least 32 bytes.
pub(super) fn check_hs_secret(key: &str, secret: &str) -> Result<(), ConfigError> {
    if secret.len() < 32 {
        return Err(invalid(key, "must be at least 32 bytes (e.g. `openssl rand -hex 32`)"));
    }
    Ok(())
}

impl Config {
    /// The HS256 secret, read from its file when configured that way; `None` when not set.
    pub fn jwt_secret(&self) -> Result<Option<Secret>, ConfigError> {
        let jwt = &self.auth.jwt;
        let secret = inline_or_file(&jwt.secret, &jwt.secret_file, "auth.jwt.secret_file")?;
        if let (None, Some(s)) = (&jwt.secret, &secret) {
            check_hs_secret("auth.jwt.secret_file", s.expose())?;
        }
        Ok(secret)
    }

    /// The cluster's shared secret, read from its file when configured that way; `None` when the
    /// cluster is off.
    pub fn cluster_secret(&self) -> Result<Option<Secret>, ConfigError> {
        let c = &self.cluster;
        if !c.enabled() {
            return Ok(None);
        }
        let secret = inline_or_file(&c.secret, &c.secret_file, "cluster.secret_file")?;
        if let (None, Some(s)) = (&c.secret, &secret) {
            check_hs_secret("cluster.secret_file", s.expose())?;
        }
        Ok(secret)
    }

    /// The Orthanc password, read from its file when configured that way.
    pub fn orthanc_password(&self) -> Result<Secret, ConfigError> {
        let o = &self.orthanc;
        let password = inline_or_file(&o.password, &o.password_file, "orthanc.password_file")?
            .ok_or_else(|| invalid("orthanc.password", "missing"))?;
        if let (None, Some(path)) = (&o.password, &o.password_file) {
            if password.expose().is_empty() {
                return Err(invalid("orthanc.password_file", format!("{} is empty", path.display())));
            }
        }
        Ok(password)
    }
}

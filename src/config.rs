//! Typed configuration: built-in defaults (config/default.toml) ← file ← environment, validated before start.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize, Serializer};
use url::Url;

use crate::auth::Scope;
use crate::transform::spec::{check_preset, Preset};

/// The documented defaults; also the base layer of every load.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
/// Prefix of environment overrides: `ORTHANC_EDGE__SECTION__KEY`.
pub const ENV_PREFIX: &str = "ORTHANC_EDGE";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub orthanc: OrthancConfig,
    pub cache: CacheConfig,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub transform: TransformConfig,
    #[serde(default)]
    pub presets: BTreeMap<String, Preset>,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    pub allow_arbitrary: bool,
    pub allow_upscale: bool,
    pub max_dimension: u32,
    pub max_source_pixels: u64,
    pub default_quality: u8,
    pub workers: usize,
    pub queue: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub workers: usize,
    pub flight_wait_ms: u64,
    pub request_timeout_ms: u64,
    pub keep_alive_s: u64,
    pub max_connections: usize,
    pub max_uri_bytes: usize,
    pub max_header_bytes: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrthancConfig {
    pub url: String,
    pub username: String,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    pub timeout_ms: u64,
    pub max_concurrency: usize,
    pub max_waiting: usize,
    pub max_body_bytes: u64,
    pub breaker_failures: u32,
    pub breaker_probe_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub dir: PathBuf,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub disk_page_cache_bytes: u64,
    pub negative_ttl_s: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub cache_control: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub api_keys: Vec<ApiKeyConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    pub name: String,
    /// blake3 hash of the key, 64 hex digits.
    pub hash: String,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

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

/// A configuration problem, worded for the operator and naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn invalid(key: &str, why: impl fmt::Display) -> ConfigError {
    ConfigError(format!("config key `{key}`: {why}"))
}

impl Config {
    /// Load defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, std::env::vars().collect())
    }

    /// Load with an explicit environment map (tests never touch the process environment).
    pub fn load_from(file: Option<&Path>, env: HashMap<String, String>) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULT_TOML, config::FileFormat::Toml));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "config file {} does not exist or is not a file",
                    path.display()
                )));
            }
            builder =
                builder.add_source(config::File::from(path.to_path_buf()).format(config::FileFormat::Toml));
        }
        // A list of tables does not fit in one env var the usual way: take it as JSON.
        let keys_var = format!("{ENV_PREFIX}__AUTH__API_KEYS");
        let mut env = env;
        env.retain(|k, _| k.starts_with(&format!("{ENV_PREFIX}__")));
        if let Some(json) = env.remove(&keys_var) {
            let keys: Vec<ApiKeyConfig> = serde_json::from_str(&json).map_err(|e| {
                ConfigError(format!("environment {keys_var}: not a JSON list of {{name, hash, scopes}}: {e}"))
            })?;
            let value = serde_json::to_value(keys)
                .map_err(|e| ConfigError(format!("environment {keys_var}: {e}")))?;
            builder = builder
                .set_override("auth.api_keys", json_to_config(value))
                .map_err(|e| ConfigError(e.to_string()))?;
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let built = builder.build().map_err(|e| ConfigError(format!("invalid configuration: {e}")))?;
        // serde_path_to_error names the section of an unknown or mistyped key.
        let cfg: Config = serde_path_to_error::deserialize(built).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." { String::new() } else { format!(" at `{path}`") };
            ConfigError(format!("invalid configuration{at}: {}", e.inner()))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Refuse what cannot work, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server
            .listen
            .parse::<SocketAddr>()
            .map_err(|_| invalid("server.listen", "expected an address such as 127.0.0.1:8080"))?;
        if self.server.flight_wait_ms == 0 {
            return Err(invalid("server.flight_wait_ms", "must be greater than 0"));
        }
        let url =
            Url::parse(&self.orthanc.url).map_err(|e| invalid("orthanc.url", format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(invalid("orthanc.url", "must be an http:// or https:// URL with a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "orthanc.url",
                "must not carry credentials; use orthanc.username and orthanc.password",
            ));
        }
        if self.orthanc.username.trim().is_empty() {
            return Err(invalid("orthanc.username", "must not be empty"));
        }
        match (&self.orthanc.password, &self.orthanc.password_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "orthanc.password",
                    "set either orthanc.password or orthanc.password_file, not both",
                ))
            }
            (None, None) => {
                return Err(invalid(
                    "orthanc.password",
                    "missing: set orthanc.password or orthanc.password_file",
                ))
            }
            _ => {}
        }
        for (key, value) in [
            ("server.request_timeout_ms", self.server.request_timeout_ms),
            ("server.max_connections", self.server.max_connections as u64),
            ("server.max_uri_bytes", self.server.max_uri_bytes as u64),
            ("server.max_header_bytes", self.server.max_header_bytes as u64),
            ("orthanc.breaker_probe_ms", self.orthanc.breaker_probe_ms),
            ("orthanc.timeout_ms", self.orthanc.timeout_ms),
            ("orthanc.max_concurrency", self.orthanc.max_concurrency as u64),
            ("orthanc.max_body_bytes", self.orthanc.max_body_bytes),
            ("cache.memory_bytes", self.cache.memory_bytes),
            ("cache.disk_bytes", self.cache.disk_bytes),
            ("cache.disk_page_cache_bytes", self.cache.disk_page_cache_bytes),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        let t = &self.transform;
        if t.max_dimension == 0 || t.max_dimension > 16383 {
            return Err(invalid("transform.max_dimension", "must be from 1 to 16383"));
        }
        if t.max_source_pixels == 0 {
            return Err(invalid("transform.max_source_pixels", "must be greater than 0"));
        }
        if !(1..=100).contains(&t.default_quality) {
            return Err(invalid("transform.default_quality", "must be from 1 to 100"));
        }
        for (name, preset) in &self.presets {
            check_preset(name, preset, t.max_dimension).map_err(|(key, why)| invalid(&key, why))?;
        }
        if self.orthanc.max_body_bytes > u64::from(u32::MAX) {
            return Err(invalid("orthanc.max_body_bytes", "must be below 4 GiB"));
        }
        if self.cache.dir.as_os_str().is_empty() {
            return Err(invalid("cache.dir", "must not be empty"));
        }
        if actix_web::http::header::HeaderValue::from_str(&self.http.cache_control).is_err() {
            return Err(invalid("http.cache_control", "is not a valid header value"));
        }
        for (i, key) in self.auth.api_keys.iter().enumerate() {
            let at = format!("auth.api_keys[{i}]");
            if key.name.trim().is_empty() {
                return Err(invalid(&format!("{at}.name"), "must not be empty"));
            }
            if blake3::Hash::from_hex(&key.hash).is_err() {
                return Err(invalid(
                    &format!("{at}.hash"),
                    "must be 64 hex digits (make it with `orthanc-edge hash-key KEY`)",
                ));
            }
            if key.scopes.is_empty() {
                return Err(invalid(&format!("{at}.scopes"), "must name at least one scope"));
            }
        }
        Ok(())
    }

    /// The Orthanc password, read from its file when configured that way.
    pub fn orthanc_password(&self) -> Result<Secret, ConfigError> {
        if let Some(p) = &self.orthanc.password {
            return Ok(p.clone());
        }
        let path =
            self.orthanc.password_file.as_ref().ok_or_else(|| invalid("orthanc.password", "missing"))?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid("orthanc.password_file", format!("cannot read {}: {e}", path.display())))?;
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            return Err(invalid("orthanc.password_file", format!("{} is empty", path.display())));
        }
        Ok(Secret::new(text))
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

fn json_to_config(v: serde_json::Value) -> config::Value {
    use config::ValueKind;
    let kind = match v {
        serde_json::Value::Null => ValueKind::Nil,
        serde_json::Value::Bool(b) => ValueKind::Boolean(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => ValueKind::I64(i),
            None => ValueKind::Float(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(s) => ValueKind::String(s),
        serde_json::Value::Array(a) => ValueKind::Array(a.into_iter().map(json_to_config).collect()),
        serde_json::Value::Object(o) => {
            ValueKind::Table(o.into_iter().map(|(k, v)| (k, json_to_config(v))).collect())
        }
    };
    config::Value::new(None, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    const PW: &str = "[orthanc]\npassword = \"s3cret\"\n";

    #[test]
    fn defaults_plus_password_load() {
        let f = file(PW);
        let cfg = Config::load_from(Some(f.path()), env(&[])).unwrap();
        assert_eq!(cfg.orthanc.max_concurrency, 4);
        assert_eq!(cfg.http.cache_control, "private, max-age=86400");
        assert_eq!(cfg.server.listen, "127.0.0.1:8080");
    }

    #[test]
    fn env_overrides_file() {
        let f = file(PW);
        let cfg = Config::load_from(
            Some(f.path()),
            env(&[
                ("ORTHANC_EDGE__ORTHANC__URL", "http://pacs:8042"),
                ("ORTHANC_EDGE__CACHE__MEMORY_BYTES", "1024"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.orthanc.url, "http://pacs:8042");
        assert_eq!(cfg.cache.memory_bytes, 1024);
    }

    #[test]
    fn api_keys_from_env_json() {
        let f = file(PW);
        let hash = blake3::hash(b"k").to_hex().to_string();
        let json = format!(r#"[{{"name":"a","hash":"{hash}","scopes":["preview","admin"]}}]"#);
        let cfg = Config::load_from(Some(f.path()), env(&[("ORTHANC_EDGE__AUTH__API_KEYS", &json)])).unwrap();
        assert_eq!(cfg.auth.api_keys.len(), 1);
        assert_eq!(cfg.auth.api_keys[0].scopes, vec![Scope::Preview, Scope::Admin]);
    }

    fn err_of(text: &str, pairs: &[(&str, &str)]) -> String {
        let f = file(text);
        Config::load_from(Some(f.path()), env(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn refusals_name_the_key() {
        let typo = err_of("[server]\nlisen = \"x\"\n[orthanc]\npassword=\"p\"\n", &[]);
        assert!(typo.contains("lisen") && typo.contains("server"), "{typo}");
        assert!(err_of("[orthanc]\nurl = \"not a url\"\npassword=\"p\"\n", &[]).contains("orthanc.url"));
        assert!(err_of("[orthanc]\nurl = \"ftp://h\"\npassword=\"p\"\n", &[]).contains("orthanc.url"));
        assert!(err_of("", &[]).contains("orthanc.password"));
        assert!(err_of(PW, &[("ORTHANC_EDGE__CACHE__MEMORY_BYTES", "0")]).contains("cache.memory_bytes"));
        assert!(err_of(PW, &[("ORTHANC_EDGE__CACHE__DISK_BYTES", "0")]).contains("cache.disk_bytes"));
        assert!(err_of(PW, &[("ORTHANC_EDGE__SERVER__LISTEN", "nope")]).contains("server.listen"));
        assert!(err_of(
            "[orthanc]\npassword=\"p\"\n[[auth.api_keys]]\nname=\"a\"\nhash=\"zz\"\nscopes=[\"preview\"]\n",
            &[]
        )
        .contains("auth.api_keys[0].hash"));
        assert!(err_of(
            "[orthanc]\npassword=\"p\"\n[[auth.api_keys]]\nname=\"a\"\nhash=\"00\"\nscopes=[\"root\"]\n",
            &[]
        )
        .contains("root"));
        assert!(
            err_of("[orthanc]\npassword=\"p\"\npassword_file=\"/nonexistent\"\n", &[]).contains("not both")
        );
    }

    #[test]
    fn presets_load_merge_and_validate() {
        let f = file("[orthanc]\npassword=\"p\"\n[presets.tiny]\nw=32\nformat=\"png\"\n");
        let cfg =
            Config::load_from(Some(f.path()), env(&[("ORTHANC_EDGE__PRESETS__TINY__H", "16")])).unwrap();
        assert_eq!(cfg.presets["tiny"].w, Some(32));
        assert_eq!(cfg.presets["tiny"].h, Some(16));
        assert!(cfg.presets.contains_key("thumb"), "built-in presets stay");
        let e = err_of("[orthanc]\npassword=\"p\"\n[presets.big]\nw=99999\n", &[]);
        assert!(e.contains("presets.big.w"), "{e}");
        let e = err_of("[orthanc]\npassword=\"p\"\n[presets.x]\nwidth=3\n", &[]);
        assert!(e.contains("presets.x") && e.contains("width"), "{e}");
    }

    #[test]
    fn missing_password_file_is_refused_by_name() {
        let f = file("[orthanc]\npassword_file = \"/nonexistent/pw\"\n");
        let cfg = Config::load_from(Some(f.path()), env(&[])).unwrap();
        assert!(cfg.orthanc_password().unwrap_err().to_string().contains("orthanc.password_file"));
    }

    #[test]
    fn redacted_output_hides_the_password() {
        let f = file(PW);
        let cfg = Config::load_from(Some(f.path()), env(&[])).unwrap();
        let text = cfg.to_redacted_toml();
        assert!(!text.contains("s3cret"));
        assert!(text.contains("<redacted>"));
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn sample_config_documents_every_key() {
        // Every leaf key of the structs appears in config/default.toml (commented or not).
        let f = file(PW);
        let cfg = Config::load_from(Some(f.path()), env(&[])).unwrap();
        let value = toml::Value::try_from(&cfg).unwrap();
        let mut missing = vec![];
        if let toml::Value::Table(sections) = value {
            for (section, table) in sections {
                // Presets are a map of names, documented as a pattern.
                if section == "presets" {
                    continue;
                }
                let toml::Value::Table(keys) = table else {
                    continue;
                };
                for key in keys.keys() {
                    let env_name =
                        format!("ORTHANC_EDGE__{}__{}", section.to_uppercase(), key.to_uppercase());
                    if !DEFAULT_TOML.contains(&env_name) {
                        missing.push(env_name);
                    }
                }
            }
        }
        assert!(missing.is_empty(), "undocumented keys: {missing:?}");
        for key in ["password", "password_file"] {
            assert!(DEFAULT_TOML.contains(&format!("ORTHANC_EDGE__ORTHANC__{}", key.to_uppercase())));
        }
    }
}

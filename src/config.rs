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
/// List-valued keys, given in the environment as JSON lists.
const JSON_LIST_VARS: &[(&str, &str)] = &[
    ("AUTH__JWT__PUBLIC_KEYS", "auth.jwt.public_keys"),
    ("AUTH__DELEGATE__FORWARD_HEADERS", "auth.delegate.forward_headers"),
    ("CORS__ALLOWED_ORIGINS", "cors.allowed_origins"),
    ("SERVER__TRUSTED_PROXIES", "server.trusted_proxies"),
];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub orthanc: OrthancConfig,
    pub cache: CacheConfig,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub transform: TransformConfig,
    pub grid: GridConfig,
    pub warm: WarmConfig,
    #[serde(default)]
    pub presets: BTreeMap<String, Preset>,
    pub cors: CorsConfig,
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
    /// Images one client may have made (misses) per minute; 0 = no budget.
    pub misses_per_minute: u32,
    pub miss_burst: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub admin_listen: String,
    pub workers: usize,
    pub flight_wait_ms: u64,
    pub drain_delay_ms: u64,
    pub shutdown_grace_s: u64,
    pub request_timeout_ms: u64,
    pub keep_alive_s: u64,
    pub max_connections: usize,
    pub max_uri_bytes: usize,
    pub max_header_bytes: usize,
    /// CIDRs / addresses of reverse proxies whose forwarding headers name the client.
    pub trusted_proxies: Vec<String>,
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
    pub max_metadata_concurrency: usize,
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
    pub sources_on_disk: bool,
    pub negative_ttl_s: u64,
    pub metadata_ttl_s: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GridConfig {
    pub thumbnail_preset: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WarmConfig {
    pub concurrency: usize,
    pub max_resources: usize,
    pub follow_changes: bool,
    pub presets: Vec<String>,
    pub poll_ms: u64,
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
    pub jwt: JwtConfig,
    pub cookie: CookieConfig,
    pub sign: SignConfig,
    pub delegate: DelegateConfig,
    pub rate_limit: RateLimitConfig,
}

/// Session tokens (JWT): which keys sign them and which claims are checked.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// HS256 shared secret (also signs the tokens the edge mints).
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// RS256/ES256/... public keys as PEM files, each pinned to one algorithm.
    pub public_keys: Vec<PublicKeyConfig>,
    /// JWKS URL of an identity provider ("" = none), refreshed in the background.
    pub jwks_url: String,
    pub jwks_refresh_s: u64,
    /// Least time between two refreshes forced by an unknown `kid`.
    pub jwks_cooldown_s: u64,
    /// Required `iss` ("" = not checked).
    pub issuer: String,
    /// Required `aud` ("" = not checked).
    pub audience: String,
    pub leeway_s: u64,
    /// A word the `scope` claim must contain ("" = any valid token may read previews).
    pub required_scope: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyConfig {
    pub path: PathBuf,
    /// RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA.
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
}

/// The session cookie: its name (read on every request) and how `/auth/session` sets it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CookieConfig {
    pub name: String,
    pub secure: bool,
    pub same_site: SameSite,
    pub path: String,
    /// Domain attribute ("" = host-only cookie).
    pub domain: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

/// Tokens minted by `POST /auth/sign` and `POST /auth/session`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignConfig {
    pub default_lifetime_s: u64,
    pub max_lifetime_s: u64,
    /// Prefix of the URLs `/auth/sign` returns ("" = paths only).
    pub public_url: String,
}

/// Delegated decisions (nginx `auth_request` style).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DelegateConfig {
    /// Validator URL ("" = delegation off).
    pub url: String,
    pub forward_headers: Vec<String>,
    pub timeout_ms: u64,
    pub cache_ttl_s: u64,
    pub max_cache_ttl_s: u64,
    pub decision: DecisionScope,
    /// Response header listing the study ids an allowed credential may see ("" = ignored).
    pub studies_header: String,
    /// Response header naming the user an answer is for: the key of that user's miss budget
    /// ("" = ignored; the client address is the key then).
    pub user_header: String,
    pub cache_entries: u64,
}

/// What one validator answer covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionScope {
    /// The requested resource only (nginx `auth_request` semantics).
    Resource,
    /// Every resource, for that credential (a validator that only checks the session).
    Credential,
}

/// Failed authentications per client address.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// 0 disables the limit.
    pub failures_per_minute: u32,
    pub burst: u32,
}

/// Cross-origin access for viewers on other origins.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins, e.g. "https://viewer.example.org". Empty = CORS off.
    pub allowed_origins: Vec<String>,
    pub allow_credentials: bool,
    pub max_age_s: u64,
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
        // Lists do not fit in one env var the usual way: take them as JSON.
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
        for (suffix, key) in JSON_LIST_VARS {
            let var = format!("{ENV_PREFIX}__{suffix}");
            if let Some(json) = env.remove(&var) {
                let value: serde_json::Value = serde_json::from_str(&json)
                    .ok()
                    .filter(serde_json::Value::is_array)
                    .ok_or_else(|| ConfigError(format!("environment {var}: not a JSON list")))?;
                builder = builder
                    .set_override(*key, json_to_config(value))
                    .map_err(|e| ConfigError(e.to_string()))?;
            }
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("warm.presets")
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
        self.server
            .admin_listen
            .parse::<SocketAddr>()
            .map_err(|_| invalid("server.admin_listen", "expected an address such as 127.0.0.1:9090"))?;
        if self.server.admin_listen == self.server.listen && !self.server.listen.ends_with(":0") {
            return Err(invalid("server.admin_listen", "must differ from server.listen"));
        }
        if self.server.shutdown_grace_s == 0 || self.server.shutdown_grace_s > 3600 {
            return Err(invalid("server.shutdown_grace_s", "must be from 1 to 3600"));
        }
        if self.server.drain_delay_ms > 600_000 {
            return Err(invalid("server.drain_delay_ms", "must be at most 600000 (10 minutes)"));
        }
        if self.server.flight_wait_ms == 0 {
            return Err(invalid("server.flight_wait_ms", "must be greater than 0"));
        }
        crate::http::TrustedProxies::parse(&self.server.trusted_proxies)
            .map_err(|(i, why)| invalid(&format!("server.trusted_proxies[{i}]"), why))?;
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
            ("orthanc.max_metadata_concurrency", self.orthanc.max_metadata_concurrency as u64),
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
        if !self.presets.contains_key(&self.grid.thumbnail_preset) {
            return Err(invalid("grid.thumbnail_preset", "must name a preset in [presets]"));
        }
        for name in &self.warm.presets {
            if !self.presets.contains_key(name) {
                return Err(invalid("warm.presets", format!("no preset named {name:?}")));
            }
        }
        if self.warm.max_resources == 0 || self.warm.poll_ms == 0 {
            return Err(invalid(
                "warm.max_resources",
                "warm.max_resources and warm.poll_ms must be greater than 0",
            ));
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
        self.validate_auth()?;
        self.validate_cors()
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let jwt = &self.auth.jwt;
        if jwt.secret.is_some() && jwt.secret_file.is_some() {
            return Err(invalid(
                "auth.jwt.secret",
                "set either auth.jwt.secret or auth.jwt.secret_file, not both",
            ));
        }
        if let Some(s) = &jwt.secret {
            check_hs_secret("auth.jwt.secret", s.expose())?;
        }
        for (i, k) in jwt.public_keys.iter().enumerate() {
            if crate::auth::asymmetric_alg(&k.alg).is_none() {
                return Err(invalid(
                    &format!("auth.jwt.public_keys[{i}].alg"),
                    format!(
                        "`{}` is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA",
                        k.alg
                    ),
                ));
            }
        }
        if !jwt.jwks_url.is_empty() {
            check_http_url("auth.jwt.jwks_url", &jwt.jwks_url)?;
            if jwt.jwks_refresh_s == 0 {
                return Err(invalid("auth.jwt.jwks_refresh_s", "must be greater than 0"));
            }
        }
        let c = &self.auth.cookie;
        if c.name.is_empty()
            || !c.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Err(invalid(
                "auth.cookie.name",
                "must be a non-empty cookie name (letters, digits, _ - .)",
            ));
        }
        if c.same_site == SameSite::None && !c.secure {
            return Err(invalid(
                "auth.cookie.same_site",
                "\"none\" needs auth.cookie.secure = true (browsers drop the cookie otherwise)",
            ));
        }
        if !c.path.starts_with('/') {
            return Err(invalid("auth.cookie.path", "must start with /"));
        }
        let sign = &self.auth.sign;
        if sign.default_lifetime_s == 0 || sign.default_lifetime_s > sign.max_lifetime_s {
            return Err(invalid(
                "auth.sign.default_lifetime_s",
                "must be greater than 0 and at most auth.sign.max_lifetime_s",
            ));
        }
        if !sign.public_url.is_empty() {
            check_http_url("auth.sign.public_url", &sign.public_url)?;
        }
        let d = &self.auth.delegate;
        if !d.url.is_empty() {
            check_http_url("auth.delegate.url", &d.url)?;
            if d.forward_headers.is_empty() {
                return Err(invalid(
                    "auth.delegate.forward_headers",
                    "must name at least one header (e.g. Cookie)",
                ));
            }
            if d.timeout_ms == 0 {
                return Err(invalid("auth.delegate.timeout_ms", "must be greater than 0"));
            }
        }
        for (i, h) in d.forward_headers.iter().enumerate() {
            if actix_web::http::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(invalid(&format!("auth.delegate.forward_headers[{i}]"), "is not a header name"));
            }
            let lower = h.to_ascii_lowercase();
            // The edge's own statements to the validator: a client must not be able to send them.
            if lower.starts_with("x-edge-") || lower.starts_with("x-original-") {
                return Err(invalid(
                    &format!("auth.delegate.forward_headers[{i}]"),
                    "must not be an X-Edge-* or X-Original-* header (the edge sets those itself)",
                ));
            }
        }
        for (key, h) in [
            ("auth.delegate.studies_header", &d.studies_header),
            ("auth.delegate.user_header", &d.user_header),
        ] {
            if !h.is_empty() && actix_web::http::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(invalid(key, "is not a header name"));
            }
        }
        if self.auth.rate_limit.failures_per_minute > 0 && self.auth.rate_limit.burst == 0 {
            return Err(invalid("auth.rate_limit.burst", "must be greater than 0"));
        }
        if self.transform.misses_per_minute > 0 && self.transform.miss_burst == 0 {
            return Err(invalid("transform.miss_burst", "must be greater than 0"));
        }
        Ok(())
    }

    fn validate_cors(&self) -> Result<(), ConfigError> {
        for (i, o) in self.cors.allowed_origins.iter().enumerate() {
            let key = format!("cors.allowed_origins[{i}]");
            if o == "*" {
                return Err(invalid(
                    &key,
                    "`*` is not allowed: list exact origins (credentials are never sent to `*`)",
                ));
            }
            let url = Url::parse(o).map_err(|e| invalid(&key, format!("not an origin ({e})")))?;
            if !matches!(url.scheme(), "http" | "https")
                || url.host().is_none()
                || url.origin().ascii_serialization() != *o
            {
                return Err(invalid(
                    &key,
                    format!(
                        "must be an exact origin such as https://viewer.example.org (scheme, host, optional port; no path or trailing slash), got `{o}`"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The HS256 secret, read from its file when configured that way; `None` when not set.
    pub fn jwt_secret(&self) -> Result<Option<Secret>, ConfigError> {
        if let Some(s) = &self.auth.jwt.secret {
            return Ok(Some(s.clone()));
        }
        let Some(path) = &self.auth.jwt.secret_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid("auth.jwt.secret_file", format!("cannot read {}: {e}", path.display())))?;
        let text = text.trim_end_matches(['\r', '\n']);
        check_hs_secret("auth.jwt.secret_file", text)?;
        Ok(Some(Secret::new(text)))
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

    /// The effective configuration as TOML, secrets redacted: `Secret`s, the user and password
    /// of every URL, and API keys printed as name and scopes only (no hash).
    pub fn to_redacted_toml(&self) -> String {
        let mut v = match toml::Value::try_from(self) {
            Ok(v) => v,
            Err(e) => return format!("# cannot render: {e}\n"),
        };
        redact_urls(&mut v);
        if let Some(keys) =
            v.get_mut("auth").and_then(|a| a.get_mut("api_keys")).and_then(|k| k.as_array_mut())
        {
            for key in keys.iter_mut().filter_map(toml::Value::as_table_mut) {
                key.remove("hash");
            }
        }
        toml::to_string_pretty(&v).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// Every string that is a URL with a user or password gets `<redacted>` in their place.
fn redact_urls(v: &mut toml::Value) {
    match v {
        toml::Value::String(s) => {
            if let Some(r) = redact_userinfo(s) {
                *s = r;
            }
        }
        toml::Value::Array(a) => a.iter_mut().for_each(redact_urls),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| redact_urls(v)),
        _ => {}
    }
}

/// `https://user:pw@host/x` → `https://<redacted>@host/x`; `None` when there is nothing to hide.
fn redact_userinfo(s: &str) -> Option<String> {
    let url = Url::parse(s).ok()?;
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let (scheme, rest) = s.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some(format!("{scheme}://<redacted>@{}", &rest[at + 1..]))
}

/// HS256 is only as strong as its secret: ask for at least 32 bytes.
fn check_hs_secret(key: &str, secret: &str) -> Result<(), ConfigError> {
    if secret.len() < 32 {
        return Err(invalid(key, "must be at least 32 bytes (e.g. `openssl rand -hex 32`)"));
    }
    Ok(())
}

fn check_http_url(key: &str, value: &str) -> Result<(), ConfigError> {
    let url = Url::parse(value).map_err(|e| invalid(key, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(key, "must be an http:// or https:// URL with a host"));
    }
    Ok(())
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
        assert_eq!(cfg.server.admin_listen, "127.0.0.1:9090");
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
        assert!(cfg.server.trusted_proxies.is_empty(), "no proxy is trusted by default");
        let list = r#"["10.244.0.0/16", "fd00::/8", "192.0.2.1"]"#;
        let cfg = Config::load_from(Some(f.path()), env(&[("ORTHANC_EDGE__SERVER__TRUSTED_PROXIES", list)]))
            .unwrap();
        assert_eq!(cfg.server.trusted_proxies, ["10.244.0.0/16", "fd00::/8", "192.0.2.1"]);
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
        assert!(err_of(PW, &[("ORTHANC_EDGE__SERVER__ADMIN_LISTEN", "127.0.0.1:8080")])
            .contains("server.admin_listen"));
        assert!(err_of(PW, &[("ORTHANC_EDGE__SERVER__SHUTDOWN_GRACE_S", "0")]).contains("shutdown_grace_s"));
        let proxies =
            err_of(PW, &[("ORTHANC_EDGE__SERVER__TRUSTED_PROXIES", r#"["10.0.0.0/8", "10.0.0.0/40"]"#)]);
        assert!(proxies.contains("server.trusted_proxies[1]"), "{proxies}");
        assert!(err_of(PW, &[("ORTHANC_EDGE__SERVER__TRUSTED_PROXIES", "10.0.0.0/8")]).contains("JSON list"));
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
    fn auth_and_cors_refusals_name_the_key() {
        let secret = "0123456789abcdef0123456789abcdef";
        assert!(err_of(PW, &[("ORTHANC_EDGE__AUTH__JWT__SECRET", "short")]).contains("auth.jwt.secret"));
        assert!(err_of(PW, &[("ORTHANC_EDGE__CORS__ALLOWED_ORIGINS", r#"["*"]"#)])
            .contains("cors.allowed_origins[0]"));
        assert!(err_of(PW, &[("ORTHANC_EDGE__CORS__ALLOWED_ORIGINS", r#"["https://viewer.example.org/"]"#)])
            .contains("exact origin"));
        assert!(err_of(
            PW,
            &[
                ("ORTHANC_EDGE__AUTH__COOKIE__SECURE", "false"),
                ("ORTHANC_EDGE__AUTH__COOKIE__SAME_SITE", "none")
            ]
        )
        .contains("auth.cookie.same_site"));
        assert!(err_of(PW, &[("ORTHANC_EDGE__AUTH__DELEGATE__URL", "nope")]).contains("auth.delegate.url"));
        // A client must not be able to send what the edge tells the validator.
        for h in ["X-Edge-Study", "x-original-uri"] {
            let list = format!(r#"["Cookie", "{h}"]"#);
            assert!(err_of(PW, &[("ORTHANC_EDGE__AUTH__DELEGATE__FORWARD_HEADERS", list.as_str())])
                .contains("auth.delegate.forward_headers[1]"));
        }
        assert!(err_of(
            PW,
            &[("ORTHANC_EDGE__AUTH__JWT__PUBLIC_KEYS", r#"[{"path":"/k.pem","alg":"HS256"}]"#)]
        )
        .contains("auth.jwt.public_keys[0].alg"));
        let f = file(PW);
        let cfg = Config::load_from(
            Some(f.path()),
            env(&[
                ("ORTHANC_EDGE__AUTH__JWT__SECRET", secret),
                (
                    "ORTHANC_EDGE__CORS__ALLOWED_ORIGINS",
                    r#"["https://viewer.example.org", "http://127.0.0.1:8000"]"#,
                ),
                ("ORTHANC_EDGE__AUTH__DELEGATE__FORWARD_HEADERS", r#"["Cookie"]"#),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.jwt_secret().unwrap().unwrap().expose(), secret);
        assert_eq!(cfg.cors.allowed_origins.len(), 2);
        assert_eq!(cfg.auth.delegate.forward_headers, vec!["Cookie"]);
        assert!(!cfg.to_redacted_toml().contains(secret));
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
    fn redacted_output_hides_url_passwords_and_key_hashes() {
        let f = file(&format!(
            "{PW}[[auth.api_keys]]\nname = \"viewer\"\nhash = \"{}\"\nscopes = [\"preview\"]\n",
            "ab".repeat(32)
        ));
        let cfg = Config::load_from(
            Some(f.path()),
            env(&[
                ("ORTHANC_EDGE__AUTH__JWT__JWKS_URL", "https://kc:jwks-pw-1@idp.test/certs?x=a@b"),
                ("ORTHANC_EDGE__AUTH__DELEGATE__URL", "http://app:validator-pw-2@app.test:8000/auth"),
                ("ORTHANC_EDGE__AUTH__SIGN__PUBLIC_URL", "https://onlyuser@edge.test"),
            ]),
        )
        .unwrap();
        let text = cfg.to_redacted_toml();
        for secret in ["jwks-pw-1", "validator-pw-2", "kc:", "app:", "onlyuser", &"ab".repeat(32), "hash"] {
            assert!(!text.contains(secret), "{secret} in\n{text}");
        }
        for kept in [
            "https://<redacted>@idp.test/certs?x=a@b",
            "http://<redacted>@app.test:8000/auth",
            "https://<redacted>@edge.test",
            "name = \"viewer\"",
            "scopes = [\"preview\"]",
        ] {
            assert!(text.contains(kept), "{kept} missing in\n{text}");
        }
        assert_eq!(redact_userinfo("http://pacs:8042"), None);
        assert_eq!(redact_userinfo("not a url"), None);
    }

    #[test]
    fn sample_config_documents_every_key() {
        // Every leaf key of the structs appears in config/default.toml (commented or not).
        let f = file(PW);
        let cfg = Config::load_from(Some(f.path()), env(&[])).unwrap();
        let value = toml::Value::try_from(&cfg).unwrap();
        fn walk(prefix: &str, v: &toml::Value, missing: &mut Vec<String>) {
            let toml::Value::Table(t) = v else { return };
            for (k, v) in t {
                let name = format!("{prefix}__{}", k.to_uppercase());
                match v {
                    // Presets are a map of names, documented as a pattern.
                    toml::Value::Table(_) if name == "ORTHANC_EDGE__PRESETS" => {}
                    toml::Value::Table(_) => walk(&name, v, missing),
                    _ if !DEFAULT_TOML.contains(&name) => missing.push(name),
                    _ => {}
                }
            }
        }
        let mut missing = vec![];
        walk("ORTHANC_EDGE", &value, &mut missing);
        assert!(missing.is_empty(), "undocumented keys: {missing:?}");
        for name in [
            "ORTHANC_EDGE__ORTHANC__PASSWORD",
            "ORTHANC_EDGE__ORTHANC__PASSWORD_FILE",
            "ORTHANC_EDGE__AUTH__JWT__SECRET",
            "ORTHANC_EDGE__AUTH__JWT__SECRET_FILE",
        ] {
            assert!(DEFAULT_TOML.contains(name), "{name}");
        }
    }
}

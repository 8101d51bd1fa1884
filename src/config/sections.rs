//! The configuration's sections as typed, plain serde data (no other module's types).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Secret;

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

/// Who turns a DICOM frame into pixels (`render.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RenderMode {
    /// Orthanc renders; the edge decodes the stored file itself where Orthanc answers 415.
    Fallback,
    /// The edge decodes every frame from the stored file; Orthanc only serves files.
    Edge,
    /// Orthanc renders everything; what it cannot decode is a 415.
    Orthanc,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RenderConfig {
    pub mode: RenderMode,
    /// A typed tile for instances without pixel data (SR, PDF, ...); false: 415 `no-pixel-data`.
    pub placeholders: bool,
    /// Largest decoded frame accepted (rows × columns × samples × bytes per sample).
    pub max_decoded_bytes: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GridConfig {
    pub thumbnail_preset: String,
    /// Thumbnails of its first series the grid page starts making as it answers (0: none).
    pub prefetch: usize,
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

/// `[cluster]`: edges that share one cache; off while `peers` and `peers_dns` are both empty.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// How the other edges reach this one's peer listener (`http://10.1.2.3:9722`).
    pub self_url: String,
    /// Every edge's peer URL, this one's included.
    pub peers: Vec<String>,
    /// `host:port` of a headless Service, re-resolved every `probe_ms`: each address is a peer.
    pub peers_dns: String,
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// The peer listener: the only socket peers talk to.
    pub listen: String,
    pub peer_timeout_ms: u64,
    pub down_ms: u64,
    pub probe_ms: u64,
    pub copy_ttl_s: u64,
}

impl ClusterConfig {
    pub fn enabled(&self) -> bool {
        !self.peers.is_empty() || !self.peers_dns.is_empty()
    }
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
    /// Scope names (`preview`, `admin`, `warm`, `mint`); `auth` parses them.
    pub scopes: Vec<String>,
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

/// A named variant (`[presets.NAME]`) as written: `transform::spec::presets_from_config` checks
/// it against `[transform]` and types `fit` and `format`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PresetConfig {
    #[serde(default)]
    pub w: Option<u32>,
    #[serde(default)]
    pub h: Option<u32>,
    #[serde(default)]
    pub fit: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub q: Option<u8>,
}

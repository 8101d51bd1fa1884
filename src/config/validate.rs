//! `Config::validate`: one `validate()` per section, each refusing what cannot work and naming the key.
//!
//! Checks that need another module's types live with that module and run at start-up too:
//! presets in `transform::spec::presets_from_config`, API key scopes and JWT algorithms in
//! `auth::check_config`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use actix_web::http::header::{HeaderName, HeaderValue};
use url::Url;

use super::secret::check_hs_secret;
use super::*;

fn nonzero(fields: &[(&str, u64)]) -> Result<(), ConfigError> {
    match fields.iter().find(|(_, value)| *value == 0) {
        Some((key, _)) => Err(invalid(key, "must be greater than 0")),
        None => Ok(()),
    }
}

fn check_http_url(key: &str, value: &str) -> Result<(), ConfigError> {
    let url = Url::parse(value).map_err(|e| invalid(key, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(key, "must be an http:// or https:// URL with a host"));
    }
    Ok(())
}

fn is_header_name(h: &str) -> bool {
    HeaderName::from_bytes(h.as_bytes()).is_ok()
}

impl Config {
    /// Refuse what cannot work, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.orthanc.validate()?;
        self.cache.validate()?;
        self.transform.validate()?;
        self.render.validate()?;
        self.grid.validate(&self.presets)?;
        self.warm.validate(&self.presets)?;
        self.cluster.validate(&self.server)?;
        self.http.validate()?;
        self.auth.validate()?;
        self.cors.validate()
    }
}

impl ServerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.listen
            .parse::<SocketAddr>()
            .map_err(|_| invalid("server.listen", "expected an address such as 127.0.0.1:8080"))?;
        self.admin_listen
            .parse::<SocketAddr>()
            .map_err(|_| invalid("server.admin_listen", "expected an address such as 127.0.0.1:9721"))?;
        if self.admin_listen == self.listen && !self.listen.ends_with(":0") {
            return Err(invalid("server.admin_listen", "must differ from server.listen"));
        }
        if self.shutdown_grace_s == 0 || self.shutdown_grace_s > 3600 {
            return Err(invalid("server.shutdown_grace_s", "must be from 1 to 3600"));
        }
        if self.drain_delay_ms > 600_000 {
            return Err(invalid("server.drain_delay_ms", "must be at most 600000 (10 minutes)"));
        }
        if self.flight_wait_ms == 0 {
            return Err(invalid("server.flight_wait_ms", "must be greater than 0"));
        }
        crate::net::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|(i, why)| invalid(&format!("server.trusted_proxies[{i}]"), why))?;
        nonzero(&[
            ("server.request_timeout_ms", self.request_timeout_ms),
            ("server.max_connections", self.max_connections as u64),
            ("server.max_uri_bytes", self.max_uri_bytes as u64),
            ("server.max_header_bytes", self.max_header_bytes as u64),
        ])
    }
}

impl OrthancConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let url = Url::parse(&self.url).map_err(|e| invalid("orthanc.url", format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(invalid("orthanc.url", "must be an http:// or https:// URL with a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "orthanc.url",
                "must not carry credentials; use orthanc.username and orthanc.password",
            ));
        }
        if self.username.trim().is_empty() {
            return Err(invalid("orthanc.username", "must not be empty"));
        }
        match (&self.password, &self.password_file) {
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
        nonzero(&[
            ("orthanc.breaker_probe_ms", self.breaker_probe_ms),
            ("orthanc.timeout_ms", self.timeout_ms),
            ("orthanc.max_concurrency", self.max_concurrency as u64),
            ("orthanc.max_metadata_concurrency", self.max_metadata_concurrency as u64),
            ("orthanc.max_body_bytes", self.max_body_bytes),
        ])?;
        if self.max_body_bytes > u64::from(u32::MAX) {
            return Err(invalid("orthanc.max_body_bytes", "must be below 4 GiB"));
        }
        Ok(())
    }
}

impl CacheConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero(&[
            ("cache.memory_bytes", self.memory_bytes),
            ("cache.disk_bytes", self.disk_bytes),
            ("cache.disk_page_cache_bytes", self.disk_page_cache_bytes),
        ])?;
        if self.dir.as_os_str().is_empty() {
            return Err(invalid("cache.dir", "must not be empty"));
        }
        Ok(())
    }
}

impl RenderConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        nonzero(&[("render.max_decoded_bytes", self.max_decoded_bytes)])
    }
}

impl TransformConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_dimension == 0 || self.max_dimension > 16383 {
            return Err(invalid("transform.max_dimension", "must be from 1 to 16383"));
        }
        if self.max_source_pixels == 0 {
            return Err(invalid("transform.max_source_pixels", "must be greater than 0"));
        }
        if !(1..=100).contains(&self.default_quality) {
            return Err(invalid("transform.default_quality", "must be from 1 to 100"));
        }
        if self.misses_per_minute > 0 && self.miss_burst == 0 {
            return Err(invalid("transform.miss_burst", "must be greater than 0"));
        }
        Ok(())
    }
}

impl GridConfig {
    fn validate(&self, presets: &BTreeMap<String, PresetConfig>) -> Result<(), ConfigError> {
        if !presets.contains_key(&self.thumbnail_preset) {
            return Err(invalid("grid.thumbnail_preset", "must name a preset in [presets]"));
        }
        Ok(())
    }
}

impl WarmConfig {
    fn validate(&self, presets: &BTreeMap<String, PresetConfig>) -> Result<(), ConfigError> {
        for name in &self.presets {
            if !presets.contains_key(name) {
                return Err(invalid("warm.presets", format!("no preset named {name:?}")));
            }
        }
        if self.max_resources == 0 || self.poll_ms == 0 {
            return Err(invalid(
                "warm.max_resources",
                "warm.max_resources and warm.poll_ms must be greater than 0",
            ));
        }
        Ok(())
    }
}

impl ClusterConfig {
    fn validate(&self, server: &ServerConfig) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        if !self.peers.is_empty() && !self.peers_dns.is_empty() {
            return Err(invalid("cluster.peers_dns", "give cluster.peers or cluster.peers_dns, not both"));
        }
        // The peer listener speaks plain HTTP (a service mesh may wrap it in mTLS).
        let check_peer_url = |key: &str, value: &str| {
            check_http_url(key, value)?;
            if !value.starts_with("http://") {
                return Err(invalid(key, "the peer listener speaks plain HTTP: give an http:// URL"));
            }
            Ok(())
        };
        check_peer_url("cluster.self_url", &self.self_url)?;
        for (i, peer) in self.peers.iter().enumerate() {
            check_peer_url(&format!("cluster.peers[{i}]"), peer)?;
        }
        let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
        if !self.peers.is_empty() && !self.peers.iter().any(|p| same(p, &self.self_url)) {
            return Err(invalid("cluster.self_url", "must be one of cluster.peers"));
        }
        if !self.peers_dns.is_empty() {
            let port = self
                .peers_dns
                .rsplit_once(':')
                .and_then(|(host, port)| (!host.is_empty()).then(|| port.parse::<u16>().ok()).flatten());
            if port.is_none() {
                return Err(invalid(
                    "cluster.peers_dns",
                    "expected host:port, e.g. orthanc-edge-headless:9722",
                ));
            }
        }
        match (&self.secret, &self.secret_file) {
            (None, None) => {
                return Err(invalid(
                    "cluster.secret",
                    "a cluster needs a shared secret (or cluster.secret_file)",
                ))
            }
            (Some(s), _) => check_hs_secret("cluster.secret", s.expose())?,
            (None, Some(_)) => {}
        }
        self.listen
            .parse::<SocketAddr>()
            .map_err(|_| invalid("cluster.listen", "expected an address such as 0.0.0.0:9722"))?;
        if (self.listen == server.listen || self.listen == server.admin_listen)
            && !self.listen.ends_with(":0")
        {
            return Err(invalid("cluster.listen", "must differ from server.listen and server.admin_listen"));
        }
        if self.peer_timeout_ms == 0 || self.down_ms == 0 || self.probe_ms == 0 {
            return Err(invalid(
                "cluster.peer_timeout_ms",
                "cluster.peer_timeout_ms, cluster.down_ms and cluster.probe_ms must be greater than 0",
            ));
        }
        Ok(())
    }
}

impl HttpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if HeaderValue::from_str(&self.cache_control).is_err() {
            return Err(invalid("http.cache_control", "is not a valid header value"));
        }
        Ok(())
    }
}

impl AuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for (i, key) in self.api_keys.iter().enumerate() {
            key.validate(&format!("auth.api_keys[{i}]"))?;
        }
        self.jwt.validate()?;
        self.cookie.validate()?;
        self.sign.validate()?;
        self.delegate.validate()?;
        self.rate_limit.validate()
    }
}

impl ApiKeyConfig {
    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() {
            return Err(invalid(&format!("{at}.name"), "must not be empty"));
        }
        if blake3::Hash::from_hex(&self.hash).is_err() {
            return Err(invalid(
                &format!("{at}.hash"),
                "must be 64 hex digits (make it with `orthanc-edge hash-key KEY`)",
            ));
        }
        if self.scopes.is_empty() {
            return Err(invalid(&format!("{at}.scopes"), "must name at least one scope"));
        }
        Ok(())
    }
}

impl JwtConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.secret.is_some() && self.secret_file.is_some() {
            return Err(invalid(
                "auth.jwt.secret",
                "set either auth.jwt.secret or auth.jwt.secret_file, not both",
            ));
        }
        if let Some(s) = &self.secret {
            check_hs_secret("auth.jwt.secret", s.expose())?;
        }
        if !self.jwks_url.is_empty() {
            check_http_url("auth.jwt.jwks_url", &self.jwks_url)?;
            if self.jwks_refresh_s == 0 {
                return Err(invalid("auth.jwt.jwks_refresh_s", "must be greater than 0"));
            }
        }
        Ok(())
    }
}

impl CookieConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty()
            || !self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        {
            return Err(invalid(
                "auth.cookie.name",
                "must be a non-empty cookie name (letters, digits, _ - .)",
            ));
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(invalid(
                "auth.cookie.same_site",
                "\"none\" needs auth.cookie.secure = true (browsers drop the cookie otherwise)",
            ));
        }
        if !self.path.starts_with('/') {
            return Err(invalid("auth.cookie.path", "must start with /"));
        }
        Ok(())
    }
}

impl SignConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.default_lifetime_s == 0 || self.default_lifetime_s > self.max_lifetime_s {
            return Err(invalid(
                "auth.sign.default_lifetime_s",
                "must be greater than 0 and at most auth.sign.max_lifetime_s",
            ));
        }
        if !self.public_url.is_empty() {
            check_http_url("auth.sign.public_url", &self.public_url)?;
        }
        Ok(())
    }
}

impl DelegateConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.url.is_empty() {
            check_http_url("auth.delegate.url", &self.url)?;
            if self.forward_headers.is_empty() {
                return Err(invalid(
                    "auth.delegate.forward_headers",
                    "must name at least one header (e.g. Cookie)",
                ));
            }
            if self.timeout_ms == 0 {
                return Err(invalid("auth.delegate.timeout_ms", "must be greater than 0"));
            }
        }
        for (i, h) in self.forward_headers.iter().enumerate() {
            if !is_header_name(h) {
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
            ("auth.delegate.studies_header", &self.studies_header),
            ("auth.delegate.user_header", &self.user_header),
        ] {
            if !h.is_empty() && !is_header_name(h) {
                return Err(invalid(key, "is not a header name"));
            }
        }
        Ok(())
    }
}

impl RateLimitConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.failures_per_minute > 0 && self.burst == 0 {
            return Err(invalid("auth.rate_limit.burst", "must be greater than 0"));
        }
        Ok(())
    }
}

impl CorsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for (i, o) in self.allowed_origins.iter().enumerate() {
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
}

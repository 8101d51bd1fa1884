//! Typed configuration: built-in defaults (config/default.toml) ← file ← environment, validated before start.
//!
//! `sections` holds the structs, `env` the environment mapping, `secret` secrets and their files,
//! `validate` one check per section. Config is plain data: the modules that own a value's meaning
//! (presets, scopes, JWT algorithms) check it when they are built from it.

mod env;
mod secret;
mod sections;
mod validate;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use url::Url;

pub use env::ENV_PREFIX;
pub use secret::Secret;
pub use sections::*;

/// The documented defaults; also the base layer of every load.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub orthanc: OrthancConfig,
    pub cache: CacheConfig,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub transform: TransformConfig,
    pub render: RenderConfig,
    pub grid: GridConfig,
    pub warm: WarmConfig,
    pub cluster: ClusterConfig,
    #[serde(default)]
    pub presets: BTreeMap<String, PresetConfig>,
    pub cors: CorsConfig,
    pub log: LogConfig,
}

/// A configuration problem, worded for the operator and naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The refusal of `key`: "config key `key`: why".
pub fn invalid(key: &str, why: impl fmt::Display) -> ConfigError {
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
        let builder = env::with_environment(builder, env)?;
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
    fn cluster_settings_are_checked_by_name() {
        let f = file(PW);
        let load = |pairs: &[(&str, &str)]| Config::load_from(Some(f.path()), env(pairs));
        let secret = ("ORTHANC_EDGE__CLUSTER__SECRET", "0123456789abcdef0123456789abcdef");
        let peers = ("ORTHANC_EDGE__CLUSTER__PEERS", r#"["http://10.0.0.1:9722", "http://10.0.0.2:9722/"]"#);
        let me = ("ORTHANC_EDGE__CLUSTER__SELF_URL", "http://10.0.0.2:9722");
        let on = load(&[secret, peers, me]).unwrap();
        assert!(on.cluster.enabled());
        assert!(!load(&[]).unwrap().cluster.enabled(), "off by default");
        let refused = |pairs: &[(&str, &str)], key: &str| {
            let e = load(pairs).unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        };
        refused(&[peers, me], "cluster.secret");
        refused(&[("ORTHANC_EDGE__CLUSTER__SECRET", "short"), peers, me], "cluster.secret");
        refused(
            &[secret, peers, ("ORTHANC_EDGE__CLUSTER__SELF_URL", "http://10.0.0.3:9722")],
            "cluster.self_url",
        );
        refused(
            &[secret, peers, me, ("ORTHANC_EDGE__CLUSTER__PEERS_DNS", "edges:9722")],
            "cluster.peers_dns",
        );
        refused(&[secret, me, ("ORTHANC_EDGE__CLUSTER__PEERS_DNS", "edges")], "cluster.peers_dns");
        refused(&[secret, peers, me, ("ORTHANC_EDGE__CLUSTER__LISTEN", "127.0.0.1:8080")], "cluster.listen");
        // The peer listener speaks plain HTTP.
        let tls = ("ORTHANC_EDGE__CLUSTER__PEERS", r#"["https://10.0.0.1:9722", "http://10.0.0.2:9722"]"#);
        refused(&[secret, tls, me], "cluster.peers[0]");
    }

    #[test]
    fn defaults_plus_password_load() {
        let f = file(PW);
        let cfg = Config::load_from(Some(f.path()), env(&[])).unwrap();
        assert_eq!(cfg.orthanc.max_concurrency, 4);
        assert_eq!(cfg.http.cache_control, "private, max-age=86400");
        assert_eq!(cfg.server.listen, "127.0.0.1:8080");
        assert_eq!(cfg.server.admin_listen, "127.0.0.1:9721");
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
        let scopes = crate::auth::scopes_of(&cfg.auth.api_keys[0], "auth.api_keys[0]").unwrap();
        assert_eq!(scopes, vec![crate::auth::Scope::Preview, crate::auth::Scope::Admin]);
    }

    #[test]
    fn an_unknown_scope_lists_the_scopes() {
        let f = file(PW);
        let hash = blake3::hash(b"k").to_hex().to_string();
        let json = format!(r#"[{{"name":"a","hash":"{hash}","scopes":["previews"]}}]"#);
        let cfg = Config::load_from(Some(f.path()), env(&[("ORTHANC_EDGE__AUTH__API_KEYS", &json)])).unwrap();
        let e = crate::auth::check_config(&cfg).unwrap_err().to_string();
        assert!(e.contains("auth.api_keys[0].scopes[0]"), "{e}");
        assert!(e.contains(r#"unknown scope "previews": the scopes are preview, admin, warm, mint"#), "{e}");
        let forbidden = crate::auth::AuthError::Forbidden { scope: crate::auth::Scope::Warm }.to_string();
        assert!(forbidden.contains("`warm`"), "scope names as in config: {forbidden}");
    }

    fn err_of(text: &str, pairs: &[(&str, &str)]) -> String {
        let f = file(text);
        Config::load_from(Some(f.path()), env(pairs)).unwrap_err().to_string()
    }

    /// The refusal of a config that loads but that its owners (auth, transform) refuse at start-up.
    fn start_err_of(text: &str, pairs: &[(&str, &str)]) -> String {
        let f = file(text);
        let cfg = Config::load_from(Some(f.path()), env(pairs)).unwrap();
        let refused = crate::auth::check_config(&cfg)
            .and_then(|()| crate::transform::spec::presets_from_config(&cfg).map(drop));
        refused.unwrap_err().to_string()
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
        let root = format!(
            "[orthanc]\npassword=\"p\"\n[[auth.api_keys]]\nname=\"a\"\nhash=\"{}\"\nscopes=[\"root\"]\n",
            "00".repeat(32)
        );
        assert!(start_err_of(&root, &[]).contains("root"));
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
        let e = start_err_of("[orthanc]\npassword=\"p\"\n[presets.big]\nw=99999\n", &[]);
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
        assert!(start_err_of(
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
            "ORTHANC_EDGE__CLUSTER__SECRET",
            "ORTHANC_EDGE__CLUSTER__SECRET_FILE",
        ] {
            assert!(DEFAULT_TOML.contains(name), "{name}");
        }
    }
}

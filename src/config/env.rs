//! `ORTHANC_EDGE__SECTION__KEY` environment overrides: scalars by name, lists as JSON.

use std::collections::HashMap;

use config::builder::{ConfigBuilder, DefaultState};

use super::{ApiKeyConfig, ConfigError};

/// Prefix of environment overrides: `ORTHANC_EDGE__SECTION__KEY`.
pub const ENV_PREFIX: &str = "ORTHANC_EDGE";
/// List-valued keys, given in the environment as JSON lists.
const JSON_LIST_VARS: &[(&str, &str)] = &[
    ("AUTH__JWT__PUBLIC_KEYS", "auth.jwt.public_keys"),
    ("AUTH__DELEGATE__FORWARD_HEADERS", "auth.delegate.forward_headers"),
    ("CORS__ALLOWED_ORIGINS", "cors.allowed_origins"),
    ("SERVER__TRUSTED_PROXIES", "server.trusted_proxies"),
    ("CLUSTER__PEERS", "cluster.peers"),
];

/// `builder` with the `ORTHANC_EDGE__*` variables of `env` layered on top.
pub(super) fn with_environment(
    mut builder: ConfigBuilder<DefaultState>,
    mut env: HashMap<String, String>,
) -> Result<ConfigBuilder<DefaultState>, ConfigError> {
    // Lists do not fit in one env var the usual way: take them as JSON.
    let keys_var = format!("{ENV_PREFIX}__AUTH__API_KEYS");
    env.retain(|k, _| k.starts_with(&format!("{ENV_PREFIX}__")));
    if let Some(json) = env.remove(&keys_var) {
        let keys: Vec<ApiKeyConfig> = serde_json::from_str(&json).map_err(|e| {
            ConfigError(format!("environment {keys_var}: not a JSON list of {{name, hash, scopes}}: {e}"))
        })?;
        let value =
            serde_json::to_value(keys).map_err(|e| ConfigError(format!("environment {keys_var}: {e}")))?;
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
            builder =
                builder.set_override(*key, json_to_config(value)).map_err(|e| ConfigError(e.to_string()))?;
        }
    }
    Ok(builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("warm.presets")
            .source(Some(env)),
    ))
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

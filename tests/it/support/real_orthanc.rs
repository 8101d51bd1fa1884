//! The real Orthanc CI starts (ORTHANC_EDGE_IT_*), its manifest, and edge configs for it.

use std::path::Path;
use std::time::Duration;

use orthanc_edge::config::Config;

use super::{client, test_config, TestEdge, TestEdgeBuilder};

/// The real Orthanc of scripts/ci/it-orthanc.sh, if the environment names one.
pub struct RealOrthanc {
    pub url: String,
    pub user: String,
    pub password: String,
    pub manifest: serde_json::Value,
}

impl RealOrthanc {
    /// `None` (test skipped) without ORTHANC_EDGE_IT_*; a failure if ORTHANC_EDGE_IT_REQUIRED=1.
    pub fn from_env() -> Option<Self> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        match (
            var("ORTHANC_EDGE_IT_URL"),
            var("ORTHANC_EDGE_IT_USER"),
            var("ORTHANC_EDGE_IT_PASSWORD"),
            var("ORTHANC_EDGE_IT_MANIFEST"),
        ) {
            (Some(url), Some(user), Some(password), Some(m)) => {
                let manifest = serde_json::from_str(&std::fs::read_to_string(m).unwrap()).unwrap();
                Some(Self { url, user, password, manifest })
            }
            _ => {
                assert!(var("ORTHANC_EDGE_IT_REQUIRED").as_deref() != Some("1"), "ORTHANC_EDGE_IT_* not set");
                eprintln!("skipped: no real Orthanc (run scripts/test.sh)");
                None
            }
        }
    }

    pub fn instance(&self, name: &str, field: &str) -> String {
        self.manifest["instances"][name][field].as_str().unwrap().to_owned()
    }

    /// Edge config for this Orthanc (or a proxy in front of it at `url`).
    pub fn config(&self, url: &str, cache_dir: &Path, env: &[(&str, &str)]) -> Config {
        let mut all = self.credentials().to_vec();
        all.extend_from_slice(env);
        test_config(url, cache_dir, &all)
    }

    /// An edge on this Orthanc (or a proxy in front of it at `url`), to be set up further.
    pub fn edge(&self, url: &str) -> TestEdgeBuilder {
        TestEdge::builder(url).envs(&self.credentials())
    }

    /// The edge settings that reach this Orthanc: its service account, a 10 s timeout.
    fn credentials(&self) -> [(&str, &str); 3] {
        [
            ("ORTHANC_EDGE__ORTHANC__USERNAME", self.user.as_str()),
            ("ORTHANC_EDGE__ORTHANC__PASSWORD", self.password.as_str()),
            ("ORTHANC_EDGE__ORTHANC__TIMEOUT_MS", "10000"),
        ]
    }

    /// Orthanc's own answer for `path` (the reference an edge answer must equal), from a
    /// blocking test.
    pub fn direct_blocking(&self, path: &str, accept: &str) -> (u16, Vec<u8>) {
        let resp = reqwest::blocking::Client::builder()
            .no_gzip()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
            .get(format!("{}{path}", self.url))
            .basic_auth(&self.user, Some(&self.password))
            .header("Accept", accept)
            .header("Accept-Encoding", "identity")
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.bytes().unwrap().to_vec())
    }

    /// GET a JSON resource from Orthanc itself.
    pub async fn json(&self, path: &str) -> serde_json::Value {
        client()
            .get(format!("{}{path}", self.url))
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

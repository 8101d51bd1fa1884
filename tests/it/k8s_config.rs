//! Every edge.toml under k8s/ is a configuration the edge accepts (unknown keys are refused at start),
//! alone and with the cluster environment the StatefulSet gives each pod.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use orthanc_edge::config::Config;

fn edge_tomls(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            edge_tomls(&p, out);
        } else if p.file_name().is_some_and(|n| n == "edge.toml") {
            out.push(p);
        }
    }
}

#[test]
fn k8s_configs_load_and_validate() {
    let mut files = Vec::new();
    edge_tomls(&Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s"), &mut files);
    assert!(files.len() >= 2, "base and example overlay: {files:?}");
    for f in files {
        let cfg = Config::load_from(Some(&f), HashMap::new())
            .unwrap_or_else(|e| panic!("{} is refused: {e}", f.display()));
        assert!(cfg.orthanc.password.is_none(), "{}: no inline password in a ConfigMap", f.display());
        assert!(cfg.orthanc.password_file.is_some(), "{}: password from the mounted Secret", f.display());
        assert!(!cfg.server.admin_listen.starts_with("127."), "{}: the scraper must reach it", f.display());

        // As a pod runs it: statefulset.yaml sets the per-pod cluster keys in the environment
        // (scripts/ci/k8s_consistency.py checks their values against the manifests).
        let pod_env: HashMap<String, String> = [
            ("ORTHANC_EDGE__CLUSTER__SELF_URL", "http://10.244.1.7:9722"),
            ("ORTHANC_EDGE__CLUSTER__PEERS_DNS", "orthanc-edge-headless.pacs.svc:9722"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let cfg = Config::load_from(Some(&f), pod_env)
            .unwrap_or_else(|e| panic!("{} with the pod's cluster env is refused: {e}", f.display()));
        assert!(cfg.cluster.enabled(), "{}: the pods form a cluster", f.display());
        assert!(cfg.cluster.secret.is_none(), "{}: no inline cluster secret in a ConfigMap", f.display());
        assert!(cfg.cluster.secret_file.is_some(), "{}: cluster secret from the mounted Secret", f.display());
        assert!(cfg.cluster.listen.ends_with(":9722"), "{}: cluster.listen on the peer port", f.display());
        assert!(!cfg.cluster.listen.starts_with("127."), "{}: the other pods must reach it", f.display());
    }
}

//! Every edge.toml under k8s/ is a configuration the edge accepts (unknown keys are refused at start).

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
    }
}

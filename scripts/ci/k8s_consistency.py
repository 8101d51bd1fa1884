#!/usr/bin/env python3
"""Checks a rendered orthanc-edge kustomization for what JSON schemas cannot see.

Usage: k8s_consistency.py RENDERED.yaml   (exit 1 with one line per problem)
"""
import base64
import json
import re
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
# Keys default.toml only shows in comments (either one of a pair is set).
OPTIONAL_KEYS = {("orthanc", "password"), ("orthanc", "password_file"), ("auth", "jwt", "secret"),
                 ("auth", "jwt", "secret_file"), ("cluster", "secret"), ("cluster", "secret_file")}
ENV_PREFIX = "ORTHANC_EDGE__"
# `$(NAME)`: a reference Kubernetes expands to an earlier env var of the same container.
ENV_REF = re.compile(r"\$\((\w+)\)")


def quantity(q):
    q = str(q)
    for suffix, mult in UNITS.items():
        if q.endswith(suffix):
            return float(q[: -len(suffix)]) * mult
    return float(q)


def known_key(defaults, path):
    """Is `path` (a tuple of lower-case names) a key the edge accepts?"""
    if path in OPTIONAL_KEYS or (path[0] == "presets" and len(path) == 3):
        return True
    node = defaults
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def typed(default, text):
    """An environment string as the edge reads it for a key whose default is `default`."""
    if isinstance(default, bool):
        return text.lower() == "true"
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    if isinstance(default, list):
        return json.loads(text)
    return text


def selects(selector, labels):
    """Does a matchLabels selector pick pods with `labels`?"""
    match = (selector or {}).get("matchLabels", {})
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def rule_ports(rule, port_name, port_number):
    """Does a NetworkPolicy rule's port list cover the container port `port_name`/`port_number`?"""
    ports = rule.get("ports")
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != "TCP":
            continue
        if "port" not in p:
            return True
        if p["port"] == port_name or p["port"] == port_number:
            return True
        if isinstance(p["port"], int) and p["port"] <= port_number <= p.get("endPort", p["port"]):
            return True
    return False


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
            need(known_key(defaults, (section, key)) or section == "presets",
                 f"edge.toml: unknown key {section}.{key}")
    merged = {s: {**defaults.get(s, {}), **cfg.get(s, {})} for s in defaults}

    # The container's environment: ORTHANC_EDGE__SECTION__KEY overrides edge.toml (the edge refuses
    # unknown names too), and `$(NAME)` references must name an env var defined before them.
    env = edge.get("env", [])
    env_index = {e["name"]: i for i, e in enumerate(env)}
    env_field = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in env}
    env_literal = {}
    for i, e in enumerate(env):
        for ref in ENV_REF.findall(e.get("value", "")):
            need(env_index.get(ref, len(env)) < i,
                 f"env {e['name']}: $({ref}) is not an env var defined before it (Kubernetes leaves it as is)")
        if not e["name"].startswith(ENV_PREFIX):
            continue
        key = tuple(e["name"][len(ENV_PREFIX):].lower().split("__"))
        need(known_key(defaults, key), f"env {e['name']}: the edge knows no key {'.'.join(key)}")
        if "value" in e:
            env_literal[key] = e["value"]
            if len(key) == 2 and key[0] in merged:
                try:
                    merged[key[0]][key[1]] = typed(defaults[key[0]].get(key[1], ""), e["value"])
                except ValueError:
                    need(False, f"env {e['name']}: {e['value']!r} is not a {key[1]} value")

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

    cluster = merged["cluster"]
    clustered = bool(cluster["peers"] or cluster["peers_dns"])
    if clustered:
        problems += check_cluster(by_kind, sts, pod, edge, cfg, cluster, ports, env_field, env_literal)

    ing = by_kind["Ingress"][0]["metadata"].get("annotations", {})
    hash_by = ing.get("nginx.ingress.kubernetes.io/upstream-hash-by")
    if not clustered:
        # Without the cluster only the Ingress keeps the pods' caches from overlapping.
        need(hash_by is not None, "Ingress lacks upstream-hash-by (and the edges are not a cluster)")
    if hash_by is not None:
        need(hash_by.startswith("$") and not re.search(r"request_uri|args|query_string", hash_by),
             f"Ingress upstream-hash-by {hash_by!r}: hash the path ($uri), not the query")
    np = by_kind["NetworkPolicy"][0]["spec"]
    need(set(np.get("policyTypes", [])) == {"Ingress", "Egress"}, "NetworkPolicy must limit both ways")
    hpa = by_kind["HorizontalPodAutoscaler"][0]["spec"]
    need(hpa["scaleTargetRef"]["kind"] == "StatefulSet", "HPA must target the StatefulSet")
    return problems


def check_cluster(by_kind, sts, pod, edge, cfg, cluster, ports, env_field, env_literal):
    """[cluster] against the objects: the peer port declared the same way in the container, the
    headless Service, the NetworkPolicy; self_url and peers_dns as the other pods will see them;
    the shared secret mounted from a Secret as a file."""
    problems = []

    def need(cond, msg):
        if not cond:
            problems.append(msg)

    labels = sts["spec"]["template"]["metadata"].get("labels", {})
    peer = ports.get("peer")
    need(peer is not None, "cluster on but the edge container declares no port named `peer`")
    if peer is None:
        return problems
    need(not (cluster["peers"] and cluster["peers_dns"]), "cluster.peers and cluster.peers_dns are exclusive")
    listen = cluster["listen"]
    need(listen.endswith(f":{peer}"), f"cluster.listen {listen!r}: port != containerPort peer {peer}")
    need(not re.match(r"(127\.|localhost|\[::1\])", listen), f"cluster.listen {listen!r}: other pods cannot reach it")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        port = edge.get(probe, {}).get("httpGet", {}).get("port")
        need(port not in ("peer", peer), f"{probe} on the peer port: /peer/v1/* needs the cluster secret")

    # self_url: the address the others dial, with the peer port; with peers_dns it must be the pod
    # IP, the form the headless Service's records take (http://ADDRESS:port).
    self_url = cluster["self_url"]
    m = re.fullmatch(r"https?://(\[?)([^/\]]+?)(\]?):(\d+)/?", self_url)
    need(m is not None, f"cluster.self_url {self_url!r}: expected http://HOST:PORT")
    if m:
        need(int(m.group(4)) == peer, f"cluster.self_url {self_url!r}: port != containerPort peer {peer}")
        if cluster["peers_dns"]:
            ref = ENV_REF.fullmatch(m.group(2))
            need(ref is not None and env_field.get(ref.group(1)) == "status.podIP",
                 f"cluster.self_url {self_url!r}: must be $(VAR) of an env var from fieldRef status.podIP,"
                 " as the peers resolve it from peers_dns")

    # peers_dns: a headless Service of ready edge pods, with a port that reaches `peer`.
    if cluster["peers_dns"]:
        host, _, port = cluster["peers_dns"].rpartition(":")
        labels_dns = host.rstrip(".").split(".")
        svc = next((s for s in by_kind["Service"] if s["metadata"]["name"] == labels_dns[0]), None)
        need(svc is not None, f"cluster.peers_dns {cluster['peers_dns']!r}: no Service {labels_dns[0]}")
        if svc:
            spec = svc["spec"]
            need(spec.get("clusterIP") == "None", f"Service {labels_dns[0]} (peers_dns) must be headless")
            need(spec.get("publishNotReadyAddresses") is not True,
                 f"Service {labels_dns[0]} (peers_dns) must not publish unready pods")
            need(selects({"matchLabels": spec.get("selector", {})}, labels),
                 f"Service {labels_dns[0]} (peers_dns) does not select the edge pods")
            sp = next((p for p in spec.get("ports", []) if str(p["port"]) == port), None)
            need(sp is not None and sp.get("targetPort", sp["port"]) in ("peer", peer),
                 f"Service {labels_dns[0]} has no port {port} targeting the peer port")
            need(sp is None or sp.get("name") == "peer", f"Service {labels_dns[0]} port {port} is not named `peer`")
        if len(labels_dns) > 1:
            ns = ENV_REF.fullmatch(labels_dns[1])
            if ns:
                need(env_field.get(ns.group(1)) == "metadata.namespace",
                     f"cluster.peers_dns: $({ns.group(1)}) is not from fieldRef metadata.namespace")
            elif svc and "namespace" in svc["metadata"]:
                need(labels_dns[1] == svc["metadata"]["namespace"], "cluster.peers_dns names another namespace")
    for svc in by_kind["Service"]:
        for sp in svc["spec"].get("ports", []):
            if sp.get("targetPort") in ("peer", peer) and svc["spec"].get("clusterIP") != "None":
                need(False, f"Service {svc['metadata']['name']} exposes the peer port on a virtual IP")

    # The secret: from a Secret mounted as a file, never inline in the ConfigMap or the env.
    need("secret" not in cfg.get("cluster", {}), "inline cluster.secret in a ConfigMap")
    need(("cluster", "secret") not in env_literal, "inline ORTHANC_EDGE__CLUSTER__SECRET in the pod spec")
    secret_file = cluster.get("secret_file") or env_literal.get(("cluster", "secret_file"), "")
    need(bool(secret_file), "cluster on without cluster.secret_file")
    mount = next((m for m in edge["volumeMounts"] if secret_file.startswith(m["mountPath"].rstrip("/") + "/")), None)
    vol = mount and next((v for v in pod["volumes"] if v["name"] == mount["name"]), None)
    need(vol is not None and "secret" in vol, f"cluster.secret_file {secret_file}: not inside a mounted Secret")
    if vol and "secret" in vol:
        sec = vol["secret"]
        need(sec["secretName"].startswith("orthanc-edge-cluster"),
             f"cluster.secret_file is in Secret {sec['secretName']}, not orthanc-edge-cluster")
        need(sec.get("optional") is not True, "the cluster Secret must not be optional")
        rel = secret_file[len(mount["mountPath"].rstrip("/")) + 1:]
        items = {i["path"]: i["key"] for i in sec.get("items", [])}
        key = items.get(rel, rel if not items else None)
        need(key is not None, f"cluster.secret_file {secret_file}: no item of the Secret has that path")
        rendered = next((s for s in by_kind.get("Secret", []) if s["metadata"]["name"] == sec["secretName"]), None)
        if rendered and key:
            data = rendered.get("data", {})
            value = base64.b64decode(data[key]) if key in data else rendered.get("stringData", {}).get(key, "").encode()
            need(len(value.rstrip(b"\r\n")) >= 32, f"Secret {sec['secretName']} key {key}: under 32 bytes")

    # NetworkPolicy: the peer port open to the edge pods and nobody else, both ways.
    for np in by_kind["NetworkPolicy"]:
        spec = np["spec"]
        if not selects(spec.get("podSelector"), labels):
            continue
        name = np["metadata"]["name"]
        edge_peer = lambda peers: bool(peers) and all(
            set(f) == {"podSelector"} and selects(f["podSelector"], labels) for f in peers)
        rules = [r for r in spec.get("ingress", []) if rule_ports(r, "peer", peer)]
        if "Ingress" in spec.get("policyTypes", []):
            need(any(edge_peer(r.get("from")) for r in rules),
                 f"NetworkPolicy {name}: no ingress rule admits the edge pods to port peer ({peer})")
            for r in rules:
                need(edge_peer(r.get("from")), f"NetworkPolicy {name}: port peer ({peer}) open beyond the edge pods")
        if "Egress" in spec.get("policyTypes", []):
            need(any(edge_peer(r.get("to")) for r in spec.get("egress", []) if rule_ports(r, "peer", peer)),
                 f"NetworkPolicy {name}: no egress rule lets the edges reach each other's port {peer}")
    return problems


if __name__ == "__main__":
    found = main(sys.argv[1])
    for p in found:
        print(f"k8s_consistency.py: {sys.argv[1]}: {p}", file=sys.stderr)
    sys.exit(1 if found else 0)

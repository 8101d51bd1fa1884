#!/usr/bin/env python3
"""Warm-up benchmark driver (scripts/bench/warm.sh): Orthanc's own preview rate at its concurrency
limit, then per render mode an edge warm-up job over the same study and one round of grid
thumbnails, each with the CPU seconds Orthanc spends (from /proc). One JSON file per step in DIR;
`report` prints the Markdown tables.

  warm_bench.py orthanc DIR --orthanc URL --user U --password P --manifest M --orthanc-pid PID
  warm_bench.py warm DIR --mode MODE --edge URL --warm-key K --preview-key K --manifest M \
      --orthanc-pid PID --edge-pid PID
  warm_bench.py report DIR --modes "MODE..."
"""
import argparse
import base64
import concurrent.futures as cf
import json
import os
import time
import urllib.error
import urllib.request

CHROME_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
# The goal of issue 14 for render.mode = edge.
GOAL_RATE, GOAL_CPU = 2.0, 0.2


def fetch(url, headers, data=None, method=None):
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=120) as resp:
        return resp.status, dict(resp.headers), resp.read()


def cpu_s(pid):
    """User + system CPU seconds of a process so far (0 when no pid was given)."""
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU seconds Orthanc and the edge spend inside a `with` block."""

    def __init__(self, orthanc_pid, edge_pid=0):
        self.pids = (orthanc_pid, edge_pid)

    def __enter__(self):
        self.start = [cpu_s(p) for p in self.pids]
        return self

    def __exit__(self, *exc):
        self.orthanc, self.edge = (cpu_s(p) - s for p, s in zip(self.pids, self.start))


def ct_instances(manifest):
    return [v["instance"] for k, v in manifest["instances"].items() if k.startswith("ctseries_")]


def orthanc_rate(args, instances, accept):
    auth = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
    headers = {"Authorization": auth, "Accept": accept, "Accept-Encoding": "identity"}

    def one(i):
        return fetch(f"{args.orthanc}/instances/{i}/preview", headers)[0]

    start = time.perf_counter()
    with cf.ThreadPoolExecutor(args.concurrency) as pool:
        statuses = list(pool.map(one, instances))
    elapsed = time.perf_counter() - start
    ok = sum(1 for s in statuses if s == 200)
    return ok / elapsed, elapsed


def cmd_orthanc(args, manifest):
    """Orthanc's `/preview` (JPEG, then PNG) over the CT slices, `concurrency` at once."""
    instances = ct_instances(manifest)
    rows = []
    for fmt in ("jpeg", "png"):
        with Cpu(args.orthanc_pid) as cpu:
            rate, seconds = orthanc_rate(args, instances, f"image/{fmt}")
        rows.append({"format": fmt.upper(), "rate": rate, "seconds": seconds,
                     "orthanc_cpu_ms": cpu.orthanc / len(instances) * 1000})
    return {"concurrency": args.concurrency, "instances": len(instances), "rows": rows}


def cmd_warm(args, manifest):
    """An edge warm-up job of the whole study (preset thumb), then one round of grid thumbnails."""
    study = manifest["study"]
    body = json.dumps({"studies": [study], "presets": ["thumb"]}).encode()
    h = {"X-Api-Key": args.warm_key, "Content-Type": "application/json"}
    with Cpu(args.orthanc_pid, args.edge_pid) as cpu:
        _, _, out = fetch(f"{args.edge}/warm", h, body, "POST")
        job = json.loads(out)["id"]
        deadline = time.monotonic() + args.timeout
        while True:
            time.sleep(0.05)
            _, _, out = fetch(f"{args.edge}/warm/{job}", h)
            p = json.loads(out)
            if p["state"] in ("done", "cancelled"):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"warm-up job {job} not done after {args.timeout} s: {p}")
    total = len(manifest["instances"])

    hp = {"X-Api-Key": args.preview_key, "Accept": CHROME_ACCEPT}
    _, _, out = fetch(f"{args.edge}/studies/{study}/grid.json", hp)
    grid = json.loads(out)
    urls = [args.edge + s["thumbnail"] for s in grid["series"] if s.get("thumbnail")]

    def thumb(url):
        try:
            status, headers, _ = fetch(url, hp)
            return status, headers.get("X-Cache") or headers.get("x-cache")
        except urllib.error.HTTPError as e:
            return e.code, "-"

    start = time.perf_counter()
    with cf.ThreadPoolExecutor(6) as pool:  # a browser's connections per host
        results = list(pool.map(thumb, urls))
    grid_ms = (time.perf_counter() - start) * 1000
    return {
        "mode": args.mode, "instances": total, "ct": len(ct_instances(manifest)), "series": len(grid["series"]),
        "done": p["done"], "skipped": p["skipped"], "failed": p["failed"], "seconds": p["elapsed_s"],
        "rate": total / p["elapsed_s"], "orthanc_cpu_ms": cpu.orthanc / total * 1000,
        "edge_cpu_ms": cpu.edge / total * 1000, "thumbs": len(urls), "grid_ms": grid_ms,
        "hits": sum(1 for s, c in results if s == 200 and c and c.startswith("hit-")),
        "statuses": sorted(set(s for s, _ in results)),
    }


def cmd_report(args):
    ref = json.load(open(os.path.join(args.dir, "orthanc.json")))
    best = max(ref["rows"], key=lambda r: r["rate"])
    runs = []
    for mode in args.modes.split():
        path = os.path.join(args.dir, f"warm-{mode}.json")
        runs.append(json.load(open(path)) if os.path.exists(path) else {"mode": mode, "unavailable": True})

    print(f"Orthanc's own `/preview` over {ref['instances']} CT slices, {ref['concurrency']} concurrent "
          f"(its render limit); the reference below is the faster format, {best['format']}:\n")
    print("| Orthanc `/preview` | instances/s | seconds | Orthanc CPU ms/instance |")
    print("|---|---|---|---|")
    for r in ref["rows"]:
        print(f"| {r['format']} | {r['rate']:.1f} | {r['seconds']:.2f} | {r['orthanc_cpu_ms']:.2f} |")

    print("\nEdge warm-up job (preset `thumb`: WebP + JPEG), a fresh edge per render.mode:\n")
    print("| render.mode | images/s | × Orthanc's rate | Orthanc CPU ms/instance | × `/preview`'s CPU "
          "| edge CPU ms/instance | job | grid after warm-up |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        if r.get("unavailable"):
            print(f"| {r['mode']} | unavailable (this edge has no such render.mode) | | | | | | |")
            continue
        print(f"| {r['mode']} | {r['rate']:.1f} | {r['rate'] / best['rate']:.2f}× | {r['orthanc_cpu_ms']:.2f} "
              f"| {r['orthanc_cpu_ms'] / best['orthanc_cpu_ms']:.2f}× | {r['edge_cpu_ms']:.2f} "
              f"| {r['instances']} instances in {r['seconds']:.2f} s ({r['done']} done, {r['skipped']} skipped, "
              f"{r['failed']} failed) | {r['hits']}/{r['thumbs']} hits in {r['grid_ms']:.0f} ms, "
              f"statuses {r['statuses']} |")
    edge = next((r for r in runs if r["mode"] == "edge" and not r.get("unavailable")), None)
    goal = f"goal (render.mode = edge): ≥ {GOAL_RATE:g}× Orthanc's rate, Orthanc CPU ≤ {GOAL_CPU:g}× `/preview`'s"
    if edge is None:
        print(f"\n{goal}: not measured (no edge in mode edge)")
    else:
        rate, cpu = edge["rate"] / best["rate"], edge["orthanc_cpu_ms"] / best["orthanc_cpu_ms"]
        met = "met" if rate >= GOAL_RATE and cpu <= GOAL_CPU and not edge["failed"] else "NOT met"
        failed = f" ({edge['failed']} images failed: not a valid run)" if edge["failed"] else ""
        print(f"\n{goal}: **{rate:.2f}×** rate, **{cpu:.2f}×** CPU: {met}{failed}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("orthanc")
    w = sub.add_parser("warm")
    for p in (o, w):
        p.add_argument("dir")
        p.add_argument("--manifest", required=True)
        p.add_argument("--orthanc-pid", type=int, default=0)
    for a in ("orthanc", "user", "password"):
        o.add_argument("--" + a, required=True)
    o.add_argument("--concurrency", type=int, default=4)
    for a in ("mode", "edge", "warm-key", "preview-key"):
        w.add_argument("--" + a, required=True)
    w.add_argument("--edge-pid", type=int, default=0)
    w.add_argument("--timeout", type=float, default=600, help="seconds the warm-up job may take")
    r = sub.add_parser("report")
    r.add_argument("dir")
    r.add_argument("--modes", required=True)
    args = ap.parse_args()
    if args.cmd == "report":
        return cmd_report(args)
    manifest = json.load(open(args.manifest))
    name, result = ("orthanc", cmd_orthanc(args, manifest)) if args.cmd == "orthanc" else \
        (f"warm-{args.mode}", cmd_warm(args, manifest))
    with open(os.path.join(args.dir, f"{name}.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Warm-up benchmark driver (scripts/bench/warm.sh): Orthanc's own preview rate at its concurrency
limit vs an edge warm-up job over the same study, then one round of grid thumbnails.
Prints a Markdown table."""
import argparse
import base64
import concurrent.futures as cf
import json
import os
import time
import urllib.request

CHROME_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


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

    def __init__(self, args):
        self.pids = (args.orthanc_pid, args.edge_pid)

    def __enter__(self):
        self.start = [cpu_s(p) for p in self.pids]
        return self

    def __exit__(self, *exc):
        self.orthanc, self.edge = (cpu_s(p) - s for p, s in zip(self.pids, self.start))


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


def main():
    ap = argparse.ArgumentParser()
    for a in ("edge", "warm-key", "preview-key", "orthanc", "user", "password", "manifest"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--orthanc-pid", type=int, default=0)
    ap.add_argument("--edge-pid", type=int, default=0)
    args = ap.parse_args()
    manifest = json.load(open(args.manifest))
    study = manifest["study"]
    instances = [v["instance"] for k, v in manifest["instances"].items() if k.startswith("ctseries_")]

    with Cpu(args) as jpeg_cpu:
        jpeg_rate, jpeg_s = orthanc_rate(args, instances, "image/jpeg")
    with Cpu(args) as png_cpu:
        png_rate, png_s = orthanc_rate(args, instances, "image/png")

    body = json.dumps({"studies": [study], "presets": ["thumb"]}).encode()
    h = {"X-Api-Key": args.warm_key, "Content-Type": "application/json"}
    with Cpu(args) as warm_cpu:
        _, _, out = fetch(f"{args.edge}/warm", h, body, "POST")
        job = json.loads(out)["id"]
        while True:
            time.sleep(0.05)
            _, _, out = fetch(f"{args.edge}/warm/{job}", h)
            p = json.loads(out)
            if p["state"] in ("done", "cancelled"):
                break
    all_instances = len(manifest["instances"])
    edge_rate = all_instances / p["elapsed_s"]

    hp = {"X-Api-Key": args.preview_key, "Accept": CHROME_ACCEPT}
    _, _, out = fetch(f"{args.edge}/studies/{study}/series", hp)
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
    hits = sum(1 for s, c in results if s == 200 and c and c.startswith("hit-"))

    print(f"Study: {all_instances} instances ({len(instances)} CT slices in {len(grid['series']) - 5} series + 5 others), "
          f"warm-up job: {p['done']} images ({p['skipped']} already cached, {p['failed']} failed) in {p['elapsed_s']:.2f} s\n")
    n, total = len(instances), all_instances

    def ms(cpu, count):
        return f"{cpu.orthanc / count * 1000:.2f} | {cpu.edge / count * 1000:.2f}"

    print("| what | instances/s | seconds | Orthanc CPU ms/instance | edge CPU ms/instance |")
    print("|---|---|---|---|---|")
    print(f"| Orthanc direct `/preview` JPEG, {args.concurrency} concurrent | {jpeg_rate:.1f} | {jpeg_s:.2f} | {ms(jpeg_cpu, n)} |")
    print(f"| Orthanc direct `/preview` PNG, {args.concurrency} concurrent | {png_rate:.1f} | {png_s:.2f} | {ms(png_cpu, n)} |")
    print(f"| edge warm-up, preset `thumb` (WebP + JPEG from one PAM source) | {edge_rate:.1f} | {p['elapsed_s']:.2f} | {ms(warm_cpu, total)} |")
    best = max(jpeg_rate, png_rate)
    print(f"\nedge warm-up / best Orthanc rate: **{edge_rate / best:.2f}×**\n")
    print(f"Grid of {len(grid['series'])} series after warm-up: {len(urls)} thumbnails in one round of "
          f"6 parallel requests, {hits} hits, {grid_ms:.0f} ms; statuses {sorted(set(s for s, _ in results))}")


if __name__ == "__main__":
    main()

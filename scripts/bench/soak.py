#!/usr/bin/env python3
"""Mixed-load soak of a running orthanc-edge (not in CI; see scripts/bench/soak.sh).

Hits, misses (new sizes), 304 revalidations and bad requests from a few threads for --seconds,
while sampling the edge's RSS and open file descriptors. Prints a per-interval table and a JSON
summary; exits non-zero if RSS exceeds --rss-limit-mib, the fd count grows, hit p99 drifts by
more than 3x from the first interval, or any 5xx is seen.
"""
import argparse
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--ids", required=True, help="comma-separated instance ids")
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--interval", type=int, default=60)
    ap.add_argument("--rss-limit-mib", type=float, required=True)
    ap.add_argument("--admin", help="admin base URL: also report the tiers' sizes from /metrics")
    return ap.parse_args()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()
        self.total = {}

    def reset(self):
        self.hit_ms = []
        self.counts = {}

    def add(self, kind, status, ms):
        with self.lock:
            k = f"{kind}:{status}"
            self.counts[k] = self.counts.get(k, 0) + 1
            self.total[k] = self.total.get(k, 0) + 1
            if kind == "hit" and status == 200:
                self.hit_ms.append(ms)

    def take(self):
        with self.lock:
            out = (self.hit_ms, self.counts)
            self.reset()
            return out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def edge_gauges(admin):
    """From the edge's /metrics, in MiB: the tiers' own byte counts and the heap as jemalloc sees it."""
    if not admin:
        return {}
    import urllib.request
    text = urllib.request.urlopen(admin + "/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        for family, label in (("orthanc_edge_cache_bytes{", "tier"), ("orthanc_edge_heap_bytes{", "kind")):
            if line.startswith(family):
                name = line.split(f'{label}="')[1].split('"')[0]
                out[name] = round(float(line.split()[-1]) / 1048576, 1)
        if line.startswith("orthanc_edge_cache_entries{tier=\"memory\"}"):
            out["entries"] = int(float(line.split()[-1]))
    return out


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def p99(xs):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


def worker(kind, args, ids, stats, stop, etags, pace):
    u = urllib.parse.urlparse(args.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    rnd = random.Random(hash(kind) ^ threading.get_ident())
    n = 0
    while not stop.is_set():
        n += 1
        id_ = rnd.choice(ids)
        headers = {"X-Api-Key": args.key}
        if kind == "hit":
            path = f"/instances/{id_}/preview?preset={rnd.choice(['thumb', 'grid'])}"
            headers["Accept"] = "image/webp,*/*"
        elif kind == "miss":
            w = rnd.randint(16, 1024)
            path = f"/instances/{id_}/preview?w={w}&h={rnd.randint(16, 1024)}&format={rnd.choice(['jpeg', 'webp', 'png'])}&fit={rnd.choice(['contain', 'cover'])}"
        elif kind == "304":
            path = f"/instances/{id_}/preview?preset=thumb"
            headers["Accept"] = "image/webp,*/*"
            if path in etags:
                headers["If-None-Match"] = etags[path]
        else:  # bad requests
            path = rnd.choice([
                "/instances/not-an-id/preview",
                f"/instances/{id_}/preview?w=0",
                f"/instances/{id_}/preview?zz=1",
                f"/instances/{id_}/frames/999999/preview",
                "/system",
            ])
            if rnd.random() < 0.3:
                headers.pop("X-Api-Key")
        t = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            if kind == "hit" and status == 200 and path not in etags:
                etags[path] = resp.getheader("ETag")
        except Exception as e:  # connection trouble is a finding too
            status = f"error {type(e).__name__}"
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        stats.add(kind, status, (time.perf_counter() - t) * 1000)
        if pace:
            time.sleep(pace)


def main():
    args = parse_args()
    ids = args.ids.split(",")
    stats = Stats()
    stop = threading.Event()
    etags = {}
    # kind, threads, pause between requests (s)
    plan = [("hit", 3, 0), ("304", 1, 0.002), ("miss", 1, 0.02), ("bad", 1, 0.005)]
    threads = [threading.Thread(target=worker, args=(k, args, ids, stats, stop, etags, pace), daemon=True)
               for k, n, pace in plan for _ in range(n)]
    for t in threads:
        t.start()
    rows = []
    start = time.time()
    fd0 = fds(args.pid)
    print(f"{'t(s)':>6} {'rss MiB':>8} {'mem MiB':>8} {'mem n':>6} {'disk MiB':>8} {'heap a':>7} {'heap r':>7} {'fds':>5} {'hits/s':>8} {'hit p50':>8} {'hit p99':>8}  counts")
    while time.time() - start < args.seconds:
        time.sleep(args.interval)
        hit_ms, counts = stats.take()
        rss = rss_kib(args.pid) / 1024
        fd = fds(args.pid)
        g = edge_gauges(args.admin)
        row = {"t": round(time.time() - start), "rss_mib": round(rss, 1), "fds": fd,
               "memory_tier_mib": g.get("memory"), "memory_entries": g.get("entries"),
               "disk_tier_mib": g.get("disk"),
               "heap_allocated_mib": g.get("allocated"), "heap_resident_mib": g.get("resident"),
               "hits_per_s": round(len(hit_ms) / args.interval),
               "hit_p50_ms": round(sorted(hit_ms)[len(hit_ms) // 2], 2) if hit_ms else None,
               "hit_p99_ms": round(p99(hit_ms), 2), "counts": counts}
        rows.append(row)
        print(f"{row['t']:>6} {row['rss_mib']:>8} {str(g.get('memory')):>8} {str(g.get('entries')):>6} {str(g.get('disk')):>8} {str(g.get('allocated')):>7} {str(g.get('resident')):>7} {fd:>5} {row['hits_per_s']:>8} {row['hit_p50_ms']:>8} {row['hit_p99_ms']:>8}  {counts}", flush=True)
    stop.set()
    for t in threads:
        t.join(timeout=35)
    fails = []
    peak = max(r["rss_mib"] for r in rows)
    if peak > args.rss_limit_mib:
        fails.append(f"RSS {peak} MiB > {args.rss_limit_mib} MiB")
    if max(r["fds"] for r in rows) > fd0 + 20:
        fails.append(f"fds grew from {fd0} to {max(r['fds'] for r in rows)}")
    base = rows[0]["hit_p99_ms"]
    if any(r["hit_p99_ms"] > 3 * base + 1 for r in rows[1:]):
        fails.append("hit p99 drifted more than 3x")
    five = {k: v for k, v in stats.total.items() if k.split(":")[1].startswith("5") or "error" in k}
    if five:
        fails.append(f"5xx/errors: {five}")
    print(json.dumps({"rows": rows, "totals": stats.total, "fd_start": fd0, "peak_rss_mib": peak,
                      "fails": fails}))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()

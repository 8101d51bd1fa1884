#!/usr/bin/env python3
"""Decode benchmark driver (scripts/bench/decode.sh): decode + window + resize (to fit 256 px) +
encode (JPEG, quality 90) of a 512x512 16-bit CT and a 2048x2500 12-bit CR, each uncompressed and
JPEG 2000 lossless, by pydicom + pylibjpeg + numpy + Pillow in this process and by Orthanc (with
the GDCM plugin); the edge's numbers come from criterion (benches/decode.rs). One JSON file per
step in DIR; `report` prints the Markdown table.

  decode.py gen DIR                    # DIR/{ct512,cr2048}_{native,j2k}.dcm
  decode.py pydicom DIR [--runs N]     # per-image median over N runs, after 2 warm-up runs
  decode.py orthanc DIR --env FILE [--runs N]   # upload, then sequential GET .../rendered
  decode.py report DIR [--criterion DIR]        # edge column from criterion's estimates
"""
import argparse
import base64
import io
import json
import os
import statistics
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pydicom
from PIL import Image
from pydicom.uid import JPEG2000Lossless, generate_uid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dev"))
import gen_dicom  # noqa: E402  (the project's synthetic CT and CR)

SIZE, QUALITY, WARMUP = 256, 90, 2
IMAGES = {"ct512": "CT 512×512 16-bit signed", "cr2048": "CR 2048×2500 12-bit"}
CODECS = {"native": "uncompressed", "j2k": "JPEG 2000 lossless"}


def names():
    return [f"{image}_{codec}" for image in IMAGES for codec in CODECS]


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


def cmd_gen(args):
    """The project's CT and large CR with deterministic noise, so that JPEG 2000 has real work."""
    rng = np.random.default_rng(14)
    sources = {
        "ct512": (gen_dicom.make_ct16(), -2000, 32767),
        "cr2048": (gen_dicom.make_cr_mono1(n=6, cols=2048, rows=2500, photometric="MONOCHROME2",
                                           name="CR MONOCHROME2 12-bit 2048x2500"), 0, 4095),
    }
    os.makedirs(args.dir, exist_ok=True)
    for image, (ds, lo, hi) in sources.items():
        arr = ds.pixel_array
        noisy = np.clip(arr.astype(np.int32) + rng.normal(0, 12, arr.shape).round().astype(np.int32), lo, hi)
        arr = noisy.astype(arr.dtype)
        ds.PixelData = arr.tobytes()
        for codec in CODECS:
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            if codec == "j2k":
                ds.compress(JPEG2000Lossless, arr)
            gen_dicom.save(ds, os.path.join(args.dir, f"{image}_{codec}.dcm"))
    print(f"decode.py: wrote {', '.join(names())} to {args.dir}", file=sys.stderr)


def first(value):
    return float(value[0] if isinstance(value, pydicom.multival.MultiValue) else value)


def window_u8(ds, arr):
    """Modality rescale, then the first window of the instance (DICOM's linear function; the full
    range without one), to 8 bits."""
    x = arr.astype(np.float32) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    if "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = first(ds.WindowCenter), first(ds.WindowWidth)
    else:
        lo, hi = float(x.min()), float(x.max())
        center, width = (lo + hi) / 2, max(hi - lo, 2.0)
    y = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255
    return np.clip(y, 0, 255).astype(np.uint8)


def pydicom_render(raw):
    ds = pydicom.dcmread(io.BytesIO(raw))
    img = Image.fromarray(window_u8(ds, ds.pixel_array), mode="L")
    img.thumbnail((SIZE, SIZE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=QUALITY)
    return out.getvalue()


def timed_ms(fn, runs):
    """Median wall and CPU (this process, all threads) ms of `fn` over `runs` runs."""
    for _ in range(WARMUP):
        fn()
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(times), statistics.median(cpu)


def cpu_ms(pid):
    """User + system CPU ms of process `pid` so far, threads that have ended included (GDCM's
    JPEG 2000 decoder runs on threads of its own that end with the decode, which per-thread
    counters would miss). Clock ticks, so only the sum over many requests means anything."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def cmd_pydicom(args):
    result = {}
    for name in names():
        with open(os.path.join(args.dir, f"{name}.dcm"), "rb") as f:
            raw = f.read()
        result[name], result[f"{name}.cpu"] = timed_ms(lambda: pydicom_render(raw), args.runs)
        with open(os.path.join(args.dir, f"{name}.pydicom.jpg"), "wb") as f:
            f.write(pydicom_render(raw))
        print(f"decode.py: pydicom {name}: {result[name]:.1f} ms, CPU {result[name + '.cpu']:.1f} ms", file=sys.stderr)
    write_json(os.path.join(args.dir, "pydicom.json"), result)


def orthanc_of(env_path):
    env = {}
    with open(env_path) as f:
        for line in f:
            if line.startswith("export "):
                k, v = line[len("export "):].strip().split("=", 1)
                env[k] = v.strip("'")
    auth = base64.b64encode(f"{env['ORTHANC_EDGE_IT_USER']}:{env['ORTHANC_EDGE_IT_PASSWORD']}".encode()).decode()
    return env["ORTHANC_EDGE_IT_URL"], {"Authorization": f"Basic {auth}", "Accept-Encoding": "identity"}


def http(url, headers, data=None):
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.read()


def cmd_orthanc(args):
    """Round-robin over the images, so that no request finds its instance in the GDCM plugin's
    cache of the last decoded file (a grid asks for a different instance each time too)."""
    url, headers = orthanc_of(args.env)
    jpeg = {**headers, "Accept": "image/jpeg"}
    result, rendered = {}, {}
    for name in names():
        with open(os.path.join(args.dir, f"{name}.dcm"), "rb") as f:
            instance = json.loads(http(f"{url}/instances", headers, f.read()))["ID"]
        try:
            body = http(rendered_url(url, instance), jpeg)
            with Image.open(io.BytesIO(body)) as img:
                result[name] = {"size": img.size, "ms": []}
            with open(os.path.join(args.dir, f"{name}.orthanc.jpg"), "wb") as f:
                f.write(body)
            rendered[name] = rendered_url(url, instance)
        except urllib.error.HTTPError as e:
            result[name] = {"status": e.code}
    # Orthanc's own CPU per request (/proc, all its threads: GDCM may decode on several): the sum
    # over the runs of 10 ms clock ticks, divided by the runs (± 10 ms / RUNS).
    pid = int(open(os.path.join(os.path.dirname(args.env), "orthanc.pid")).read())
    cpu = {name: 0.0 for name in rendered}
    for run in range(WARMUP + args.runs):
        for name, target in rendered.items():
            start, start_cpu = time.perf_counter(), cpu_ms(pid)
            http(target, jpeg)
            if run >= WARMUP:
                result[name]["ms"].append((time.perf_counter() - start) * 1000)
                cpu[name] += cpu_ms(pid) - start_cpu
    for name in rendered:
        result[name]["ms"] = statistics.median(result[name]["ms"])
        result[name]["cpu_ms"] = cpu[name] / args.runs
    for name in names():
        print(f"decode.py: Orthanc+GDCM {name}: {result[name]}", file=sys.stderr)
    write_json(os.path.join(args.dir, "orthanc.json"), result)


def rendered_url(url, instance):
    return f"{url}/instances/{instance}/rendered?width={SIZE}&height={SIZE}&quality={QUALITY}"


def criterion_ms(criterion_dir, name):
    path = os.path.join(criterion_dir, "decode", "edge", name, "new", "estimates.json")
    if not os.path.exists(path):
        return None
    return read_json(path)["median"]["point_estimate"] / 1e6


def outputs_check(d):
    """Each tool's output image (written by the steps and by benches/decode.rs): its size, and its
    mean absolute difference in 8-bit grey levels from Orthanc+GDCM's when the sizes agree."""
    print("\nOutput check: size, and mean |difference| from Orthanc+GDCM's image in grey levels "
          "(JPEG q90 on all sides, so ~1 is equal):\n")
    print("| image | codec | edge | pydicom+pylibjpeg | Orthanc+GDCM |")
    print("|---|---|---|---|---|")
    for name in names():
        image, codec = name.split("_")
        imgs = {}
        for tool in ("edge", "pydicom", "orthanc"):
            path = os.path.join(d, f"{name}.{tool}.jpg")
            if os.path.exists(path):
                with Image.open(path) as img:
                    imgs[tool] = np.asarray(img.convert("L"), dtype=np.int16)
        ref = imgs.get("orthanc")
        cells = [IMAGES[image], CODECS[codec]]
        for tool in ("edge", "pydicom", "orthanc"):
            a = imgs.get(tool)
            if a is None:
                cells.append("n/a")
            elif ref is None or tool == "orthanc" or a.shape != ref.shape:
                cells.append(f"{a.shape[1]}×{a.shape[0]}")
            else:
                cells.append(f"{a.shape[1]}×{a.shape[0]}, {np.abs(a - ref).mean():.2f}")
        print("| " + " | ".join(cells) + " |")


def cmd_report(args):
    py = read_json(os.path.join(args.dir, "pydicom.json"))
    orthanc_path = os.path.join(args.dir, "orthanc.json")
    orthanc = read_json(orthanc_path) if os.path.exists(orthanc_path) else {}
    print(f"Decode + window + resize (fit {SIZE}×{SIZE}) + JPEG q{QUALITY}, one image at a time, median ms:\n")
    print("| image | codec | edge ms | pydicom+pylibjpeg ms (CPU) | Orthanc+GDCM ms (Orthanc CPU) "
          "| edge / pydicom | edge / Orthanc+GDCM |")
    print("|---|---|---|---|---|---|---|")
    edge_seen = False
    for name in names():
        image, codec = name.split("_")
        edge = criterion_ms(args.criterion, name) if args.criterion else None
        edge_seen |= edge is not None
        o = orthanc.get(name, {})
        o_ms = o.get("ms")
        cells = [
            IMAGES[image], CODECS[codec],
            f"{edge:.1f}" if edge is not None else "n/a",
            f"{py[name]:.1f} ({py[name + '.cpu']:.1f})" if name + ".cpu" in py else f"{py[name]:.1f}",
            f"{o_ms:.1f} ({o['cpu_ms']:.1f})" if o_ms is not None and "cpu_ms" in o
            else f"{o_ms:.1f}" if o_ms is not None else (f"HTTP {o['status']}" if "status" in o else "n/a"),
            f"{edge / py[name]:.2f}×" if edge is not None else "",
            f"{edge / o_ms:.2f}×" if edge is not None and o_ms else "",
        ]
        print("| " + " | ".join(cells) + " |")
    print("\nWall time; in brackets the CPU time of that process, all threads (a codec may decode on more "
          "than one core). Edge: criterion, one thread, in-process. Orthanc: `GET /instances/{id}/rendered"
          "?width=256&height=256`, sequential, over loopback (HTTP included). pydicom: in-process. Goal: "
          "the edge faster than both.")
    if not edge_seen:
        print("The edge was not measured: `cargo bench --bench decode` did not build or run "
              "(see decode.sh's message above).")
    outputs_check(args.dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("gen").add_argument("dir")
    p = sub.add_parser("pydicom")
    o = sub.add_parser("orthanc")
    for s in (p, o):
        s.add_argument("dir")
        s.add_argument("--runs", type=int, default=10)
    o.add_argument("--env", required=True)
    r = sub.add_parser("report")
    r.add_argument("dir")
    r.add_argument("--criterion", help="criterion's output folder (target/criterion)")
    args = ap.parse_args()
    {"gen": cmd_gen, "pydicom": cmd_pydicom, "orthanc": cmd_orthanc, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    main()

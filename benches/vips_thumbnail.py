#!/usr/bin/env python3
"""libvips on the same bytes as benches/transform.rs: 256 px JPEG q80 / WebP q80, single thread.

Two ways per case: `pam`, thumbnail_buffer on the PAM bytes (the same input the edge gets; libvips'
PAM loader is slow), and `memory`, the pixels already decoded in memory (new_from_memory +
thumbnail_image: libvips' best case, no decoding at all). VIPS_CONCURRENCY=1 is set before import.
Prints one JSON line per case: {"input": "ct512", "format": "jpeg", "mode": "pam", "ms": 12.3}.
"""
import json
import os
import sys
import time

os.environ["VIPS_CONCURRENCY"] = "1"
import pyvips  # noqa: E402

pyvips.cache_set_max(0)


def measure(once, seconds=3.0):
    for _ in range(3):
        once()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        once()
        n += 1
    return (time.perf_counter() - start) / n


def pam_pixels(data):
    end = data.index(b"ENDHDR\n")
    fields = dict(line.split(" ", 1) for line in data[:end].decode().splitlines()[1:] if " " in line)
    return data[end + 7:], int(fields["WIDTH"]), int(fields["HEIGHT"]), int(fields["DEPTH"])


def main(directory):
    for name in ("ct512", "cr2048"):
        path = os.path.join(directory, name + ".pam")
        with open(path, "rb") as f:
            data = f.read()
        pixels, w, h, bands = pam_pixels(data)
        for fmt, suffix in (("jpeg", ".jpg[Q=80,strip]"), ("webp", ".webp[Q=80,strip]")):
            ways = {
                "pam": lambda: pyvips.Image.thumbnail_buffer(data, 256, height=256).write_to_buffer(suffix),
                "memory": lambda: pyvips.Image.new_from_memory(pixels, w, h, bands, "uchar")
                .thumbnail_image(256, height=256)
                .write_to_buffer(suffix),
            }
            for mode, once in ways.items():
                t = measure(once)
                print(json.dumps({"input": name, "format": fmt, "mode": mode, "ms": round(t * 1000, 3)}))


if __name__ == "__main__":
    main(sys.argv[1])

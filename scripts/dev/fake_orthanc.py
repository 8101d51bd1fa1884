#!/usr/bin/env python3
"""A minimal fake Orthanc for load benchmarks (scripts/bench/flood.sh): not for tests of behaviour.

    python3 scripts/dev/fake_orthanc.py PORT USER PASSWORD

GET /system → 200. GET /instances/{id}/frames/{n}/preview|rendered → a tiny image (PNG, JPEG-less:
PNG unless the Accept asks for PAM) when the id starts with `00000000-`, else 404 (empty body), like
Orthanc for an id it does not know. Every request must carry the Basic credentials. Prints
`ready` on stdout once listening. Threaded: the edge's pooled connections each get a thread.
"""

import base64
import re
import struct
import sys
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, USER, PASSWORD = int(sys.argv[1]), sys.argv[2], sys.argv[3]
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
IMAGE = re.compile(r"^/instances/([0-9a-f-]{44})/frames/(\d+)/(preview|rendered)(\?.*)?$")


def png(seed: int, w: int = 16, h: int = 16) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((x * 16 + y + seed) & 0xFF for x in range(w)) for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def pam(seed: int, w: int = 16, h: int = 16) -> bytes:
    head = f"P7\nWIDTH {w}\nHEIGHT {h}\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n".encode()
    return head + bytes((i + seed) & 0xFF for i in range(w * h))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def reply(self, status: int, body: bytes = b"", ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.headers.get("Authorization") != AUTH:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="Orthanc"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/system":
            return self.reply(200, b'{"Version": "1.10.1"}')
        m = IMAGE.match(self.path)
        if not m or not m.group(1).startswith("00000000-"):
            return self.reply(404)
        seed = int(m.group(1)[-8:], 16)
        if self.headers.get("Accept") == "image/x-portable-arbitrarymap":
            return self.reply(200, pam(seed), "image/x-portable-arbitrarymap")
        return self.reply(200, png(seed), "image/png")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()

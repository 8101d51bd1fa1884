#!/usr/bin/env python3
# Uploads the test DICOM files to a running Orthanc and writes a manifest of their Orthanc ids.
#
# Usage: scripts/dev/load_samples.py [--env DIR/orthanc.env] --dicom-dir D [--manifest OUT.json]
#
# Credentials come from the env file written by scripts/dev/orthanc.sh (export KEY='value' lines),
# or, without --env, from ORTHANC_EDGE_IT_URL / _USER / _PASSWORD in the environment.
# Every D/*.dcm is sent with POST /instances; facts about each instance are read back from
# Orthanc (simplified-tags, TransferSyntax metadata), and GET /instances/ID/preview is probed
# once so the manifest records what Orthanc itself answers (200, or 415 for JPEG 2000).
# Manifest (stdout when --manifest is not given):
#   {"patient": ID, "study": ID,
#    "instances": {"<file stem>": {"instance": ID, "series": ID, "study": ID, "patient": ID,
#        "width": COLUMNS, "height": ROWS, "frames": N, "photometric": "...", "bits": BitsAllocated,
#        "bits_stored": N, "samples_per_pixel": N, "transfer_syntax": "UID",
#        "sop_instance_uid": "UID", "modality": "...", "preview_status": 200|415,
#        "file": "ABSOLUTE PATH"}}}
# Standard library only.
import argparse
import base64
import json
import os
import shlex
import sys
import urllib.error
import urllib.request


def die(msg):
    sys.exit(f"load_samples.py: error: {msg}")


def read_env_file(path):
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            words = shlex.split(line)
            if words and words[0] == "export":
                words = words[1:]
            for word in words:
                key, sep, value = word.partition("=")
                if sep:
                    values[key] = value
    return values


class Orthanc:
    def __init__(self, url, user, password):
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.auth = f"Basic {token}"

    def request(self, method, path, body=None, headers=None):
        """Returns (status, body bytes); never raises for HTTP error statuses."""
        req = urllib.request.Request(self.url + path, data=body, method=method)
        req.add_header("Authorization", self.auth)
        req.add_header("Accept-Encoding", "identity")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except urllib.error.URLError as e:
            die(f"{method} {self.url}{path}: {e.reason}")

    def json(self, method, path, body=None, headers=None):
        status, data = self.request(method, path, body, headers)
        if status != 200:
            die(f"{method} {path} → HTTP {status}: {data[:300].decode(errors='replace')}")
        return json.loads(data)


def main():
    ap = argparse.ArgumentParser(description="Upload test DICOM files to Orthanc and write a manifest.")
    ap.add_argument("--env", help="env file written by scripts/dev/orthanc.sh start")
    ap.add_argument("--dicom-dir", required=True)
    ap.add_argument("--manifest", help="output JSON path (default: stdout)")
    args = ap.parse_args()

    env = read_env_file(args.env) if args.env else os.environ
    try:
        url, user, password = (env[f"ORTHANC_EDGE_IT_{k}"] for k in ("URL", "USER", "PASSWORD"))
    except KeyError as e:
        die(f"{e.args[0]} not set ({'in ' + args.env if args.env else 'give --env or export it'})")
    orthanc = Orthanc(url, user, password)

    files = sorted(f for f in os.listdir(args.dicom_dir) if f.endswith(".dcm"))
    if not files:
        die(f"no .dcm files in {args.dicom_dir}")

    instances = {}
    for name in files:
        path = os.path.abspath(os.path.join(args.dicom_dir, name))
        with open(path, "rb") as f:
            data = f.read()
        up = orthanc.json("POST", "/instances", data, {"Content-Type": "application/dicom"})
        if up.get("Status") not in ("Success", "AlreadyStored"):
            die(f"upload of {name}: {up}")
        iid = up["ID"]
        tags = orthanc.json("GET", f"/instances/{iid}/simplified-tags")
        status, ts = orthanc.request("GET", f"/instances/{iid}/metadata/TransferSyntax")
        if status != 200:
            die(f"GET /instances/{iid}/metadata/TransferSyntax → HTTP {status}")
        preview_status, _ = orthanc.request("GET", f"/instances/{iid}/preview")
        instances[name[: -len(".dcm")]] = {
            "instance": iid,
            "series": up["ParentSeries"],
            "study": up["ParentStudy"],
            "patient": up["ParentPatient"],
            "width": int(tags["Columns"]),
            "height": int(tags["Rows"]),
            "frames": int(tags.get("NumberOfFrames") or 1),
            "photometric": tags["PhotometricInterpretation"].strip(),
            "bits": int(tags["BitsAllocated"]),
            "bits_stored": int(tags["BitsStored"]),
            "samples_per_pixel": int(tags["SamplesPerPixel"]),
            "transfer_syntax": ts.decode().strip(),
            "sop_instance_uid": tags["SOPInstanceUID"],
            "modality": tags.get("Modality", ""),
            "preview_status": preview_status,
            "file": path,
        }
        print(f"load_samples.py: {name} → {iid} ({up['Status']}, preview {preview_status})", file=sys.stderr)

    studies = sorted({i["study"] for i in instances.values()})
    patients = sorted({i["patient"] for i in instances.values()})
    manifest = {
        "patient": patients[0] if len(patients) == 1 else patients,
        "study": studies[0] if len(studies) == 1 else studies,
        "instances": instances,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    if args.manifest:
        tmp = args.manifest + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.manifest)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Transform benchmark: the edge's decode+resize+encode (criterion, benches/transform.rs) against
# libvips thumbnail_buffer (benches/vips_thumbnail.py) and the `image` crate's own resize path,
# single thread, on the same bytes: Orthanc's PAM renderings of a 512x512 CT and a 2048x2500 CR
# from a private Orthanc started here. Prints a Markdown table; takes about 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."

scripts/ci/setup-deps.sh orthanc python
if ! python3 -c 'import pyvips' 2>/dev/null; then
  dpkg -s libvips42 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libvips42 >/dev/null; }
  pip install -q pyvips
fi

inputs=$(mktemp -d /tmp/bench-transform.XXXXXX)
# Set before sourcing it-orthanc.sh, which chains its own stop onto this trap.
trap 'rm -rf "$inputs"' EXIT
export IT_ORTHANC_LARGE=1
# shellcheck source=scripts/ci/it-orthanc.sh
source scripts/ci/it-orthanc.sh
fetch() { # manifest-name output-name
  local id
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["instances"][sys.argv[2]]["instance"])' \
    "$ORTHANC_EDGE_IT_MANIFEST" "$1")
  curl -sf -u "$ORTHANC_EDGE_IT_USER:$ORTHANC_EDGE_IT_PASSWORD" -H 'Accept: image/x-portable-arbitrarymap' \
    "$ORTHANC_EDGE_IT_URL/instances/$id/preview" -o "$inputs/$2.pam"
}
fetch ct16 ct512
fetch cr_large cr2048

TRANSFORM_BENCH_DIR=$inputs cargo bench --bench transform -- --noplot > "$inputs/criterion.log" 2>&1 \
  || { cat "$inputs/criterion.log"; exit 1; }
python3 benches/vips_thumbnail.py "$inputs" > "$inputs/vips.jsonl"

python3 - "$inputs/vips.jsonl" <<'PY'
import json, sys
vips = {(r["input"], r["format"], r["mode"]): r["ms"] for r in map(json.loads, open(sys.argv[1]))}
def crit(inp, fn, fmt):
    with open(f"target/criterion/transform_{inp}/{fn}/{fmt}/new/estimates.json") as f:
        return json.load(f)["median"]["point_estimate"] / 1e6
ms = lambda x: f"{x:.2f}" if x is not None else "–"
print("| input | output | edge ms | edge, cached source ms | libvips, PAM bytes ms | libvips, pixels in memory ms | image crate ms | edge vs libvips (PAM / memory) | edge vs image crate |")
print("|---|---|---|---|---|---|---|---|---|")
for inp in ("ct512", "cr2048"):
    for fmt in ("jpeg", "webp"):
        e = crit(inp, "edge", fmt)
        c = crit(inp, "edge-cached-source", "jpeg") if fmt == "jpeg" else None
        i = crit(inp, "image-crate", "jpeg") if fmt == "jpeg" else None
        vp, vm = vips[(inp, fmt, "pam")], vips[(inp, fmt, "memory")]
        print(f"| {inp} | 256px {fmt} q80 | {e:.2f} | {ms(c)} | {vp:.2f} | {vm:.2f} | {ms(i)} | "
              f"{vp / e:.1f}× / {vm / e:.1f}× | " + (f"{i / e:.1f}×" if i else "–") + " |")
PY

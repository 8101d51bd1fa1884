#!/usr/bin/env python3
"""Static checks of the Dockerfile (no Docker engine needed).

Parses it with the `dockerfile` package (BuildKit's own Go parser, so syntax errors are caught)
and checks: every FROM is pinned to a tag (no implicit :latest), local COPY sources exist and are
not excluded by .dockerignore's target/, the final stage runs as a non-root numeric USER, exposes
8080, 9721 and 9722 (the cluster peer port), declares the cache VOLUME, and starts the edge with `serve --config`.
Usage: dockerfile_check.py [Dockerfile]   (exit 1 with one line per problem)
"""
import os
import sys

import dockerfile


def main(path):
    root = os.path.dirname(os.path.abspath(path))
    cmds = dockerfile.parse_file(path)
    problems = []
    stages = [i for i, c in enumerate(cmds) if c.cmd == "FROM"]
    if len(stages) < 2:
        problems.append("expected a multi-stage build (build + runtime)")
    for i in stages:
        image = cmds[i].value[0]
        if ":" not in image.split("/")[-1]:
            problems.append(f"FROM {image}: pin a tag")
    for c in cmds:
        if c.cmd == "COPY" and not any(f.startswith("--from=") for f in c.flags):
            for src in c.value[:-1]:
                if not os.path.exists(os.path.join(root, src)):
                    problems.append(f"COPY {src}: no such file in the build context")
                if src.startswith("target"):
                    problems.append(f"COPY {src}: target/ is excluded by .dockerignore")
    final = cmds[stages[-1]:] if stages else []
    users = [c.value[0] for c in final if c.cmd == "USER"]
    if not users or users[-1].split(":")[0] in ("0", "root") or not users[-1].split(":")[0].isdigit():
        problems.append("final stage must end with a numeric non-root USER")
    exposed = {p for c in final if c.cmd == "EXPOSE" for p in c.value}
    for port in ("8080", "9721", "9722"):
        if port not in exposed:
            problems.append(f"port {port} not exposed")
    if not any(c.cmd == "VOLUME" and "/var/cache/orthanc-edge" in c.value for c in final):
        problems.append("cache folder is not a VOLUME")
    cmd = [c.value for c in final if c.cmd == "CMD"]
    if not cmd or cmd[-1][:2] != ("serve", "--config"):
        problems.append("CMD must be serve --config FILE")
    return problems


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "Dockerfile"
    found = main(target)
    for p in found:
        print(f"dockerfile_check.py: {target}: {p}", file=sys.stderr)
    sys.exit(1 if found else 0)

#!/usr/bin/env python3
"""Checks that every project include respects the layers (docs/ARCHITECTURE.md, "Layers").

Each source directory may include headers of its own directory and of the directories listed
for it below, nothing else: `http` never reaches `server`, `proxy/` and `operator/` never each
other, and `lib/` nothing above it. The static libraries enforce the same at link time for
anything with a definition; this catches header-only reaches too. Exit 1 with one line per
violation ("file:line: includes X, but <dir> may use only ...").
"""
import pathlib
import re
import sys

# directory (relative to the repo) -> the include prefixes it may use besides its own.
LAYERS = {
    "lib/common": [],
    "lib/config": ["common"],
    "lib/admin_api": ["common", "config"],
    "lib/metrics": ["common"],
    "lib/control_http": ["common"],
    "proxy/src/routing": ["common", "config", "redis"],
    "proxy/src/redis": ["common"],
    "proxy/src/http": ["common", "config", "routing"],
    "proxy/src/server": ["common", "config", "admin_api", "metrics", "control_http", "routing",
                         "redis", "http"],
    "proxy/src": ["common", "config", "admin_api", "metrics", "control_http", "routing", "redis",
                  "http", "server"],
    "operator/src/kube": ["common", "metrics"],
    "operator/src/controller": ["common", "config", "admin_api", "metrics", "control_http",
                                "kube"],
    "operator/src": ["common", "config", "admin_api", "metrics", "control_http", "kube",
                     "controller"],
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def main() -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    problems = []
    for directory, allowed in LAYERS.items():
        base = root / directory
        own = directory.rsplit("/", 1)[-1]
        for path in sorted(base.glob("*")):
            if path.suffix not in (".h", ".cc"):
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                prefix = m.group(1).split("/", 1)[0]
                if "/" not in m.group(1) or prefix == own or prefix in allowed:
                    continue
                rel = path.relative_to(root)
                problems.append(f"{rel}:{number}: includes \"{m.group(1)}\", but {directory} "
                                f"may use only {', '.join([own] + allowed)}")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

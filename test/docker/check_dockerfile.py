#!/usr/bin/env python3
"""Static checks of the repository's Dockerfile (there is no Docker engine to build it here).

  check_dockerfile.py REPO_ROOT [PROXY_BINARY OPERATOR_BINARY]

Checks that
  - every path the Dockerfile COPYs from the build context exists and is not excluded by
    .dockerignore, and every directory CMake needs (add_subdirectory) is copied;
  - the preset and the targets it builds exist in CMakePresets.json / the CMakeLists, and the
    binary paths it installs are where CMake puts those targets;
  - every find_package of the non-test build has its Debian -dev package in the build stage;
  - every Debian package it installs exists (apt-cache show);
  - the binaries it installs are the ones the Helm chart runs and the ENTRYPOINT names, and its
    numeric USER is the chart's runAsUser;
  - given built binaries: every shared library they need (readelf NEEDED) comes from a package
    the runtime stage installs, from its dependencies, or from the base image.
Prints one line per failed check; exits 1 if any failed.
"""

import json
import os
import re
import shlex
import subprocess
import sys

failures = []

# find_package name -> the Debian package that provides it (build stage). None: part of CMake.
FIND_PACKAGE_DEBIAN = {
    "Threads": None,
    "Boost": "libboost-dev",
    "nlohmann_json": "nlohmann-json3-dev",
    "yaml-cpp": "libyaml-cpp-dev",
    "cpprestsdk": "libcpprest-dev",
    "OpenSSL": "libssl-dev",
    "fmt": "libfmt-dev",
    "CLI11": "libcli11-dev",
    "Git": None,  # optional (QUIET): the revision --version prints
}
# Packages every debian:bookworm-slim image has (Priority: required) that binaries link.
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def read(path):
    with open(path) as f:
        return f.read()


def parse_dockerfile(text):
    """Instructions as (stage_index, INSTRUCTION, argument string), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    stage = -1
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            stage += 1
        out.append((stage, word, rest.strip()))
    return out


def apt_packages(run_argument):
    """Package names of the `apt-get install` in a RUN line."""
    match = re.search(r"apt-get install ([^&;|]*)", run_argument)
    if not match:
        return []
    return [w for w in shlex.split(match.group(1)) if not w.startswith("-")]


def dockerignore_allows(root, path):
    """True if .dockerignore (last matching rule wins, `!` re-includes) keeps `path`."""
    ignore = os.path.join(root, ".dockerignore")
    if not os.path.exists(ignore):
        return True
    included = True
    for line in read(ignore).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        pattern = pattern.rstrip("/")
        regex = "^" + re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*") + "(/.*)?$"
        if re.match(regex, path):
            included = negate
    return included


def cmake_files(root, dirs):
    for d in dirs:
        for base, _, files in os.walk(os.path.join(root, d)):
            for name in files:
                if name == "CMakeLists.txt" or name.endswith(".cmake"):
                    yield os.path.join(base, name)


def main():
    if len(sys.argv) not in (2, 4):
        sys.exit(__doc__)
    root = sys.argv[1]
    binaries = sys.argv[2:]
    dockerfile = read(os.path.join(root, "Dockerfile"))
    instructions = parse_dockerfile(dockerfile)
    stages = max(s for s, _, _ in instructions) + 1
    check(stages == 2, f"expected two stages (build, runtime), found {stages}")
    froms = [a for s, w, a in instructions if w == "FROM"]
    check(froms and froms[0].startswith("debian:bookworm ") and froms[-1] == "debian:bookworm-slim",
          f"stages are FROM {froms}, expected debian:bookworm AS build and debian:bookworm-slim")

    # -- COPY from the build context ----------------------------------------------------------
    copied = set()
    for stage, word, arg in instructions:
        if word != "COPY" or "--from=" in arg:
            continue
        parts = shlex.split(arg)
        for src in parts[:-1]:
            src = src.rstrip("/")
            copied.add(src)
            check(os.path.exists(os.path.join(root, src)), f"COPY {src}: no such path in the repo")
            check(dockerignore_allows(root, src), f"COPY {src}: excluded by .dockerignore")
            if os.path.isdir(os.path.join(root, src)):
                for base, _, files in os.walk(os.path.join(root, src)):
                    for name in files:
                        rel = os.path.relpath(os.path.join(base, name), root)
                        if not dockerignore_allows(root, rel):
                            failures.append(f"COPY {src}: .dockerignore excludes {rel}")
                            break
    top = read(os.path.join(root, "CMakeLists.txt"))
    # Subdirectories only the tests and the fuzz targets need (the image build turns tests off,
    # and with them the fuzz targets' corpus replayers).
    top_no_tests = re.sub(r"if\(STICKY_BUILD_(?:TESTS\)|FUZZ\b).*?endif\(\)", "", top, flags=re.S)
    subdirs = re.findall(r"add_subdirectory\((\S+?)\)", top_no_tests)
    for d in subdirs:
        check(d in copied, f"CMakeLists.txt adds subdirectory {d}, which the Dockerfile does not COPY")
    check("CMakeLists.txt" in copied and "CMakePresets.json" in copied,
          "the Dockerfile must COPY CMakeLists.txt and CMakePresets.json")
    # Files CMake reads outside the copied directories.
    for path in cmake_files(root, subdirs):
        for ref in re.findall(r"\$\{(?:PROJECT|CMAKE)_SOURCE_DIR\}/([^/\s\"')]+)", read(path)):
            check(ref in copied, f"{os.path.relpath(path, root)} uses {ref}, which is not copied")

    # -- the build: preset, targets, binary paths ---------------------------------------------
    build_runs = " ".join(a for s, w, a in instructions if s == 0 and w == "RUN")
    preset = re.search(r"cmake --preset (\S+)", build_runs)
    presets = json.loads(read(os.path.join(root, "CMakePresets.json")))
    configure = {p["name"]: p for p in presets.get("configurePresets", [])}
    binary_dir = None
    if check(preset, "the build stage does not run `cmake --preset NAME`"):
        name = preset.group(1)
        if check(name in configure, f"preset {name} is not in CMakePresets.json"):
            binary_dir = configure[name]["binaryDir"].replace("${sourceDir}/", "")
    check("-DSTICKY_BUILD_TESTS=OFF" in build_runs, "the build stage does not turn tests off")
    target_match = re.search(r"cmake --build (\S+) --target ((?:[A-Za-z][\w-]* ?)+)", build_runs)
    targets = target_match.group(2).split() if target_match else []
    check(sorted(targets) == ["sticky-operator", "sticky-proxy"],
          f"the build stage builds targets {targets}, expected sticky-proxy and sticky-operator")
    if target_match and binary_dir:
        check(target_match.group(1) == binary_dir,
              f"cmake --build {target_match.group(1)} is not the preset's binaryDir {binary_dir}")
    all_cmake = {os.path.relpath(p, root): read(p) for p in cmake_files(root, subdirs)}
    all_cmake["CMakeLists.txt"] = top_no_tests
    for text in all_cmake.values():
        check("RUNTIME_OUTPUT_DIRECTORY" not in text,
              "a CMakeLists sets RUNTIME_OUTPUT_DIRECTORY; the Dockerfile's binary paths assume "
              "CMake's default (the target's source directory under the build tree)")
    installed = re.search(r"install -m 0755 -s ((?:\S+ )+)/out/", build_runs)
    built_paths = installed.group(1).split() if installed else []
    for target in targets:
        dirs = [os.path.dirname(p) for p, text in all_cmake.items()
                if re.search(r"add_executable\(\s*" + re.escape(target) + r"\s", text)]
        if not check(len(dirs) == 1, f"target {target}: {len(dirs)} add_executable, expected one"):
            continue
        expected = "/".join(x for x in (binary_dir, dirs[0], target) if x)
        check(expected in built_paths,
              f"the Dockerfile installs {built_paths}, but CMake builds {target} at {expected}")

    # -- find_package -> build-stage packages ---------------------------------------------------
    build_packages = set()
    runtime_packages = set()
    for stage, word, arg in instructions:
        if word == "RUN":
            (build_packages if stage == 0 else runtime_packages).update(apt_packages(arg))
    for path, text in all_cmake.items():
        for name in re.findall(r"find_package\(\s*([\w-]+)", text):
            if not check(name in FIND_PACKAGE_DEBIAN,
                         f"{path}: find_package({name}) has no Debian package in "
                         f"test/docker/check_dockerfile.py; add it there and to the build stage"):
                continue
            package = FIND_PACKAGE_DEBIAN[name]
            check(package is None or package in build_packages,
                  f"{path}: find_package({name}) needs {package}, not installed in the build stage")

    # -- package names are real ---------------------------------------------------------------
    shown = subprocess.run(["apt-cache", "show", *sorted(build_packages | runtime_packages)],
                           capture_output=True, text=True).stdout
    known = set(re.findall(r"^Package: (\S+)$", shown, re.M))
    for package in sorted((build_packages | runtime_packages) - known):
        failures.append(f"apt-cache show {package}: no such Debian package")

    # -- binaries, entrypoint, user, chart ------------------------------------------------------
    final_copy = [a for s, w, a in instructions if s == 1 and w == "COPY" and "--from=" in a]
    image_binaries = set()
    for arg in final_copy:
        parts = [p for p in shlex.split(arg) if not p.startswith("--")]
        dest = parts[-1].rstrip("/")
        image_binaries.update(f"{dest}/{os.path.basename(p)}" for p in parts[:-1])
    check(image_binaries == {"/usr/local/bin/sticky-proxy", "/usr/local/bin/sticky-operator"},
          f"the image gets {sorted(image_binaries)}, expected both binaries in /usr/local/bin")
    entrypoint = [a for s, w, a in instructions if s == 1 and w == "ENTRYPOINT"]
    if check(len(entrypoint) == 1, "the runtime stage has no ENTRYPOINT"):
        check(json.loads(entrypoint[0])[0] in image_binaries,
              f"ENTRYPOINT {entrypoint[0]} is not an installed binary")
    user = [a for s, w, a in instructions if s == 1 and w == "USER"]
    if check(len(user) == 1 and re.fullmatch(r"\d+(:\d+)?", user[0] if user else ""),
             f"the runtime stage's USER is {user}, expected one numeric user"):
        uid = int(user[0].split(":")[0])
        check(uid != 0, "the image runs as root")
        values = read(os.path.join(root, "charts/kube-sticky/values.yaml"))
        check(re.search(rf"^\s+runAsUser: {uid}$", values, re.M),
              f"charts/kube-sticky/values.yaml does not run the pods as the image's user {uid}")
    deployment = read(os.path.join(root, "charts/kube-sticky/templates/deployment.yaml"))
    for command in re.findall(r'command: \["([^"]+)"\]', deployment):
        check(command in image_binaries, f"the chart runs {command}, which the image does not have")

    # -- shared libraries of built binaries ---------------------------------------------------
    if binaries:
        closure = dependency_closure(runtime_packages | BASE_IMAGE_PACKAGES)
        for binary in binaries:
            for lib, package in needed_packages(binary):
                check(package in closure,
                      f"{os.path.basename(binary)} needs {lib} from {package}, which the runtime "
                      f"stage does not install (nor its dependencies or the base image)")
    else:
        print("SKIP: shared-library check (no built binaries given)")

    for f in failures:
        print(f"  check failed: {f}")
    sys.exit(1 if failures else 0)


def dependency_closure(packages):
    out = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
         "--no-breaks", "--no-replaces", "--no-enhances", *sorted(packages)],
        capture_output=True, text=True, check=True).stdout
    names = set(packages)
    for line in out.splitlines():
        line = line.strip()
        if line.startswith(("Depends:", "PreDepends:")):
            line = line.split(":", 1)[1].strip()
        elif not line or line.startswith("|") or " " in line:
            continue
        names.add(line.strip("<>").split(":")[0])
    return names


def needed_packages(binary):
    """(soname, Debian package) for every NEEDED entry of an ELF binary."""
    dynamic = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True)
    resolved = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    paths = dict(re.findall(r"^\s*(\S+) => (\S+)", resolved, re.M))
    result = []
    for soname in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic.stdout):
        path = paths.get(soname)
        if not check(path, f"{binary}: cannot resolve {soname}"):
            continue
        owner = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True)
        if owner.returncode != 0:  # usrmerge: dpkg may know the /lib path, not /usr/lib
            alt = os.path.realpath(path).replace("/usr/lib/", "/lib/", 1)
            owner = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True)
        if check(owner.returncode == 0, f"{binary}: no Debian package owns {path}"):
            result.append((soname, owner.stdout.split(":")[0].strip()))
    return result


if __name__ == "__main__":
    main()

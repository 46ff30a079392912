#!/usr/bin/env python3
"""The compiler cache on one real project (Lua 5.4, Debian's source: 33 C files, one compiler call
each), side by side in one run:

    .venv/bin/python bench/rebuild.py [--repeat 3] [--project DIR --changed FILE]

  cold    `xbuild --target rpi3` (trixie, GCC 14 cross) with an empty compiler cache
  local   the same with one file changed (src/lua.c), the cache the cold build filled
  s3      a fresh worker: an empty disk, the cold build's cache published to a real SeaweedFS by
          the farm's code (compiler_cache.publish) and fetched back (compiler_cache.fetch, timed),
          then the one-file-change build

Every build is a whole `xbuild` process (container start, copy-in, ABI gate, archive included) with
--no-cache, so each really compiles, from one folder (the compiler cache is the project's own,
found by its path: each round's fresh copy is placed there). Rounds are interleaved; prints medians, ratios to cold and
hit rates (issue 11's goals: local <= 0.3x cold; s3 >= 80% hits and <= 0.4x cold). Not lz4
(bench/common.py's project): its Makefile compiles all its sources in one compiler call, which no
compiler cache can split (ccache counts it as uncacheable)."""

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
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, origin, project_arg, source  # noqa: E402

LUA = ("lua5.4", "5.4.4", "3+deb12u1")  # bookworm's: source package, upstream version, revision
CHANGED = "src/lua.c"
# Lua's Makefile has no DESTDIR: its install goes to INSTALL_TOP.
XBUILD_TOML = """[build]
steps = ['make -j"$XBUILD_JOBS" linux', 'make install INSTALL_TOP="$XBUILD_OUT/usr/local"']
"""


def build(tree: Path, xdg: Path, jobs: int, config: str) -> tuple[float, dict]:
    if config:
        (tree / "xbuild.toml").write_text(config)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "xbuild", "--target", "rpi3", str(tree), "--jobs",
                          str(jobs), "--out", str(tree.parent / "out"), "--no-cache", "--json"],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "XDG_CACHE_HOME": str(xdg)}).stdout
    return time.perf_counter() - start, json.loads(out)["compiler_cache"]


def place(tree: Path, project: Path) -> Path:
    """The round's fresh copy at the project's one path (its compiler cache's namespace)."""
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(tree, project, symlinks=True)
    return project


def change_one_file(tree: Path, changed: str) -> None:
    path = tree / changed
    path.write_text(path.read_text() + "\n/* one line changed */\nstatic int xbuild_bench_changed;\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    project_arg(ap)  # built as it is: its own xbuild.toml, if any
    ap.add_argument("--changed", default=CHANGED, help=f"the file changed in the project (default: Lua's {CHANGED})")
    args = ap.parse_args()
    orig = origin(args.project) if args.project else source(*LUA)
    config = "" if args.project else XBUILD_TOML
    subprocess.run([sys.executable, "-m", "xbuild", "images", "build", "--target", "rpi3"],
                   check=True, stdout=subprocess.DEVNULL)  # untimed

    from tests.s3server import SeaweedFS
    from xbuild.pipeline import compiler_cache
    from xbuild.store import open_store
    work = Path(tempfile.mkdtemp(prefix="xbuild-bench-rebuild-"))
    s3 = SeaweedFS(work / "seaweedfs")
    s3.start()
    os.environ.update({k: v for k, v in s3.env("").items() if k != "XBUILD_STORE"})
    os.environ["XBUILD_STORE"] = (work / "store").as_uri()  # the build cache: never asked (--no-cache)
    store = open_store(f"s3://xbuild-bench-{uuid.uuid4().hex[:8]}/farm", create=True)
    state: dict = {"round": 0}
    stats: dict[str, list[dict]] = {"cold": [], "local": [], "s3": []}
    quiet = lambda line: None  # noqa: E731

    project = work / "lua"

    def cold(tree: Path) -> float:
        state["round"] += 1
        state["home"] = work / f"home{state['round']}"  # an empty compiler cache
        t, cc = build(place(tree, project), state["home"], args.jobs, config)
        stats["cold"].append(cc)
        state["ns"] = cc["namespace"]
        compiler_cache.publish(store, "bench", cc["namespace"],
                               state["home"] / "xbuild" / "compiler-cache" / cc["namespace"], quiet)
        return t

    def local(tree: Path) -> float:
        tree = place(tree, project)
        change_one_file(tree, args.changed)
        t, cc = build(tree, state["home"], args.jobs, config)
        stats["local"].append(cc)
        return t

    def fresh_worker(tree: Path) -> float:
        tree = place(tree, project)
        change_one_file(tree, args.changed)
        home = work / f"worker{state['round']}"
        start = time.perf_counter()
        dest = home / "xbuild" / "compiler-cache" / state["ns"]
        dest.mkdir(parents=True)
        compiler_cache.fetch(store, "bench", state["ns"], dest, quiet)
        t, cc = build(tree, home, args.jobs, config)
        stats["s3"].append(cc)
        return time.perf_counter() - start

    try:
        med = interleaved(orig, args.repeat, {"cold": cold, "local": local, "s3": fresh_worker})
    finally:
        s3.stop()
    print(f"\n{orig.name.split('.orig')[0]}, rpi3 trixie (GCC 14 cross), -j{args.jobs}, one file changed "
          f"({args.changed}), medians of {args.repeat}:")
    for name, goal in (("cold", ""), ("local", "  (goal <= 0.30x)"), ("s3", "  (goal <= 0.40x, >= 80% hits)")):
        hits = [s["hits"] / max(1, s["hits"] + s["misses"]) for s in stats[name]]
        calls = statistics.median(s["hits"] + s["misses"] for s in stats[name])
        print(f"  {name:6} {med[name]:7.2f} s  {med[name] / med['cold']:.2f}x cold  "
              f"hits {100 * statistics.median(hits):5.1f}% of {calls:.0f} compiles{goal}")


if __name__ == "__main__":
    main()

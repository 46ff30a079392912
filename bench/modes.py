#!/usr/bin/env python3
"""cross vs hybrid vs emulate, side by side in one run, on real projects from the Debian mirror:

    .venv/bin/python bench/modes.py [--repeat 3] [--only lz4|jansson] [--project DIR]

  lz4 1.9.4      a plain Makefile (the make recipe)
  jansson 2.14   autotools: autoreconf, configure, libtool, make (the autotools recipe)

Each is built for rpi3 (trixie) with `xbuild --mode cross|hybrid|emulate --no-cache` (every round
really builds), rounds interleaved so drift on the shared machine hits all three. Prints medians
and the ratios of issue 11: hybrid >= 5x faster than emulate, and within 2x of cross."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, origin, source  # noqa: E402

MODES = ("cross", "hybrid", "emulate")
# name -> (Debian source package, upstream version, Debian revision, xbuild.toml or "")
PROJECTS = {
    "lz4": ("lz4", "1.9.4", "1", ""),
    # jansson also ships a CMakeLists.txt, which the cmake recipe would pick first
    "jansson": ("jansson", "2.14", "2", '[build]\nrecipe = "autotools"\n'),
}


def xbuild(tree: Path, mode: str, jobs: int, config: str) -> float:
    if config:
        (tree / "xbuild.toml").write_text(config)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "xbuild", "--target", "rpi3", str(tree), "--mode", mode,
                          "--jobs", str(jobs), "--out", str(tree.parent / "out"), "--no-cache", "--json"],
                         capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{tree.name} --mode {mode} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    assert json.loads(out.stdout)["mode"] == mode
    return elapsed


def _projects(local: Path | None) -> dict[str, tuple[str, str, str, str]]:
    """The Debian projects, or only the local one (built as it is: its own xbuild.toml, if any)."""
    return {local.name: (local.name, "(local)", "", "")} if local else PROJECTS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--only", choices=sorted(PROJECTS))
    ap.add_argument("--project", type=Path, help="a local project directory instead of the Debian ones "
                    "(the smoke tests pass a small example: seconds, not minutes)")
    args = ap.parse_args()
    subprocess.run([sys.executable, "-m", "xbuild", "images", "build", "--target", "rpi3", "--mode",
                    "all"], check=True, stdout=subprocess.DEVNULL)  # untimed
    results = {}
    for name, (package, version, revision, config) in _projects(args.project).items():
        if args.only and name != args.only:
            continue
        print(f"== {name} {version}", flush=True)
        orig = origin(args.project) if args.project else source(package, version, revision)
        results[name] = interleaved(orig, args.repeat, {
            mode: (lambda tree, m=mode, c=config: xbuild(tree, m, args.jobs, c)) for mode in MODES})
    print(f"\nrpi3 (trixie, armhf), -j{args.jobs}, medians of {args.repeat}, whole `xbuild` runs:")
    for name, med in results.items():
        print(f"  {name:8} " + "  ".join(f"{m} {med[m]:7.2f} s" for m in MODES))
        print(f"  {'':8} emulate / hybrid = {med['emulate'] / med['hybrid']:5.2f}x (goal >= 5)   "
              f"hybrid / cross = {med['hybrid'] / med['cross']:4.2f}x (goal <= 2)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What xbuild adds to the compiler, side by side in one run, on one real project (Debian's lz4):

    .venv/bin/python bench/overhead.py [--repeat 3]

  raw    Debian's arm-linux-gnueabihf-gcc run directly on this machine (make CC=... -jN + install)
  xbuild `xbuild --target rpi3 --os bookworm` (the same GCC 12 cross compiler, in its container;
         --no-cache: every round really builds), with its per-phase times from --json

Rounds are interleaved so drift on the shared machine hits both. Prints medians, the ratio
(issue 11's goal: <= 1.05) and where xbuild's time went."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PACKAGE, VERSION, interleaved, source, timed  # noqa: E402

CROSS = "arm-linux-gnueabihf"


def raw(tree: Path, jobs: int) -> float:
    tools = f"CC={CROSS}-gcc AR={CROSS}-ar"
    dest = tree.parent / "dest"
    return timed(["sh", "-c", f"make -j{jobs} {tools} && make install {tools} DESTDIR={dest} "
                              "PREFIX=/usr/local"], cwd=tree)


def xbuild(tree: Path, jobs: int) -> tuple[float, dict]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "xbuild", "--target", "rpi3", "--os", "bookworm",
                          str(tree), "--jobs", str(jobs), "--out", str(tree.parent / "out"),
                          "--no-cache", "--json"], check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - start, json.loads(out)["timings"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    orig = source()
    subprocess.run([sys.executable, "-m", "xbuild", "images", "build", "--target", "rpi3", "--os",
                    "bookworm"], check=True, stdout=subprocess.DEVNULL)  # untimed
    phases: list[dict] = []

    def with_phases(tree: Path) -> float:
        t, timings = xbuild(tree, args.jobs)
        phases.append(timings)
        return t
    med = interleaved(orig, args.repeat, {"raw": lambda tree: raw(tree, args.jobs), "xbuild": with_phases})
    print(f"\n{PACKAGE} {VERSION}, rpi3 bookworm (GCC 12 cross), -j{args.jobs}, medians of {args.repeat}:")
    for k, v in med.items():
        print(f"  {k:7} {v:7.2f} s")
    print(f"  xbuild / raw = {med['xbuild'] / med['raw']:.3f}x   (goal: <= 1.05)")
    print("  xbuild's phases (median s): " + ", ".join(
        f"{name} {statistics.median(p.get(name, 0) for p in phases):.2f}"
        for name in sorted({k for p in phases for k in p}, key=lambda k: -phases[0].get(k, 0))))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What xbuild adds to the compiler, side by side in one run, on one real project (Debian's lz4):

    .venv/bin/python bench/overhead.py [--repeat 3] [--project DIR]

  raw        Debian's arm-linux-gnueabihf-gcc run directly on this machine (make CC=... -jN +
             install), with no flags of its own: Debian's armhf baseline (ARMv7, VFPv3-D16)
  raw+board  the same, with the board's flags that xbuild's shims add (rpi3: -mcpu=cortex-a53
             -mfpu=neon-fp-armv8 -mfloat-abi=hard): what the compiler costs for this board
  xbuild     `xbuild --target rpi3 --os bookworm` (the same GCC 12 cross compiler, in its
             container; --no-cache and --no-compiler-cache: every round really compiles), with
             its per-phase times from --json
  xbuild+ccache  the same with the compiler cache on (the default), emptied before each round

Rounds are interleaved so drift on the shared machine hits all three. Prints medians, xbuild's
ratio to the same compiler with the same flags (issue 11's goal: <= 1.05), what the board's
flags themselves cost (at -O3 they switch on NEON auto-vectorisation), and where xbuild's time
went."""

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
from common import interleaved, label, origin, project_arg, timed  # noqa: E402

CROSS = "arm-linux-gnueabihf"


def raw(tree: Path, jobs: int, flags: str = "") -> float:
    cc = f"{CROSS}-gcc {flags}".strip()
    tools = f"CC='{cc}' AR={CROSS}-ar"
    dest = tree.parent / "dest"
    return timed(["sh", "-c", f"make -j{jobs} {tools} && make install {tools} DESTDIR={dest} "
                              "PREFIX=/usr/local"], cwd=tree)


def xbuild(tree: Path, jobs: int, compiler_cache: bool = False) -> tuple[float, dict]:
    board = ["--target", "rpi3", "--os", "bookworm"]
    if compiler_cache:  # empty, as on a first build: a cold compiler cache's own cost (untimed)
        subprocess.run([sys.executable, "-m", "xbuild", "cache", "clear", *board], check=True,
                       stdout=subprocess.DEVNULL)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "xbuild", *board, str(tree), "--jobs", str(jobs),
                          "--out", str(tree.parent / "out"), "--no-cache",
                          "--compiler-cache" if compiler_cache else "--no-compiler-cache", "--json"],
                         check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - start, json.loads(out)["timings"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    project_arg(ap)  # one that honours CC, AR, DESTDIR and PREFIX, as lz4 does
    args = ap.parse_args()
    orig = origin(args.project)
    subprocess.run([sys.executable, "-m", "xbuild", "images", "build", "--target", "rpi3", "--os",
                    "bookworm"], check=True, stdout=subprocess.DEVNULL)  # untimed
    phases: list[dict] = []

    def with_phases(tree: Path) -> float:
        t, timings = xbuild(tree, args.jobs)
        phases.append(timings)
        return t
    from xbuild.board import targets
    board = " ".join(targets.get("rpi3").cflags)
    med = interleaved(orig, args.repeat, {"raw": lambda tree: raw(tree, args.jobs),
                                          "raw+board": lambda tree: raw(tree, args.jobs, board),
                                          "xbuild": with_phases,
                                          "xbuild+ccache": lambda tree: xbuild(tree, args.jobs, True)[0]})
    print(f"\n{label(orig)}, rpi3 bookworm (GCC 12 cross), -j{args.jobs}, medians of {args.repeat}:")
    for k, v in med.items():
        print(f"  {k:9} {v:7.2f} s")
    print(f"  xbuild / raw+board = {med['xbuild'] / med['raw+board']:.3f}x   (the same compiler and "
          "flags: what the container costs; goal <= 1.05)")
    print(f"  raw+board / raw    = {med['raw+board'] / med['raw']:.3f}x   (what the board's flags "
          f"cost the compiler: {board})")
    print(f"  xbuild / raw       = {med['xbuild'] / med['raw']:.3f}x")
    print(f"  xbuild+ccache / raw+board = {med['xbuild+ccache'] / med['raw+board']:.3f}x   (the "
          "default: compiler cache on, empty)")
    print("  xbuild's phases (median s): " + ", ".join(
        f"{name} {statistics.median(p.get(name, 0) for p in phases):.2f}"
        for name in sorted({k for p in phases for k in p}, key=lambda k: -phases[0].get(k, 0))))


if __name__ == "__main__":
    main()

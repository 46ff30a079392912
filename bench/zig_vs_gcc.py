#!/usr/bin/env python3
"""zig (rpi0) vs Debian's GCC (rpi3) vs native, side by side in one run, on the project
bench/cross_vs_native.py uses (Debian's lz4 source: a plain Makefile that calls cc/ar itself).

    .venv/bin/python bench/zig_vs_gcc.py [--repeat 3] [--project DIR]

Each round builds a clean copy natively on the host (make + make install), with `xbuild --target
rpi3` (Debian's armhf cross GCC) and with `xbuild --target rpi0` (zig for the arm1176, Raspberry Pi
OS armhf); container start, copy-in and collection are included. Images are built first and not
timed (zig's C runtime for the board is built when its image is made). Prints medians and ratios;
the machine is shared and noisy, so only the ratios mean anything. Also the bytes of the ELF files
each board's build ships (zig's runtime once brought its debug information along: 16x gcc's)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, label, origin, project_arg, timed  # noqa: E402
from cross_vs_native import native  # noqa: E402

KINDS = {"native": None, "rpi3 (gcc)": "rpi3", "rpi0 (zig)": "rpi0"}
ELF_BYTES: dict[str, int] = {}  # target -> bytes of the ELF files its last build shipped


def xbuild(tree: Path, target: str, jobs: int) -> float:
    out = tree.parent / f"out-{target}"
    # --no-cache: every round really builds (the same sources would otherwise be a cache hit)
    seconds = timed([sys.executable, "-m", "xbuild", "--target", target, str(tree), "--jobs", str(jobs),
                     "--out", str(out), "--no-cache"])
    files = json.loads((out / "manifest.json").read_text())["files"]
    ELF_BYTES[target] = sum(f["size"] for f in files if "elf" in f)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    project_arg(ap)
    args = ap.parse_args()

    orig = origin(args.project)
    for target in ("rpi3", "rpi0"):  # images first, untimed
        subprocess.run([sys.executable, "-m", "xbuild", "images", "build", "--target", target],
                       check=True, stdout=subprocess.DEVNULL)
    med = interleaved(orig, args.repeat, {
        kind: (lambda tree, t=target: native(tree, args.jobs) if t is None else xbuild(tree, t, args.jobs))
        for kind, target in KINDS.items()})
    print(f"\n{label(orig)}, -j{args.jobs}, medians of {args.repeat}:")
    for k, v in med.items():
        print(f"  {k:11} {v:7.2f} s")
    print(f"  rpi0 (zig) / rpi3 (gcc) = {med['rpi0 (zig)'] / med['rpi3 (gcc)']:.2f}x")
    print(f"  rpi0 (zig) / native     = {med['rpi0 (zig)'] / med['native']:.2f}x")
    print(f"  rpi3 (gcc) / native     = {med['rpi3 (gcc)'] / med['native']:.2f}x")
    print(f"ELF bytes shipped: rpi0 (zig) {ELF_BYTES['rpi0']:,}, rpi3 (gcc) {ELF_BYTES['rpi3']:,}, "
          f"ratio {ELF_BYTES['rpi0'] / ELF_BYTES['rpi3']:.2f}x")


if __name__ == "__main__":
    main()

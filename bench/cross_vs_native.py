#!/usr/bin/env python3
"""Cross vs native vs emulate, side by side in one run, on one real project (Debian's lz4 source:
a plain Makefile that calls cc/ar itself, libraries + a program).

    .venv/bin/python bench/cross_vs_native.py [--target rpi3] [--repeat 3] [--no-emulate] [--project DIR]

Each round builds from a clean copy: natively on the host (make + make install), with
`xbuild --mode cross` (container start, copy-in and collection included) and, once, with
`xbuild --mode emulate`. Images are built first and not timed. Prints medians and the ratios; the
machine is shared and noisy, so only the ratios mean anything."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_tree, label, origin, project_arg, timed  # noqa: E402


def native(tree: Path, jobs: int) -> float:
    dest = tree.parent / "dest"
    return timed(["sh", "-c", f"make -j{jobs} && make install DESTDIR={dest} PREFIX=/usr/local"], cwd=tree)


def xbuild(tree: Path, target: str, mode: str, jobs: int) -> float:
    # --no-cache: every round really builds (the same sources would otherwise be a cache hit)
    return timed([sys.executable, "-m", "xbuild", "--target", target, str(tree), "--mode", mode,
                  "--jobs", str(jobs), "--out", str(tree.parent / f"out-{mode}"), "--no-cache"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="rpi3")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--no-emulate", action="store_true")
    project_arg(ap)
    args = ap.parse_args()

    orig = origin(args.project)
    modes = ["cross"] + ([] if args.no_emulate else ["emulate"])
    for mode in modes:  # images first, untimed
        subprocess.run([sys.executable, "-m", "xbuild", "images", "build", "--target", args.target,
                        "--mode", mode], check=True, stdout=subprocess.DEVNULL)
    times: dict[str, list[float]] = {"native": [], "cross": [], "emulate": []}
    for n in range(args.repeat):
        for kind in ("native", "cross"):  # interleaved, so drift on the shared machine hits both
            with tempfile.TemporaryDirectory() as tmp:
                tree = fresh_tree(orig, Path(tmp))
                t = native(tree, args.jobs) if kind == "native" else xbuild(tree, args.target, "cross", args.jobs)
                times[kind].append(t)
                print(f"round {n + 1}: {kind:8} {t:7.2f} s", flush=True)
    if not args.no_emulate:
        with tempfile.TemporaryDirectory() as tmp:
            t = xbuild(fresh_tree(orig, Path(tmp)), args.target, "emulate", args.jobs)
            times["emulate"].append(t)
            print(f"once:    emulate  {t:7.2f} s", flush=True)

    med = {k: statistics.median(v) for k, v in times.items() if v}
    print(f"\n{label(orig)} for {args.target}, -j{args.jobs}, medians of {args.repeat}:")
    for k, v in med.items():
        print(f"  {k:8} {v:7.2f} s")
    print(f"  cross / native  = {med['cross'] / med['native']:.2f}x   (goal: <= 1.3)")
    if "emulate" in med:
        print(f"  emulate / cross = {med['emulate'] / med['cross']:.1f}x   (goal: >= 8)")


if __name__ == "__main__":
    main()

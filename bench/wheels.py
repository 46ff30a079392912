#!/usr/bin/env python3
"""Python wheels, cross vs emulate, side by side in one run, on real C-extension sdists from PyPI:

    .venv/bin/python bench/wheels.py [--target rpi3] [--repeat 1] [--json] [--project DIR] [SDIST...]

  cross    the default: the build machine's python3 aimed at the board's sysconfig, Debian's
           cross compiler, no qemu
  emulate  `--mode emulate`: the whole build under qemu in the board's root filesystem, which is
           what cibuildwheel does for ARM

Each sdist (default: msgpack, markupsafe, ujson; `pypi:NAME==VERSION`, no -dev package needed) is
built with `xbuild --target BOARD pypi:SDIST --no-cache --no-compiler-cache --json` (neither the
build cache nor ccache answers: every round really compiles), cross and emulate interleaved so
drift on the shared machine hits both. Before timing, untimed: a build per mode of a small
example (the builder images), and a cross build of each sdist (the sdist and its build
requirements fetched, and each checked to build). The figures are the builds' own `duration`
from --json, with the `timings` of their phases. Prints medians, emulate / cross per sdist and
their geometric mean (issue 19's goal: >= 5x); --json prints it all as one JSON object instead
(the table then goes to stderr)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.helpers import EXAMPLES, xbuild  # noqa: E402

MODES = ("cross", "emulate")
SDISTS = ("msgpack==1.1.0", "markupsafe==3.0.2", "ujson==5.10.0")
WARM_UP = EXAMPLES / "python-crc"  # the python recipe's images, as the sdists' builds use them


def build(source: str, target: str, mode: str, jobs: int) -> dict:
    """One real build (no build cache, no ccache); its --json report."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = xbuild("--target", target, source, "--mode", mode, "--jobs", jobs, "--out", Path(tmp) / "out",
                      "--no-cache", "--no-compiler-cache", "--json", timeout=3600)
    if proc.returncode != 0:
        sys.exit(f"{source} --mode {mode} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    assert report["mode"] == mode and report["cache"] == "miss", report
    return report


def label(source: str) -> str:
    """msgpack==1.1.0 -> msgpack 1.1.0; a local project by its directory's name."""
    return source.removeprefix("pypi:").replace("==", " ") if source.startswith("pypi:") else Path(source).name


def rounds(sources: list[str], args: argparse.Namespace, log) -> dict[str, dict[str, list[dict]]]:
    """Every source in both modes, round after round, interleaved; source -> mode -> reports."""
    reports: dict[str, dict[str, list[dict]]] = {s: {m: [] for m in MODES} for s in sources}
    width = max(len(label(s)) for s in sources)
    for n in range(args.repeat):
        for source in sources:
            for mode in MODES:
                report = build(source, args.target, mode, args.jobs)
                reports[source][mode].append(report)
                log(f"round {n + 1}: {label(source):{width}} {mode:7} {report['duration']:7.2f} s "
                    f"(build step {report['timings'].get('build', 0):7.2f} s)")
    return reports


def summary(reports: dict[str, dict[str, list[dict]]]) -> dict:
    """Medians per source and mode (whole build, build step, every phase) and the ratios."""
    out: dict = {"projects": []}
    for source, by_mode in reports.items():
        row: dict = {"source": source, "label": label(source)}
        for mode, rs in by_mode.items():
            phases = sorted({k for r in rs for k in r["timings"]})
            row[mode] = {"durations": [r["duration"] for r in rs],
                         "median": statistics.median(r["duration"] for r in rs),
                         "timings": {k: statistics.median(r["timings"].get(k, 0.0) for r in rs) for k in phases},
                         "artifacts": [Path(a["path"]).name for a in rs[0]["artifacts"]]}
        row["ratio"] = row["emulate"]["median"] / row["cross"]["median"]
        row["build_step_ratio"] = row["emulate"]["timings"]["build"] / row["cross"]["timings"]["build"]
        out["projects"].append(row)
    out["geometric_mean"] = statistics.geometric_mean(p["ratio"] for p in out["projects"])
    out["build_step_geometric_mean"] = statistics.geometric_mean(p["build_step_ratio"] for p in out["projects"])
    # what would show image building in the figures (the warm-up should leave it near 0)
    out["image_phase_max"] = max(r["timings"].get("image", 0.0) for by_mode in reports.values()
                                 for rs in by_mode.values() for r in rs)
    return out


def table(result: dict, log) -> None:
    log(f"\n{result['target']} ({result['os']}), -j{result['jobs']}, medians of {result['repeat']}, "
        "whole builds (--json duration; --no-cache --no-compiler-cache)\nand their build step alone "
        "(--json timings: the recipe's steps in the container):")
    width = max(len(p["label"]) for p in result["projects"])
    log(f"  {'':{width}} {'cross':>10} {'emulate':>10} {'emul/cross':>11}   {'step cross':>10} "
        f"{'emulate':>10} {'emul/cross':>11}")
    for p in result["projects"]:
        c, e = p["cross"], p["emulate"]
        log(f"  {p['label']:{width}} {c['median']:8.2f} s {e['median']:8.2f} s {p['ratio']:10.2f}x   "
            f"{c['timings']['build']:8.2f} s {e['timings']['build']:8.2f} s {p['build_step_ratio']:10.2f}x")
    log(f"  geometric mean: emulate / cross = {result['geometric_mean']:.2f}x (goal >= 5), build step "
        f"{result['build_step_geometric_mean']:.2f}x")
    log(f"  image phase in the timed builds: at most {result['image_phase_max']:.2f} s (the warm-up made them)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sdists", nargs="*", metavar="SDIST", default=list(SDISTS),
                    help=f"NAME==VERSION on the package index [default: {' '.join(SDISTS)}]")
    ap.add_argument("--target", default="rpi3")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--project", type=Path, help="a local Python project instead of the sdists (the smoke "
                    "tests pass examples/python-crc: a minute, not many)")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object (the table "
                    "goes to stderr)")
    args = ap.parse_args()
    out = sys.stderr if args.json else sys.stdout

    def log(line: str) -> None:
        print(line, file=out, flush=True)

    sources = [str(args.project.resolve())] if args.project else [f"pypi:{s}" for s in args.sdists]
    # untimed: the images of both modes, then each sdist fetched and checked to build (cross is cheap)
    for mode in MODES:
        log(f"warm-up: {label(str(args.project or WARM_UP))} --mode {mode} (untimed)")
        build(str((args.project or WARM_UP).resolve()), args.target, mode, args.jobs)
    if not args.project:
        for source in sources:
            log(f"warm-up: {label(source)} --mode cross (untimed)")
            build(source, args.target, "cross", args.jobs)
    reports = rounds(sources, args, log)
    first = next(iter(reports.values()))["cross"][0]
    result = {"target": first["target"], "os": first["os"], "jobs": args.jobs, "repeat": args.repeat,
              **summary(reports)}
    table(result, log)
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

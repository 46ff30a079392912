#!/usr/bin/env python3
"""A Rust project through xbuild against cargo run directly, side by side in one run:

    .venv/bin/python bench/rust.py [--target rpi3] [--repeat 3] [--crates 8] [--modules 12] [--json]

  xbuild   `xbuild --target BOARD project --no-cache --json`: the whole process (inputs, crates,
           container start, copy-in, cargo, collect, ABI gate, depends, archive), with the compiler
           cache on (cargo's target directory lives in its tools/ subtree, XBUILD_TOOL_CACHE)
  cargo    `docker exec` of the same cargo command line and target environment (pipeline/cargo.py)
           in an already running, offline container of the same builder image (the one xbuild's
           build ran in, by id), the project and a target directory mounted: cargo alone, as on a
           host with that toolchain installed (the container's start is not timed; this machine
           has no Rust of its own, and Debian's host rustc is another version)

Two cases per round, each for both: `cold` (an empty compiler cache / target directory) and
`one-file` (c0/src/m0.rs changed, the cold build's cache / target directory kept). No crates.io
here: the project is generated (a workspace of --crates library crates of --modules files of generic
code each, std only, and the binary using them). Rounds interleave the two so
drift on the shared machine hits both; prints medians and xbuild / cargo per case (--json: all of
it as one JSON object, the table on stderr). What the ratio measures is xbuild's fixed cost
around cargo: on a cold build it is diluted by the compile, on a one-file rebuild it is most of it."""

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = ("cold", "one-file")
MODULE = """use std::collections::BTreeMap;
pub const SEED{n}: u64 = {seed};
pub fn work{n}<T: Into<u64> + Copy>(xs: &[T]) -> u64 {{
    let mut m: BTreeMap<u64, u64> = BTreeMap::new();
    for (i, x) in xs.iter().enumerate() {{
        *m.entry((*x).into() % 97).or_default() += (i as u64).wrapping_mul(SEED{n});
    }}
    m.values().fold(SEED{n}, |a, v| a.rotate_left(7) ^ v)
}}
pub fn text{n}(s: &str) -> String {{ s.chars().rev().map(|c| c.to_ascii_uppercase()).collect() }}
"""


def make_project(root: Path, crates: int, modules: int) -> Path:
    """A workspace as Rust projects are split: `crates` library crates of `modules` files each
    (path dependencies), and the binary that uses them all. Cargo compiles a crate at a time:
    a one-file change recompiles that crate and the binary, not the others."""
    members = [f"c{k}" for k in range(crates)]
    deps = "".join(f'{m} = {{ path = "{m}" }}\n' for m in members)
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text('[package]\nname = "benchrs"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                     f"[dependencies]\n{deps}\n[workspace]\n")
    for m in members:
        (root / m / "src").mkdir(parents=True)
        (root / m / "Cargo.toml").write_text(f'[package]\nname = "{m}"\nversion = "0.1.0"\nedition = "2021"\n')
        (root / m / "src" / "lib.rs").write_text("".join(f"pub mod m{n};\n" for n in range(modules)))
        for n in range(modules):
            (root / m / "src" / f"m{n}.rs").write_text(MODULE.format(n=n, seed=n * 7919 + len(m)))
    calls = "".join(f"    t ^= {m}::m{n}::work{n}(&v); s.push_str(&{m}::m{n}::text{n}(\"ab\"));\n"
                    for m in members for n in range(modules))
    (root / "src" / "main.rs").write_text(
        "fn main() {\n    let v: Vec<u32> = (1..1000).collect();\n    let mut t = 0u64;\n"
        + "    let mut s = String::new();\n" + calls + '    println!("{} {}", t, s.len());\n}\n')
    return root


def change(project: Path, n: int) -> None:
    """One file changed as an edit does: its code, not only its time stamp."""
    path = project / "c0" / "src" / "m0.rs"
    path.write_text(path.read_text().replace("SEED0: u64 = ", f"SEED0: u64 = {n + 2} * "))


def run_xbuild(project: Path, target: str, xdg: Path, jobs: int) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "xbuild", "--target", target, str(project), "--jobs", str(jobs),
                           "--out", str(project.parent / "out"), "--no-cache", "--json"],
                          capture_output=True, text=True, env={**os.environ, "XDG_CACHE_HOME": str(xdg)})
    if proc.returncode != 0:
        sys.exit(f"xbuild failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, json.loads(proc.stdout)


def cargo_env(target_name: str) -> dict[str, str]:
    """pipeline/cargo.py's environment for the board, with the build machine's own linker (this
    project has no build script: nothing needs xbuild's host linker wrapper)."""
    from xbuild.board import targets
    from xbuild.pipeline import cargo
    env = {k: v for k, v in cargo.environment(targets.get(target_name)).items() if v != cargo.HOST_LINKER}
    return {**env, "CARGO_HOME": "/tmp/cargo-home", "CARGO_TARGET_DIR": "/target"}


def start_cargo_box(project: Path, target_dir: Path, image: str, target: str) -> str:
    """An offline container of the image, idle, with the project and the target directory mounted
    and the board's cargo environment: cargo runs in it by `docker exec` (its start untimed)."""
    env = cargo_env(target)
    proc = subprocess.run(["docker", "run", "-d", "--rm", "--network", "none", "-v", f"{project}:/src",
                           "-v", f"{target_dir}:/target", "-w", "/src",
                           *[a for k, v in env.items() for a in ("-e", f"{k}={v}")], image, "sleep", "infinity"],
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def run_cargo(box: str, jobs: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run(["docker", "exec", box, "cargo", "build", "--offline", "--release", "--jobs", str(jobs)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"cargo in {box[:12]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def rounds(args: argparse.Namespace, log) -> tuple[dict, str]:
    times: dict = {tool: {case: [] for case in CASES} for tool in ("xbuild", "cargo")}
    image = ""
    with tempfile.TemporaryDirectory(prefix="bench-rust-") as tmp:
        base = Path(tmp)
        # Untimed: the builder image (and its Rust layer) made or found, and checked to build; with
        # it xbuild's per-image caches (the image's package inventory, shlibs, symbols), as after
        # any first build on a machine. Each round's project is at a new path: a new, empty
        # compiler-cache namespace (cargo's target directory) in the one cache directory.
        xdg = base / "xdg"
        warm = make_project(base / "warm" / "benchrs", 1, 1)
        _, report = run_xbuild(warm, args.target, xdg, args.jobs)
        image = report["image"]
        for n in range(args.repeat):
            for tool in ("xbuild", "cargo"):
                work = base / f"{tool}-{n}"
                project = make_project(work / "benchrs", args.crates, args.modules)
                box = ""
                if tool == "cargo":
                    (work / "target").mkdir()
                    box = start_cargo_box(project, (work / "target").resolve(), image, args.target)
                try:
                    for case in CASES:
                        if case == "one-file":
                            change(project, n)
                        if tool == "xbuild":
                            seconds, report = run_xbuild(project, args.target, xdg, args.jobs)
                        else:
                            seconds = run_cargo(box, args.jobs)
                        times[tool][case].append(seconds)
                        log(f"round {n + 1}: {tool:6} {case:8} {seconds:7.2f} s")
                finally:
                    if box:
                        subprocess.run(["docker", "rm", "-f", box], capture_output=True)
                # what the container wrote as root, gone with the round
                subprocess.run(["docker", "run", "--rm", "-v", f"{work}:/w", image, "rm", "-rf", "/w/target",
                                "/w/out"], capture_output=True)
                shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["docker", "run", "--rm", "-v", f"{base}:/w", image, "rm", "-rf", "/w/xdg"],
                       capture_output=True)
    return times, image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="rpi3")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--crates", type=int, default=8)
    parser.add_argument("--modules", type=int, default=12, help="files per crate")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = sys.stderr if args.json else sys.stdout

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    times, image = rounds(args, log)
    summary = {"target": args.target, "crates": args.crates, "modules": args.modules, "repeat": args.repeat,
               "image": image, "cases": {}}
    print(f"{args.target}, {args.crates} crates x {args.modules} files, {args.repeat} round(s); "
          f"cargo by docker exec in a running container of {image[:19]}",
          file=out)
    print(f"  {'case':8} {'xbuild':>9} {'cargo':>9} {'xbuild / cargo':>15}", file=out)
    for case in CASES:
        x, c = statistics.median(times["xbuild"][case]), statistics.median(times["cargo"][case])
        summary["cases"][case] = {"xbuild": times["xbuild"][case], "cargo": times["cargo"][case],
                                  "median_xbuild": x, "median_cargo": c, "ratio": x / c}
        print(f"  {case:8} {x:7.2f} s {c:7.2f} s {x / c:14.2f}x", file=out)
    if args.json:
        print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()

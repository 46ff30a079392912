#!/usr/bin/env python3
"""Is the compiler slower in xbuild's container? CPU time, not wall time (this machine is shared:
CPU seconds move far less with the load than wall seconds), side by side in one run:

    .venv/bin/python bench/compile_cpu.py [--repeat 2] [--project DIR]

The same lz4 build (make -j2 + install, the board's flags) measured by bash's `times` (the
children's user + sys seconds) in four places:

  host           Debian's arm-linux-gnueabihf-gcc run directly on this machine
  docker         the same command in xbuild's rpi3 bookworm cross builder image (`docker run`)
  xbuild-shim    `xbuild --target rpi3 --os bookworm` with that command as its step, the compiler
                 reached through xbuild's shims (they add the board's flags and -ffile-prefix-map)
  xbuild-direct  the same, the compiler called by its full path with the flags written out

Prints medians and ratios to the host: ~1.00 says the compile costs the same everywhere, and what
xbuild adds is the fixed cost per build that bench/overhead.py itemises."""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_tree, label, origin, project_arg  # noqa: E402

CROSS = "arm-linux-gnueabihf"
BOARD = ["--target", "rpi3", "--os", "bookworm"]
_TIMES = re.compile(r"^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$")


def command(cc: str, dest: str = "/tmp/dest") -> str:
    tools = f"CC='{cc}' AR={CROSS}-ar"
    return (f"make -j2 {tools} >/dev/null && make install {tools} DESTDIR={dest} PREFIX=/usr/local "
            ">/dev/null; times")


def cpu_seconds(output: str) -> float:
    """The children's user + sys time: the last line of `times`."""
    rows = [m for line in output.splitlines() if (m := _TIMES.match(line.strip()))]
    um, us, sm, ss = rows[-1].groups()
    return int(um) * 60 + float(us) + int(sm) * 60 + float(ss)


def host(tree: Path, cc: str) -> float:
    return cpu_seconds(subprocess.run(["bash", "-c", command(cc)], cwd=tree, capture_output=True,
                                      text=True, check=True).stdout)


def docker(tree: Path, cc: str, image: str) -> float:
    subprocess.run(["chmod", "-R", "a+rwX", str(tree)], check=True)  # the image's user 1000 writes
    return cpu_seconds(subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--user", "1000:1000", "-v", f"{tree}:/src",
         "-w", "/src", image, "bash", "-c", command(cc)], capture_output=True, text=True, check=True).stdout)


def xbuild(tree: Path, cc: str) -> float:
    step = "bash -c " + json.dumps(command(cc, "$XBUILD_OUT"))
    (tree / "xbuild.toml").write_text(f"[build]\nsteps = [{json.dumps(step)}]\n")
    out = subprocess.run([sys.executable, "-m", "xbuild", *BOARD, str(tree), "--out", str(tree.parent / "out"),
                          "--no-cache", "--no-compiler-cache", "--json"], capture_output=True, text=True, check=True)
    return cpu_seconds(Path(json.loads(out.stdout)["log"]).read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    project_arg(ap)  # one that honours CC, AR, DESTDIR and PREFIX, as lz4 does
    args = ap.parse_args()
    from xbuild.board import targets
    from xbuild.containers import images
    from xbuild.request import Mode
    from xbuild.toolchain import pick
    target = targets.get("rpi3").with_os("bookworm")
    image = images.builder(pick(target, Mode.CROSS), print).tag  # untimed: made once if missing
    flags = " ".join(target.cflags)
    runs = {"host": lambda tree: host(tree, f"{CROSS}-gcc {flags}"),
            "docker": lambda tree: docker(tree, f"{CROSS}-gcc {flags}", image),
            "xbuild-shim": lambda tree: xbuild(tree, f"{CROSS}-gcc"),
            "xbuild-direct": lambda tree: xbuild(tree, f"/usr/bin/{CROSS}-gcc {flags}")}
    orig = origin(args.project)
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for n in range(args.repeat):
        for name, run in runs.items():
            with tempfile.TemporaryDirectory() as tmp:
                seconds[name].append(run(fresh_tree(orig, Path(tmp))))
            print(f"round {n + 1}: {name:13} {seconds[name][-1]:6.2f} CPU s", flush=True)
    base = statistics.median(seconds["host"])
    print(f"\n{label(orig)}, rpi3 bookworm (GCC 12 cross, {flags}), CPU seconds, medians of {args.repeat}:")
    for name, values in seconds.items():
        print(f"  {name:13} {statistics.median(values):6.2f} s  {statistics.median(values) / base:.3f}x host")


if __name__ == "__main__":
    main()

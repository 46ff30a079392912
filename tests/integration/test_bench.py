"""Every bench/ script, run as a user runs it, at its smallest size (issue 18, item 10): a bench that
nobody ran for a month had rotted (soak.py and service.py imported test helpers that had moved).
Each smoke run takes seconds: a small example project instead of Debian's sources (--project), one
round (--repeat 1), a couple of builds for the farms; images.py, whose bootstrap takes minutes,
only as a --dry-run. What is asserted is the shape of the report (its ratio and summary lines are
printed, with numbers), never a time: these runs are too small and the machine too shared for
figures to mean anything. Real engine, real images (those the suite builds anyway: rpi3 cross,
emulate and hybrid, rpi3 bookworm, rpi0 zig), real Redis and SeaweedFS where a script starts them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.helpers import EXAMPLES, ROOT

pytestmark = pytest.mark.integration

NUM = r"[\d.]+"
HELLO = str(EXAMPLES / "hello-make")
SHARED = str(EXAMPLES / "shared-lib")  # honours CC, AR, DESTDIR and PREFIX, as lz4 does

# script -> (its smallest size's arguments, lines its report must have)
SMOKE: dict[str, tuple[list[str], list[str]]] = {
    "cache_hit": (["--repeat", "1", "--extra-mb", "1", "--project", HELLO],
                  [rf"cold / hit +{NUM}x", rf"cache hit \+ --publish s3:// +{NUM} s",
                   rf"\+1 MiB tree, cache hit +{NUM} s"]),
    "compile_cpu": (["--repeat", "1", "--project", SHARED],
                    [rf"^  {kind} +{NUM} s +{NUM}x host$" for kind in ("host", "docker", "xbuild-shim",
                                                                        "xbuild-direct")]),
    "cross_vs_native": (["--repeat", "1", "--project", HELLO],
                        [rf"cross / native += {NUM}x", rf"emulate / cross = {NUM}x"]),
    "go": (["--repeat", "1", "--packages", "3"],
           [rf"cold: xbuild / go build = {NUM}x", rf"rebuild: xbuild / go build = {NUM}x"]),
    "images": (["--dry-run"], [r"^rpi3 cross builder xbuild/builder:\S+ \(salt bench-images-\w+\)$",
                               r"dry run: would bootstrap, push and pull \d+ image\(s\) to s3://"]),
    "modes": (["--repeat", "1", "--project", HELLO],
              [rf"emulate / hybrid = +{NUM}x .* hybrid / cross = +{NUM}x"]),
    "overhead": (["--repeat", "1", "--project", SHARED],
                 [rf"xbuild / raw\+board = {NUM}x", rf"raw\+board / raw += {NUM}x",
                  rf"xbuild\+ccache / raw\+board = {NUM}x", rf"xbuild's phases \(median s\): .*build {NUM}"]),
    "rebuild": (["--repeat", "1", "--project", HELLO, "--changed", "hello.c"],
                [rf"^  {kind} +{NUM} s +{NUM}x cold +hits +{NUM}% of \d+ compiles"
                 for kind in ("cold", "local", "s3")]),
    # a generated std-only project (no crates.io here), rpi3's Rust image (test_rust.py's)
    "rust": (["--repeat", "1", "--crates", "2", "--modules", "2"],
             [rf"^  {case} +{NUM} s +{NUM} s +{NUM}x$" for case in ("cold", "one-file")]),
    "service": (["--repeat", "1", "--builds", "1", "--workers", "1"],
                [rf"service overhead, cold: +\+{NUM} s", rf"service overhead, cached: +\+{NUM} s",
                 rf"1 worker\(s\): +{NUM} builds/min"]),
    # a couple of builds through the farm; its faults are test_faults.py's (soak() itself, smaller)
    "soak": (["--builds", "2", "--clients", "1", "--workers", "1", "--faults", "none"],
             [r"^faults: none$", r"^lost \(.*\): 0$", r"^jobs the workers ran: \d+ for 2 builds$",
              rf"submit-to-done latency .*: p50 {NUM} s, p95 {NUM} s"]),
    # a small C extension (setuptools) instead of PyPI's sdists: one wheel per mode, untimed warm-ups
    "wheels": (["--repeat", "1", "--project", str(EXAMPLES / "python-crc")],
               [rf"^  python-crc +{NUM} s +{NUM} s +{NUM}x +{NUM} s +{NUM} s +{NUM}x$",
                rf"geometric mean: emulate / cross = {NUM}x"]),
    "zig_vs_gcc": (["--repeat", "1", "--project", HELLO],
                   [rf"rpi0 \(zig\) / rpi3 \(gcc\) = {NUM}x", rf"rpi3 \(gcc\) / native += {NUM}x",
                    r"ELF bytes shipped: rpi0 \(zig\) [\d,]+, rpi3 \(gcc\) [\d,]+, ratio [\d.]+x"]),
}


def test_every_bench_script_has_a_smoke_run():
    scripts = {p.stem for p in (ROOT / "bench").glob("*.py")} - {"__init__", "common"}
    assert scripts == set(SMOKE)


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_bench_script_runs_at_its_smallest_size(engine, script, tmp_path):
    args, lines = SMOKE[script]
    # TMPDIR: what a bench leaves in its temporary directories (soak's logs) stays in the test's.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    if script == "overhead":
        # it empties rpi3 bookworm's compiler caches (`xbuild cache clear`): its own, not the user's
        env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / f"{script}.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800, env=env)
    assert proc.returncode == 0, \
        f"bench/{script}.py failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    missing = [line for line in lines if not re.search(line, proc.stdout, re.MULTILINE)]
    assert not missing, f"bench/{script}.py printed no line like {missing}:\n{proc.stdout}"

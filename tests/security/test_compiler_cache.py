"""The compiler cache against a hostile build (issue 16, items 3 and 4): what one build writes
into /ccache must not change what another project's build produces, must not configure ccache
for later builds, and must not block them. Real CLI, real engine, the images' real ccache; each
project is a real C program whose artifact is read back."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.helpers import make_project

pytestmark = [pytest.mark.security, pytest.mark.integration]
BOUND = 300  # seconds a build may take here before the test calls it hung (its own limit: 900)


def _program(word: str, steps: list[str] | None = None) -> dict[str, str]:
    files = {"hello.c": f'#include <stdio.h>\nint main(void) {{ puts("{word}"); return 0; }}\n',
             "Makefile": "hello: hello.o\n\t$(CC) -o $@ $^\n"
                         "install: hello\n\tinstall -D -m755 hello $(DESTDIR)$(PREFIX)/bin/hello\n"}
    if steps is not None:  # TOML literal strings: the shell's double quotes pass as they are
        files["xbuild.toml"] = ("[build]\nsteps = [" + ", ".join(f"'{s}'" for s in steps) + "]\n"
                                'artifacts = ["hello"]\n')
    return files


def _xbuild(project: Path, out: Path, home: dict) -> dict:
    """One build through the real CLI; a build still running after BOUND seconds is stopped as a
    user would (SIGTERM: xbuild removes its container) and fails the test."""
    env = {**{k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"}, **home}
    proc = subprocess.Popen([sys.executable, "-m", "xbuild", "--target", "rpi3", str(project), "--out",
                             str(out), "--no-cache", "--timeout", "900", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        stdout, stderr = proc.communicate(timeout=BOUND)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
        pytest.fail(f"the build of {project.name} hung (stopped after {BOUND} s): {stderr[-2000:]}")
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads(stdout)


def _shipped(result: dict) -> bytes:
    """The bytes of every file in the build's archive."""
    [archive] = [a["path"] for a in result["artifacts"] if a["path"].endswith(".tar.gz")]
    data = b""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(Path(archive).read_bytes()))) as tar:
        for member in tar.getmembers():
            f = tar.extractfile(member) if member.isfile() else None
            data += f.read() if f else b""
    return data


@pytest.fixture
def home(tmp_path):
    """This test's own user cache directory: its compiler caches start empty."""
    return {"XDG_CACHE_HOME": str(tmp_path / "xdg")}


def test_a_build_cannot_swap_another_projects_cached_objects(engine, tmp_path, home):
    victim = make_project(tmp_path / "victim", _program("VICTIM-OWN-CODE"))
    first = _xbuild(victim, tmp_path / "v1", home)
    assert b"VICTIM-OWN-CODE" in _shipped(first) and first["compiler_cache"]["misses"] == 1
    # The attacker compiles its own hello.c, then copies its result file over every older one
    # it can see in /ccache: on a shared cache, the victim's entry for its hello.c.
    poison = ("mine=$(find /ccache -name \"*R\" -newer /xbuild/stamp | head -n1); "
              "for r in $(find /ccache -name \"*R\" ! -newer /xbuild/stamp); do cp \"$mine\" \"$r\"; done")
    attacker = make_project(tmp_path / "attacker", _program("ATTACKER-CODE", ["make hello", poison]))
    _xbuild(attacker, tmp_path / "a1", home)

    again = _xbuild(victim, tmp_path / "v2", home)
    shipped = _shipped(again)
    assert b"ATTACKER-CODE" not in shipped and b"VICTIM-OWN-CODE" in shipped
    assert again["artifacts"][0]["sha256"] == first["artifacts"][0]["sha256"]
    # and a rebuild of the same project still answers from its own cache
    assert (again["compiler_cache"]["hits"], again["compiler_cache"]["misses"]) == (1, 0)


def test_a_build_cannot_configure_ccache_for_later_builds(engine, tmp_path, home):
    """prefix_command in /ccache/ccache.conf: a script of the build's choosing wrapped around
    every later compile. Not in another project's build, nor in the same project's next one."""
    plant = ("printf \"#!/bin/sh\\ntouch /ccache/PREFIX-RAN\\nexec \\\"\\$@\\\"\\n\" > /ccache/p.sh && "
             "chmod 755 /ccache/p.sh && printf \"prefix_command=/ccache/p.sh\\n\" >> /ccache/ccache.conf")
    project = make_project(tmp_path / "planter", _program("PLANTER", ["make hello", plant]))
    _xbuild(project, tmp_path / "p1", home)
    xdg = Path(home["XDG_CACHE_HOME"])
    [conf] = xdg.rglob("ccache.conf")
    assert "prefix_command=/ccache/p.sh" in conf.read_text()  # planted (and left: never read)

    (project / "hello.c").write_text((project / "hello.c").read_text().replace("PLANTER", "CHANGED"))
    (project / "xbuild.toml").unlink()  # the same project, now harmless: a plain make build
    changed = _xbuild(project, tmp_path / "p2", home)
    other = _xbuild(make_project(tmp_path / "other", _program("OTHER")), tmp_path / "o1", home)
    assert changed["compiler_cache"]["misses"] == 1 and other["compiler_cache"]["misses"] == 1
    assert not list(xdg.rglob("PREFIX-RAN")), "a later build ran the script a build planted"


def test_a_fifo_in_the_cache_does_not_hang_later_builds(engine, tmp_path, home):
    """FIFOs where ccache keeps its counters (every first-level directory): later compiles and
    `ccache --print-stats` would block opening them until the build's time limit."""
    fifos = ("for d in 0 1 2 3 4 5 6 7 8 9 a b c d e f; do mkdir -p /ccache/$d; "
             "rm -f /ccache/$d/stats; mkfifo /ccache/$d/stats; done")
    project = make_project(tmp_path / "fifo", _program("FIFO", ["make hello", fifos]))
    ns = _xbuild(project, tmp_path / "f1", home)["compiler_cache"]["namespace"]  # its own last ccache
    cache_dir = Path(home["XDG_CACHE_HOME"], "xbuild", "compiler-cache", ns)      # calls are bounded too
    assert cache_dir.is_dir()
    assert not [p for p in cache_dir.rglob("*") if p.is_fifo()]  # removed as soon as it ended
    # as a build of the same cache still running could leave them: the host's reader of the tree
    # neither blocks on them nor counts them, and the next build starts without them
    for d in "0123456789abcdef":
        (cache_dir / d).mkdir(exist_ok=True)
        (cache_dir / d / "stats").unlink(missing_ok=True)
        os.mkfifo(cache_dir / d / "stats")
    stats = subprocess.run([sys.executable, "-m", "xbuild", "cache", "stats", "--json"], capture_output=True,
                           text=True, timeout=120, env={**os.environ, **home})
    assert stats.returncode == 0, stats.stderr
    [row] = json.loads(stats.stdout)["caches"]
    assert row["files"] > 0  # counted from the regular files, the FIFOs skipped

    (project / "xbuild.toml").unlink()
    (project / "hello.c").write_text((project / "hello.c").read_text().replace("FIFO", "NEXT"))
    result = _xbuild(project, tmp_path / "f2", home)  # completes (within BOUND), exit 0
    assert b"NEXT" in _shipped(result) and result["compiler_cache"]["misses"] == 1

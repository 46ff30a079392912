"""A Pi Zero's programs (zig) are about the size of a Pi 3's (gcc): zig's runtime comes without
its debug information and without the parts the program does not use, a project built with -g
keeps its debug information, the ABI gate passes, and a rebuild is byte-identical."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest

from tests.conftest import EXAMPLES, xbuild

pytestmark = pytest.mark.integration


def _build(project, target, *extra) -> tuple[bytes, dict]:
    proc = xbuild("--target", target, project, "--json", "--no-cache", *extra)
    assert proc.returncode == 0, proc.stderr
    # the build line names the toolchain that compiled, not only the image
    assert ("make recipe with zig 0." if target == "rpi0" else
            "make recipe with Debian's GCC cross compiler") in proc.stderr, proc.stderr
    result = json.loads(proc.stdout)
    with tarfile.open(result["artifacts"][0]["path"]) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("bin/hello"))
        data = tar.extractfile(member).read()  # type: ignore[union-attr]
    return data, result


def test_zig_programs_are_as_small_as_gccs_unless_the_project_asks_for_debug_info(tmp_path):
    project = tmp_path / "hello-make"
    shutil.copytree(EXAMPLES / "hello-make", project)
    rpi0, first = _build(project, "rpi0")
    rpi3, _ = _build(project, "rpi3")
    # measured: 1,105,836 bytes against 69,728 before; 4,340 now (gcc's pads its segments)
    assert len(rpi0) <= 1.5 * len(rpi3), (len(rpi0), len(rpi3))
    assert b".debug_info" not in rpi0 and b".symtab" in rpi0  # symbols stay, as gcc leaves them
    again, second = _build(project, "rpi0")
    assert again == rpi0 and first["artifacts"][0]["sha256"] == second["artifacts"][0]["sha256"]

    kept, _ = _build(project, "rpi0", "--keep-debug")  # the runtime's debug information, asked for
    assert b".debug_info" in kept and b"compiler_rt" in kept

    make = project / "Makefile"
    make.write_text(make.read_text().replace("CFLAGS_HELLO = -O2", "CFLAGS_HELLO = -O2 -g"))
    debug, _ = _build(project, "rpi0")
    assert b".debug_info" in debug  # the project asked -g: its debug information stays

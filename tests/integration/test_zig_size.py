"""A Pi Zero's programs (zig) are about the size of a Pi 3's (gcc): zig's runtime comes without
its debug information and without the parts the program does not use, a project built with -g
keeps its debug information, the ABI gate passes, and a rebuild is byte-identical."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest

from tests.helpers import EXAMPLES, xbuild

pytestmark = pytest.mark.integration


def _build(project, target, *extra, program="bin/hello") -> tuple[bytes, dict]:
    proc = xbuild("--target", target, project, "--json", "--no-cache", *extra)
    assert proc.returncode == 0, proc.stderr
    # the build line names the toolchain that compiled, not only the image
    assert ("recipe with zig 0." if target == "rpi0" else
            "recipe with Debian's GCC cross compiler") in proc.stderr, proc.stderr
    result = json.loads(proc.stdout)
    with tarfile.open(result["artifacts"][0]["path"]) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(program))
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

    kept, _ = _build(project, "rpi0", "--keep-debug")  # the C start files' debug information, asked for
    assert b".debug_info" in kept and b"start.S" in kept

    make = project / "Makefile"
    make.write_text(make.read_text().replace("CFLAGS_HELLO = -O2", "CFLAGS_HELLO = -O2 -g"))
    debug, _ = _build(project, "rpi0")
    assert b".debug_info" in debug  # the project asked -g: its debug information stays


def test_an_autotools_project_keeps_its_own_debug_information_and_not_zigs(tmp_path):
    """autoconf's default CFLAGS are "-g -O2": the project's debug information stays (as gcc's
    build keeps it), zig's compiler_rt brings none (it was 0.8 MB of the program)."""
    project = tmp_path / "autotools-hello"
    shutil.copytree(EXAMPLES / "autotools-hello", project)
    rpi0, _ = _build(project, "rpi0", program="bin/ahello")
    rpi3, _ = _build(project, "rpi3", program="bin/ahello")
    # measured: 807,668 bytes against 72,452 before (compiler_rt's DWARF); 7,024 now
    assert len(rpi0) <= 1.5 * len(rpi3), (len(rpi0), len(rpi3))
    assert b".debug_info" in rpi0 and b"ahello.c" in rpi0  # the project's compile unit

"""Hostile or careless input around OS releases: a release name that is a path or carries terminal
escapes, a manifest beside an artifact that lies, an ELF whose dynamic section points anywhere."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import struct
import subprocess
import tarfile

import pytest

from tests.helpers import make_project
from tests.unit.test_cli import assert_user_error, xbuild
from xbuild.artifact.elf import read_elf
from xbuild.host.archive import sha256_file

pytestmark = pytest.mark.security


# Not even a release name: xbuild.toml's schema refuses it, naming file and line (6); a
# well-formed name no board runs is an unknown release (36).
@pytest.mark.parametrize("name,code", [("../../../etc/passwd", 6), ("/etc/os-release", 6),
                                       ("bookworm\x1b[2J", 6), ("bullseye\n[target.x]", 6),
                                       ("x" * 5000, 36)])
def test_hostile_release_name_in_xbuild_toml(tmp_path, name, code):
    project = make_project(tmp_path / "p", {"Makefile": "all:\n",
                                            "xbuild.toml": f"[build]\nos = {json.dumps(name)}\n"})
    before = sorted(p.name for p in project.iterdir())
    r = xbuild("--target", "rpi3", project)
    assert_user_error(r, code)
    if code == 6:
        assert "xbuild.toml (line 2): [build] 'os' must be an OS release name" in r.stderr
    assert "\x1b" not in r.stderr  # shown escaped, never raw to the terminal
    assert sorted(p.name for p in project.iterdir()) == before  # nothing written


def _artifact(tmp_path, manifest_extra: dict):
    """An artifact archive and, beside it, a manifest.json that lists it (with its checksum)."""
    out = tmp_path / "out"
    out.mkdir()
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("bin/hello")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    archive = out / "p-rpi3.tar.gz"
    archive.write_bytes(gzip.compress(data.getvalue()))
    manifest = {"target": {"name": "rpi3"}, "artifacts": [
        {"name": archive.name, "sha256": sha256_file(archive)}], **manifest_extra}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return archive


def test_lying_manifest_release_is_refused_before_any_container(tmp_path):
    archive = _artifact(tmp_path, {"options": {"os": "../../etc", "config": {"packages": []}}})
    r = xbuild("run", "--target", "rpi3", archive, "--", "bin/hello")
    assert_user_error(r, 36)


def test_lying_manifest_packages_are_refused_before_any_image(tmp_path):
    archive = _artifact(tmp_path, {"options": {"os": "bullseye",
                                               "config": {"packages": ["libssl-dev; curl x|sh"]}}})
    r = xbuild("run", "--target", "rpi3", archive, "--", "bin/hello")
    assert_user_error(r, 6)
    assert "is not a Debian package name" in r.stderr


def test_manifest_for_another_file_is_ignored(tmp_path):
    """A manifest that lists a different checksum says nothing about this archive."""
    from xbuild.artifact.artifacts import built_for
    archive = _artifact(tmp_path, {"options": {"os": "bullseye", "config": {"packages": []}}})
    assert built_for(archive, "rpi3") == ("bullseye", ())
    assert built_for(archive, "rpi4") == (None, ())
    archive.write_bytes(archive.read_bytes() + b"\0")
    assert built_for(archive, "rpi3") == (None, ())


def _dynamic_section(data: bytes) -> tuple[int, int, int]:
    """(offset of its section header, sh_offset, sh_size) of .dynamic in a little-endian ELF64."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    for i in range(shnum):
        h = shoff + i * shentsize
        if struct.unpack_from("<I", data, h + 4)[0] == 6:  # SHT_DYNAMIC
            return h, *struct.unpack_from("<QQ", data, h + 24)
    raise AssertionError("no .dynamic")


@pytest.fixture
def program(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    src = tmp_path / "p.c"
    src.write_text("int main(void) { return 0; }\n")
    subprocess.run(["gcc", "-o", str(tmp_path / "p"), str(src)], check=True)
    return tmp_path / "p"


def test_dynamic_names_pointing_past_the_strings(program, tmp_path):
    data = bytearray(program.read_bytes())
    _, offset, size = _dynamic_section(data)
    for pos in range(offset, offset + size, 16):
        tag, = struct.unpack_from("<q", data, pos)
        if tag == 1:  # DT_NEEDED: point its name far outside .dynstr
            struct.pack_into("<Q", data, pos + 8, 0xFFFFFFFFFFFF)
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(data))
    assert read_elf(bad).needed == ("",)  # read, not a crash


def test_dynamic_section_with_a_bad_link(program, tmp_path):
    data = bytearray(program.read_bytes())
    header, _, _ = _dynamic_section(data)
    struct.pack_into("<I", data, header + 40, 60000)  # sh_link: no such string table
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(data))
    assert read_elf(bad).needed == ()

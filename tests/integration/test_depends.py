"""Runtime dependencies: the board's packages an artifact needs, named as its OS release names them
(manifest `depends`, the summary's apt line, `--json`), and a needed library nothing provides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import make_project, xbuild
from xbuild.board.requirement import glibc_tuple

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("release,ssl_package", [("bullseye", "libssl1.1"), ("bookworm", "libssl3")])
def test_depends_names_the_releases_own_packages(builds, release, ssl_package):
    result = builds.get("openssl-version", "rpi3", os=release)
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert result["depends"] == manifest["depends"]
    by_package = {d.split(" ", 1)[0]: d for d in manifest["depends"]}
    assert set(by_package) == {"libc6", ssl_package}, manifest["depends"]
    assert by_package[ssl_package].startswith(f"{ssl_package} (>= ")
    # libc6's bound is the newest GLIBC_ version the files need, within the release's floor.
    libc = by_package["libc6"].removeprefix("libc6 (>= ").removesuffix(")")
    elf_glibc = max((f["elf"]["glibc"] for f in manifest["files"] if "elf" in f), key=glibc_tuple)
    assert libc == elf_glibc and glibc_tuple(libc) <= glibc_tuple(manifest["target"]["floors"]["glibc"])
    assert manifest["depends_unresolved"] == []


def test_summary_prints_the_apt_line_and_warns_of_a_library_nothing_provides(engine, tmp_path):
    """The program links a library the project builds but does not ship: on the board nothing
    would provide it, and the build says which file needs what."""
    project = make_project(tmp_path / "private-lib", {
        "foo.c": "int foo(void) { return 42; }\n",
        "app.c": "int foo(void);\nint main(void) { return foo() == 42 ? 0 : 1; }\n",
        "Makefile": ("all:\n\t$(CC) -shared -fPIC -Wl,-soname,libfoo.so.1 -o libfoo.so.1 foo.c\n"
                     "\t$(CC) -o app app.c libfoo.so.1\n"),
        "xbuild.toml": '[build]\nartifacts = ["app"]\n'})
    result = xbuild("--target", "rpi3", "--no-cache", project)
    assert result.returncode == 0, result.stderr
    assert "on the board: sudo apt install libc6" in result.stdout
    assert "warning: bin/app needs libfoo.so.1, which neither the artifact nor a package of " \
           "Raspberry Pi OS trixie provides" in result.stderr
    manifest = json.loads((project / "xbuild-out" / "rpi3" / "manifest.json").read_text())
    assert manifest["depends_unresolved"] == [{"file": "bin/app", "soname": "libfoo.so.1"}]


def test_a_library_the_artifact_ships_is_not_a_dependency(engine, tmp_path):
    project = make_project(tmp_path / "shipped-lib", {
        "foo.c": "int foo(void) { return 42; }\n",
        "app.c": "int foo(void);\nint main(void) { return foo() == 42 ? 0 : 1; }\n",
        "Makefile": ("all:\n\t$(CC) -shared -fPIC -Wl,-soname,libfoo.so.1 -o libfoo.so.1 foo.c\n"
                     "\t$(CC) -o app app.c libfoo.so.1\n"),
        "xbuild.toml": '[build]\nartifacts = ["app", "libfoo.so.1"]\n'})
    result = xbuild("--target", "rpi3", "--no-cache", "--json", project)
    assert result.returncode == 0, result.stderr
    assert [d.split(" ")[0] for d in json.loads(result.stdout)["depends"]] == ["libc6"]

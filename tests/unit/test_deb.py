"""The .deb writer, checked by Debian's own dpkg-deb: it reads the package, lists and extracts the
files under the prefix, and two writes of the same tree are the same bytes."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from xbuild.artifact import deb
from xbuild.errors import ConfigError

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")


def _tree(root):
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "hello").write_bytes(b"\x7fELF fake program\n")
    (root / "bin" / "hello").chmod(0o755)
    (root / "lib").mkdir()
    (root / "lib" / "libx.so.1").write_text("odd-sized\n")
    (root / "lib" / "libx.so").symlink_to("libx.so.1")
    return root


def _write(tmp_path, out):
    out.mkdir()
    tree = tmp_path / "tree" if (tmp_path / "tree").exists() else _tree(tmp_path / "tree")
    return deb.write(tree, out, name="hello", version="1.2.0", arch="armhf",
                     depends=["libc6 (>= 2.31)"], description="Hello for the Pi",
                     prefix="/usr/local", mtime=1700000000)


@needs_dpkg
def test_dpkg_reads_the_package_and_its_files(tmp_path):
    path = _write(tmp_path, tmp_path / "out")
    assert path.name == "hello_1.2.0_armhf.deb"
    info = subprocess.run(["dpkg-deb", "--info", path], capture_output=True, text=True, check=True).stdout
    for field in ("Package: hello", "Version: 1.2.0", "Architecture: armhf",
                  "Depends: libc6 (>= 2.31)", "Installed-Size: 3"):
        assert field in info, info
    contents = subprocess.run(["dpkg-deb", "--contents", path], capture_output=True, text=True,
                              check=True).stdout
    assert "./usr/local/bin/hello" in contents and "./usr/local/lib/libx.so -> libx.so.1" in contents
    subprocess.run(["dpkg-deb", "-x", path, tmp_path / "x"], check=True)
    assert (tmp_path / "x/usr/local/bin/hello").read_bytes() == b"\x7fELF fake program\n"
    assert (tmp_path / "x/usr/local/bin/hello").stat().st_mode & 0o111
    sums = subprocess.run(["dpkg-deb", "--ctrl-tarfile", path], capture_output=True, check=True).stdout
    assert b"usr/local/bin/hello" in sums  # md5sums, for debsums/dpkg --verify


def test_same_tree_same_bytes(tmp_path):
    a = _write(tmp_path, tmp_path / "a").read_bytes()
    b = _write(tmp_path, tmp_path / "b").read_bytes()
    assert a == b and a.startswith(b"!<arch>\ndebian-binary   ")


def test_no_depends_line_when_nothing_is_needed(tmp_path):
    text = deb.control(name="x1", version="1", arch="arm64", depends=[], description="",
                       installed_kib=1)
    assert "Depends" not in text and "Description: x1\n" in text


@pytest.mark.parametrize("name,expected", [("GNU_Hello", "gnu-hello"), ("jq-1.6", "jq-1.6"),
                                           ("x", "x-pkg"), ("__", "x-pkg")])
def test_package_names_are_debian_names(name, expected):
    assert deb.package_name(name) == expected


@pytest.mark.parametrize("version", ["1.2.0", "0~315532800", "2:1.0-3", "1.6-12-gabcdef"])
def test_debian_versions_pass(version):
    assert deb.check_version(version, "xbuild.toml") == version


@pytest.mark.parametrize("version", ["v1.2", "", "1.0 beta", "latest"])
def test_other_versions_are_refused_with_the_file(version):
    with pytest.raises(ConfigError, match="xbuild.toml: .* is not a Debian package version"):
        deb.check_version(version, "xbuild.toml")


def _control_files(path) -> dict[str, str]:
    """The control archive's members as dpkg-deb reads them."""
    import io
    import tarfile
    data = subprocess.run(["dpkg-deb", "--ctrl-tarfile", path], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name.removeprefix("./"): tar.extractfile(m).read().decode()
                for m in tar if m.isfile()}


def _library_tree(root, build, where="lib"):
    """A real shared library with a SONAME (built by the host compiler), its SONAME link, a program."""
    lib = build("libgreet.so.0.1.0", "gcc", "-shared", "-fPIC", "-Wl,-soname,libgreet.so.0")
    (root / where).mkdir(parents=True)
    shutil.copy(lib, root / where / "libgreet.so.0.1.0")
    (root / where / "libgreet.so.0").symlink_to("libgreet.so.0.1.0")
    (root / "bin").mkdir()
    (root / "bin" / "greet").write_bytes(b"#!/bin/sh\n")
    return root


def _deb_of(tree, out):
    out.mkdir()
    return deb.write(tree, out, name="greet", version="1.0", arch="amd64", depends=[],
                     description="", prefix="/usr/local", mtime=1700000000)


@needs_dpkg
def test_a_package_with_a_shared_library_refreshes_the_linker_cache(tmp_path, build):
    """dh_makeshlibs' trigger: dpkg runs ldconfig once the package is unpacked."""
    path = _deb_of(_library_tree(tmp_path / "tree", build), tmp_path / "out")
    assert _control_files(path)["triggers"] == "activate-noawait ldconfig\n"
    again = _deb_of(tmp_path / "tree", tmp_path / "again")
    assert again.read_bytes() == path.read_bytes()  # still the same bytes for the same tree


@needs_dpkg
def test_a_package_without_a_shared_library_has_no_trigger(tmp_path):
    """The _tree's lib/libx.so.1 is no ELF file: nothing for ldconfig."""
    assert set(_control_files(_write(tmp_path, tmp_path / "out"))) == {"control", "md5sums"}


@needs_dpkg
def test_a_library_outside_the_linker_caches_directories_has_no_trigger(tmp_path, build):
    """/usr/local/share/greet/plugins is dlopen()ed by path: ldconfig never looks there."""
    path = _deb_of(_library_tree(tmp_path / "tree", build, "share/greet/plugins"), tmp_path / "out")
    assert "triggers" not in _control_files(path)


@pytest.mark.parametrize("path,covered", [
    ("usr/local/lib/libx.so.1", True), ("usr/lib/libx.so.1", True), ("lib/libx.so.1", True),
    ("usr/local/lib/aarch64-linux-gnu/libx.so.1", True), ("usr/local/lib/x/libx.so.1", False),
    ("usr/local/libexec/libx.so.1", False), ("usr/local/lib/python3/libx.so.1", False)])
def test_the_directories_ldconfig_caches(path, covered):
    assert deb._in_ldconfig_dir(path) is covered

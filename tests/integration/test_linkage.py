"""The gate's link check on real builds: the libgpiod defect of issue 17 (a library shipped with an
undefined rpl_malloc) fails the build, and the release's libraries are read out of a real
builder image. That the examples still pass is test_examples.py's."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import ROOT, xbuild
from xbuild.artifact import linkage
from xbuild.board import targets
from xbuild.errors import AbiMismatch

pytestmark = pytest.mark.integration

# libgpiod's defect reduced: a shared library under AC_FUNC_MALLOC, configure made by autoconf 2.69
FIXTURE = ROOT / "tests" / "projects" / "rpl-malloc-autoconf"


def test_rpl_malloc_fails_the_gate(engine, tmp_path):
    """configure's wrong guess (pinned by its cache variable, as a cross configure without
    xbuild's CONFIG_SITE makes it) defines malloc as rpl_malloc; the library alone links (as
    libgpiod without its tools) and would fail on the board. The gate stops it, naming the
    symbol, the file and the release's library, and the hint says what autoconf did."""
    project = tmp_path / "rpl-malloc"
    shutil.copytree(FIXTURE, project)
    (project / "xbuild.toml").write_text(
        '[build]\nconfigure_args = ["--disable-demo", "ac_cv_func_malloc_0_nonnull=no"]\n')
    out = tmp_path / "out"
    proc = xbuild("--target", "rpi3", "--os", "bookworm", project, "--out", out)
    assert proc.returncode == AbiMismatch.exit_code, proc.stderr[-3000:]
    assert ("lib/libbuf.so.1: undefined symbol rpl_malloc (defined by neither the "
            "artifact nor libc.so.6 of Raspberry Pi OS bookworm)") in proc.stderr
    assert "configure's AC_FUNC_MALLOC decided ac_cv_func_malloc_0_nonnull=no" in proc.stderr
    assert not out.exists()  # nothing shipped
    log = (tmp_path / "out.failed.log").read_text()
    assert "checking for GNU libc compatible malloc... (cached) no" in log


def test_release_libraries_come_from_the_image(builds, tmp_path, monkeypatch):
    """libssl's exports, and what it needs in turn (libcrypto, libc, the loader), read from the
    json-ssl build's image for rpi3; a soname the image lacks is None, not a failure."""
    image = builds.get("json-ssl", "rpi3")["image"]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # read from the image itself
    release = linkage.Release.of(image, targets.get("rpi3"))
    known = release.libraries(["libssl.so.3", "libnothere.so.9"])
    assert known["libnothere.so.9"] is None
    ssl, crypto, libc = known["libssl.so.3"], known["libcrypto.so.3"], known["libc.so.6"]
    assert ssl and crypto and libc
    assert "libcrypto.so.3" in ssl.needed and "SSL_CTX_new" in ssl.defined
    assert "EVP_sha256" in crypto.defined and "malloc" in libc.defined
    assert known["ld-linux-armhf.so.3"] is not None  # libc needs the loader: its scope too
    cached = tmp_path / "cache" / "xbuild" / "symbols"
    (entry,) = cached.glob("*/libssl.so.3.json")
    assert "SSL_CTX_new" in json.loads(entry.read_text())["defined"]
    assert json.loads(next(cached.glob("*/libnothere.so.9.json")).read_text()) is None

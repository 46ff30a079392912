"""Issue 17, item 3, on the real engine: libgpiod's defect reduced (tests/projects/rpl-malloc-autoconf,
a shared library under AC_FUNC_MALLOC/REALLOC whose configure autoconf 2.69 made) builds right for
rpi3 in cross mode without an xbuild.toml, because configure reads xbuild's CONFIG_SITE; with
CONFIG_SITE emptied in xbuild.toml it guesses "no", the program's link fails on rpl_malloc, and the
hint says why. And trixie's armhf _TIME_BITS #error, reduced from zlib 1.2.13, gets its hint and
builds with the way out it names (--os bookworm)."""

from __future__ import annotations

import json
import re
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.helpers import make_project, xbuild

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[1] / "projects" / "rpl-malloc-autoconf"


def _project(tmp_path: Path, xbuild_toml: str | None = None) -> Path:
    project = tmp_path / "rpl-malloc-autoconf"
    shutil.copytree(FIXTURE, project)
    if xbuild_toml is not None:
        (project / "xbuild.toml").write_text(xbuild_toml)
    return project


def _build(project: Path, *args: str):
    return xbuild("--target", "rpi3", project, "--out", project / "out", "--json", *args)


def test_the_reduction_builds_right_for_rpi3_without_an_xbuild_toml(engine, tmp_path):
    project = _project(tmp_path)
    proc = _build(project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    log = Path(result["log"]).read_text()
    assert "configure: loading site script /xbuild/config.site" in log
    assert "checking for GNU libc compatible malloc... (cached) yes" in log
    assert "-Dmalloc=rpl_malloc" not in log

    (artifact,) = result["artifacts"]
    with tarfile.open(artifact["path"]) as tar:
        member = tar.extractfile(tar.getmember("lib/libbuf.so.1"))
        assert member is not None, "lib/libbuf.so.1 is not a regular file"
        library = member.read()
    assert b"libbuf.so.1\0" in library and b"rpl_malloc" not in library and b"rpl_realloc" not in library
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["toolchain"]["config_site"].startswith("glibc:")

    # The program calls the library's malloc(0) code: it resolves and runs as on the board.
    run = xbuild("run", "--target", "rpi3", artifact["path"], "--", "bin/bufdemo")
    assert run.returncode == 0, run.stderr
    assert "bufdemo: hello (5 bytes)" in run.stdout


def test_without_the_site_file_configure_guesses_no_and_the_hint_says_why(engine, tmp_path):
    """The documented knob: xbuild.toml's env empties CONFIG_SITE, as a project's own env wins."""
    project = _project(tmp_path, '[build]\nenv = { CONFIG_SITE = "" }\n')
    proc = _build(project)
    assert proc.returncode == 7, proc.stderr[-3000:]  # BuildFailed: the program's link
    assert "libbuf.so: undefined reference to `rpl_malloc'" in proc.stderr
    assert "rpl_malloc is autoconf's stand-in for malloc: configure's AC_FUNC_MALLOC decided " \
           "ac_cv_func_malloc_0_nonnull=no" in proc.stderr
    assert "rpl_realloc is autoconf's stand-in for realloc" in proc.stderr
    log = (project / "out").with_name("out.failed.log").read_text()
    assert "checking for GNU libc compatible malloc... no" in log and "loading site script" not in log


def test_the_projects_own_answer_wins_over_the_site_file(engine, tmp_path):
    """The project's ac_cv_func_realloc_0_nonnull=no beats the site file's yes: configure renames
    realloc, the library alone (as libgpiod without its tools) links, and the ABI gate refuses it
    with the hint that says what autoconf did."""
    project = _project(tmp_path, '[build]\nenv = { ac_cv_func_realloc_0_nonnull = "no" }\n'
                                 'configure_args = ["--disable-demo"]\n')
    proc = _build(project)
    assert proc.returncode == 10, proc.stderr[-3000:]  # AbiMismatch: the gate's link check
    assert "lib/libbuf.so.1" in proc.stderr and "undefined symbol rpl_realloc" in proc.stderr
    assert "rpl_realloc is autoconf's stand-in for realloc" in proc.stderr
    log = (project / "out").with_name("out.failed.log").read_text()
    assert "checking for GNU libc compatible malloc... (cached) yes" in log
    assert "checking for GNU libc compatible realloc... (cached) no" in log
    assert "-Drealloc=rpl_realloc" in log and "-Dmalloc=rpl_malloc" not in log


GZLIKE = r"""/* zlib 1.2.13's gzguts.h, reduced: it undefines _FILE_OFFSET_BITS before the system headers */
#define _LARGEFILE64_SOURCE 1
#ifdef _FILE_OFFSET_BITS
#  undef _FILE_OFFSET_BITS
#endif
#include <stdio.h>
#include <time.h>

int main(void)
{
    printf("time_t is %u bytes\n", (unsigned)sizeof(time_t));
    return 0;
}
"""


def test_time_bits_on_trixie_armhf_has_a_hint_and_its_way_out_builds(engine, tmp_path):
    project = make_project(tmp_path / "gzlike", {"gzlike.c": GZLIKE,
                                                 "Makefile": "gzlike: gzlike.c\n\t$(CC) $(CFLAGS) -o $@ gzlike.c\n"})
    failed = xbuild("--target", "rpi3", project, "--out", tmp_path / "out")
    assert failed.returncode == 7, failed.stderr[-3000:]
    assert '#error "_TIME_BITS=64 is allowed only with _FILE_OFFSET_BITS=64"' in failed.stderr
    assert "hint: Raspberry Pi OS trixie's armhf compiler defines _TIME_BITS=64 by itself" in failed.stderr
    assert f"xbuild --target rpi3 --os bookworm {project}" in failed.stderr

    ok = xbuild("--target", "rpi3", "--os", "bookworm", project, "--out", tmp_path / "out", "--json")
    assert ok.returncode == 0, ok.stderr[-3000:]
    (artifact,) = json.loads(ok.stdout)["artifacts"]
    run = xbuild("run", "--target", "rpi3", "--os", "bookworm", artifact["path"], "--", "bin/gzlike")
    assert run.returncode == 0 and "time_t is 4 bytes" in run.stdout, run.stderr


# Every probe autoconf/glibc.toml answers, as a configure.ac; -C writes the answers to config.cache,
# which the build ships as its artifact.
PROBES = {
    "configure.ac": """AC_INIT([probes], [1])
AC_PROG_CC
AC_FUNC_MALLOC
AC_FUNC_REALLOC
AC_FUNC_MMAP
AC_FUNC_STRTOD
AC_FUNC_FORK
AC_FUNC_GETPGRP
AC_FUNC_SETVBUF_REVERSED
AC_FUNC_CLOSEDIR_VOID
AC_FUNC_LSTAT_FOLLOWS_SLASHED_SYMLINK
AC_FUNC_STAT
AC_FUNC_LSTAT
AC_FUNC_STRNLEN
AC_FUNC_STRCOLL
AC_FUNC_MEMCMP
AC_FUNC_CHOWN
AC_FUNC_MKTIME
AC_FUNC_GETGROUPS
AC_FUNC_UTIME_NULL
AC_FUNC_FNMATCH
AC_FUNC_FNMATCH_GNU
AC_FUNC_WAIT3
AC_SYS_RESTARTABLE_SYSCALLS
AC_CHECK_FILES([/dev/zero /dev/null /dev/random /dev/urandom /dev/ptmx /dev/ptc])
AC_CONFIG_FILES([Makefile])
AC_OUTPUT
""",
    "Makefile.in": "all:\ninstall:\n",
    "xbuild.toml": '[build]\nconfigure_args = ["-C"]\nartifacts = ["config.cache"]\n',
}


def _cache(tmp_path: Path, mode: str) -> dict[str, str]:
    project = make_project(tmp_path / f"probes-{mode}", PROBES)
    proc = xbuild("--target", "rpi3", project, "--mode", mode, "--out", tmp_path / mode, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (artifact,) = json.loads(proc.stdout)["artifacts"]
    with tarfile.open(artifact["path"]) as tar:
        (member,) = [m for m in tar.getmembers() if m.name.endswith("config.cache")]
        data = tar.extractfile(member)
        assert data is not None
        text = data.read().decode()
    # config.cache lines: ac_cv_func_malloc_0_nonnull=${ac_cv_func_malloc_0_nonnull=yes}
    return dict(re.findall(r"^(\w+_cv_\w+)=\$\{\w+=([^}]*)\}$", text, re.MULTILINE))


def test_the_answers_are_the_boards_own(engine, tmp_path):
    """The same probes in emulate mode run for real on the board's userland under qemu: a cross
    build's answers, from the site file, must be those, every one the site file gives. (About
    2.5 minutes here: autoreconf's perl and configure run under qemu.)"""
    from xbuild.toolchain import configsite
    answered = dict(configsite.answers(configsite.GLIBC))
    real, cross = _cache(tmp_path, "emulate"), _cache(tmp_path, "cross")
    assert set(answered) <= set(real), set(answered) - set(real)  # every answer is checked
    assert {k: cross[k] for k in answered} == {k: real[k] for k in answered} == answered

"""Autoconf's answers for cross builds (configsite.py, autoconf/glibc.toml): which builds get
them, that they reach the container as CONFIG_SITE, and that a project's own env still wins."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import make_project
from xbuild import toolchain
from xbuild.board import targets
from xbuild.pipeline import build, spec
from xbuild.request import BuildRequest
from xbuild.toolchain import configsite

MALLOC = "ac_cv_func_malloc_0_nonnull"


def _site(tmp_path: Path) -> Path:
    path = tmp_path / "config.site"
    path.write_text(configsite.render(configsite.GLIBC))
    return path


def _sourced(site: Path, env: dict[str, str]) -> str:
    """What configure sees after sourcing the site file, as it does (`. $CONFIG_SITE`)."""
    proc = subprocess.run(["sh", "-c", f'. "$1"; echo "${MALLOC}:$ac_cv_func_closedir_void"', "sh", site],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **env}, check=True)
    return proc.stdout.strip()


def test_the_glibc_answers_are_what_glibc_does(tmp_path):
    answers = dict(configsite.answers(configsite.GLIBC))
    assert answers[MALLOC] == answers["ac_cv_func_realloc_0_nonnull"] == "yes"
    assert answers["ac_cv_func_mmap_fixed_mapped"] == answers["ac_cv_func_fork_works"] == "yes"
    assert answers["ac_cv_func_closedir_void"] == answers["ac_cv_func_setvbuf_reversed"] == "no"
    assert _sourced(_site(tmp_path), {}) == "yes:no"


def test_a_variable_already_set_keeps_its_value(tmp_path):
    """xbuild.toml's env = { ac_cv_func_malloc_0_nonnull = "no" } wins over the site file."""
    assert _sourced(_site(tmp_path), {MALLOC: "no"}) == "no:no"


def test_no_answers_for_an_unknown_libc():
    assert configsite.answers("musl") == () and configsite.render("musl") == ""
    assert configsite.answers("../glibc") == ()


@pytest.mark.parametrize("board,kw,gets", [
    ("rpi3", {}, True),                      # Debian's GCC cross compiler
    ("rpi0", {}, True),                      # zig, glibc
    ("s390x", {}, True),                     # big-endian: the same answers (none depends on it)
    ("jetson-nano", {}, True),               # zig for glibc 2.27
    ("rpi0", {"static": True}, False),       # musl: no answers of its own yet
    ("rpi3", {"mode": "emulate"}, False),    # configure runs its probes for real
    ("rpi3", {"mode": "hybrid"}, False),
])
def test_only_cross_builds_for_glibc_get_the_site_file(board, kw, gets):
    tc = toolchain.pick(targets.get(board), **kw)
    env, files = tc.environment(2), tc.files()
    assert (env.get("CONFIG_SITE") == "/xbuild/config.site") is gets
    assert ("config.site" in files) is gets
    assert bool(tc.summary()["config_site"]) is gets
    if gets:
        assert f"{MALLOC}=${{{MALLOC}=yes}}" in files["config.site"]


def test_the_projects_env_replaces_or_empties_config_site(tmp_path):
    plain = make_project(tmp_path / "plain", {"Makefile": "all:\n\ttrue\n"})
    assert build.environment(spec.resolve(plain, BuildRequest("rpi3")))["CONFIG_SITE"] == "/xbuild/config.site"
    own = make_project(tmp_path / "own", {"Makefile": "all:\n\ttrue\n", "xbuild.toml":
                                          '[build]\nenv = { CONFIG_SITE = "", ac_cv_func_malloc_0_nonnull = "no" }\n'})
    env = build.environment(spec.resolve(own, BuildRequest("rpi3")))
    assert env["CONFIG_SITE"] == "" and env[MALLOC] == "no"


def test_new_answers_make_a_new_cache_key(monkeypatch):
    before = toolchain.pick(targets.get("rpi3")).summary()["config_site"]
    monkeypatch.setattr(configsite, "answers", lambda libc: ((MALLOC, "no"),))
    assert toolchain.pick(targets.get("rpi3")).summary()["config_site"] != before

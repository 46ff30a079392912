"""A careless (or hostile) time limit: `timeout = 9223372036854775807` in xbuild.toml, or the same
on the command line, once overflowed the clock that enforces it and ended as an internal error
after the build had started. It must be refused up front, naming the line, before any container."""

from __future__ import annotations

import pytest

from tests.helpers import make_project, xbuild
from xbuild.project.config import MAX_TIMEOUT

pytestmark = pytest.mark.security

HUGE = 9223372036854775807


def _project(tmp_path, toml: str | None = None):
    files = {"Makefile": "all:\n\techo built > built.txt\n"}
    if toml is not None:
        files["xbuild.toml"] = toml
    return make_project(tmp_path / "proj", files)


def _nothing_made(project, out) -> None:
    assert not out.exists()
    assert sorted(p.name for p in project.iterdir()) in (["Makefile"], ["Makefile", "xbuild.toml"])


@pytest.mark.parametrize("toml, line", [
    (f"[build]\ntimeout = {HUGE}\n", 2),
    (f"[build]\nrecipe = \"make\"\n\n[target.rpi3]\ntimeout = {MAX_TIMEOUT + 1}\n", 5),
])
def test_huge_timeout_in_xbuild_toml_is_a_config_error_naming_the_line(tmp_path, toml, line):
    project, out = _project(tmp_path, toml), tmp_path / "out"
    r = xbuild("--target", "rpi3", project, "--out", out)
    assert r.returncode == 6, (r.returncode, r.stdout, r.stderr)
    assert f"(line {line}): " in r.stderr and "'timeout' must be" in r.stderr and str(MAX_TIMEOUT) in r.stderr
    assert "hint:" in r.stderr and "internal error" not in r.stderr and "Traceback" not in r.stderr
    _nothing_made(project, out)


def test_the_limit_itself_is_accepted(tmp_path):
    from xbuild.project import config
    project = _project(tmp_path, f"[build]\ntimeout = {MAX_TIMEOUT}\n")
    assert config.load(project).for_target(("rpi3",)).timeout == MAX_TIMEOUT


@pytest.mark.parametrize("command", [
    ["--target", "rpi3", "{project}", "--out", "{out}", "--timeout", str(HUGE)],
    ["run", "--target", "rpi3", "--timeout", str(HUGE), "{out}/x.tar.gz", "--", "bin/true"],
])
def test_huge_timeout_on_the_command_line_is_refused(tmp_path, command):
    project, out = _project(tmp_path), tmp_path / "out"
    args = [a.format(project=project, out=out) for a in command]
    r = xbuild(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "--timeout" in r.stderr and str(MAX_TIMEOUT) in r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    _nothing_made(project, out)


def test_huge_timeout_in_the_environment_is_refused(tmp_path):
    project, out = _project(tmp_path), tmp_path / "out"
    r = xbuild("--target", "rpi3", project, "--out", out, env={"XBUILD_TIMEOUT": str(HUGE)})
    assert r.returncode == 2 and "XBUILD_TIMEOUT" in r.stderr, (r.returncode, r.stderr)
    _nothing_made(project, out)

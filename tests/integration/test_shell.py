"""`xbuild shell`: the build container as a build sees it, fed here through a pipe (the docker CLI
attaches our stdin), and `--keep`: a failed build's tree copied out for inspection."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.helpers import containers_with_env, make_project, xbuild

pytestmark = pytest.mark.integration

SCRIPT = """\
echo "CC=$CC"
echo "mark=$XBUILD_TEST_MARK"
command -v gcc
ls /xbuild/src
ls /sys/class/net
rm -f /xbuild/src/Makefile
bash /xbuild/build.sh >/dev/null 2>&1; echo "build=$?"
exit 3
"""


def _shell(project, stdin: str, env: dict) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "XBUILD_DEBUG"}, **env}
    return subprocess.run([sys.executable, "-m", "xbuild", "shell", "--target", "rpi3", str(project)],
                          input=stdin, capture_output=True, text=True, env=env, timeout=600)


def test_shell_has_the_build_environment_and_leaves_the_project_alone(engine, tmp_path):
    # Other shells and builds share the engine: this shell's container is found by its mark.
    mark = uuid.uuid4().hex
    project = make_project(tmp_path / "proj", {
        "Makefile": "all:\n\techo hi > hi.txt\n",
        "xbuild.toml": '[build]\nartifacts = ["hi.txt"]\npass_env = ["XBUILD_TEST_MARK"]\n'})
    result = _shell(project, SCRIPT, {"XBUILD_TEST_MARK": mark})
    assert result.returncode == 3, result.stderr  # the shell's own exit code
    out = result.stdout.splitlines()
    assert "CC=arm-linux-gnueabihf-gcc" in out and "/xbuild/bin/gcc" in out
    assert f"mark={mark}" in out  # the container that is gone below was this shell's
    assert "Makefile" in out and "xbuild.toml" in out
    assert "lo" in out and "eth0" not in out  # no network, as in a build
    assert "build=2" in out  # the build's steps ran, and failed without the deleted Makefile
    assert (project / "Makefile").is_file()  # the copy was deleted, not the project's file
    assert "xbuild shell: proj for rpi3" in result.stderr
    assert containers_with_env(f"XBUILD_TEST_MARK={mark}") == []


def test_keep_copies_a_failed_builds_tree_out_and_names_its_config_log(engine, tmp_path):
    project = make_project(tmp_path / "broken", {
        "configure": "#!/bin/sh\necho 'checking for libfoo... no' > config.log\necho 'no libfoo'\nexit 1\n",
        "Makefile.in": "all:\n"})
    result = xbuild("--target", "rpi3", "--no-cache", "--keep", project)
    assert result.returncode == 7, result.stderr
    kept = project / "xbuild-out" / "rpi3.failed"
    assert (kept / "config.log").read_text() == "checking for libfoo... no\n"
    assert (kept / "configure").is_file()
    assert f"build tree kept in {kept}" in result.stderr and f"{kept}/config.log" in result.stderr
    # A second failure replaces the kept tree xbuild made (it carries its marker).
    again = xbuild("--target", "rpi3", "--no-cache", "--keep", project)
    assert again.returncode == 7 and (kept / "config.log").is_file()
    # Without --keep, the error says the option exists, and nothing is copied.
    plain = xbuild("--target", "rpi3", "--no-cache", project, "--out", tmp_path / "other")
    assert "--keep keeps the build tree" in plain.stderr
    assert not (tmp_path / "other.failed").exists()


def test_a_later_successful_build_removes_the_kept_tree_and_failed_log(engine, tmp_path):
    project = make_project(tmp_path / "fixed", {"Makefile": "all:\n\tfalse\n",
                                                 "xbuild.toml": '[build]\nartifacts = ["Makefile"]\n'})
    out = project / "xbuild-out"
    assert xbuild("--target", "rpi3", "--no-cache", "--keep", project).returncode == 7
    assert (out / "rpi3.failed" / "Makefile").is_file() and (out / "rpi3.failed.log").is_file()
    mine = make_project(out / "rpi3-notes.failed", {"keep.txt": "mine"})  # not xbuild's: stays
    (project / "Makefile").write_text("all:\n\ttrue\n")  # fixed
    result = xbuild("--target", "rpi3", "--no-cache", project)
    assert result.returncode == 0, result.stderr
    assert not (out / "rpi3.failed").exists() and not (out / "rpi3.failed.log").exists()
    assert (mine / "keep.txt").read_text() == "mine" and (out / "rpi3").is_dir()

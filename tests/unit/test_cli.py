"""The real command line, as a subprocess: help, `targets`, and every exit code that needs no
engine (the project is refused before any container is involved)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xbuild.board import targets

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XBUILD_")}  # XBUILD_DEBUG too
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["SOURCE_DATE_EPOCH"] = "1700000000"
    env.pop("NO_COLOR", None)
    return env


def xbuild(*args, cwd=None, env_extra=None) -> subprocess.CompletedProcess:
    env = _env() | (env_extra or {})
    return subprocess.run([sys.executable, "-m", "xbuild", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd or REPO, timeout=60)


def assert_user_error(r: subprocess.CompletedProcess, code: int) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "error:" in r.stderr
    assert "hint:" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert "internal error" not in r.stderr


@pytest.fixture
def project(tmp_path):
    p = tmp_path / "proj"
    p.mkdir()
    return p


def test_help_lists_the_subcommands():
    r = xbuild("--help")
    assert r.returncode == 0, r.stderr
    for cmd in ("build", "run", "targets", "doctor", "binfmt", "images"):
        assert f"\n  {cmd} " in r.stdout, cmd


def test_build_help_names_the_environment_variables():
    r = xbuild("build", "--help")
    assert r.returncode == 0, r.stderr
    assert "XBUILD_TARGET" in r.stdout
    assert "XBUILD_MODE" in r.stdout
    assert "--target" in r.stdout and "--json" in r.stdout


def test_targets_prints_one_line_per_target():
    r = xbuild("targets")
    assert r.returncode == 0, r.stderr
    names = list(targets.all_targets())
    first_words = [line.split()[0] for line in r.stdout.splitlines() if line and not line[0].isspace()]
    assert first_words == names
    for line in r.stdout.splitlines():
        if line.startswith("rpi0 "):
            assert "armhf" in line and "arm1176" in line  # Raspberry Pi OS armhf, ARMv6 (zig)


def test_targets_json():
    r = xbuild("targets", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    by_name = {t["name"]: t for t in data["targets"]}
    assert set(by_name) == set(targets.all_targets())
    assert by_name["rpi0"]["arch"] == "armhf" and by_name["rpi0"]["cpu"] == "arm1176"
    assert by_name["riscv64"]["suite"] == "trixie"
    assert all(t["description"] for t in data["targets"])


def test_unknown_target_exits_3_with_a_hint(project):
    (project / "Makefile").write_text("all:\n")
    r = xbuild("build", "--target", "rpi9", project)
    assert_user_error(r, 3)
    assert "rpi9" in r.stderr
    assert "rpi3" in r.stderr  # did you mean


def test_unknown_target_is_checked_before_the_path(tmp_path):
    r = xbuild("build", "--target", "rpi9", tmp_path / "nope")
    assert_user_error(r, 3)


def test_missing_path_exits_4(tmp_path):
    r = xbuild("build", "--target", "rpi3", tmp_path / "nope")
    assert_user_error(r, 4)
    assert "does not exist" in r.stderr


def test_path_is_a_file_exits_4(project):
    f = project / "Makefile"
    f.write_text("all:\n")
    r = xbuild("build", "--target", "rpi3", f)
    assert_user_error(r, 4)
    assert "not a directory" in r.stderr


def test_empty_project_exits_5(project):
    r = xbuild("build", "--target", "rpi3", project)
    assert_user_error(r, 5)
    assert "CMakeLists.txt" in r.stderr and "Makefile" in r.stderr


def test_broken_xbuild_toml_exits_6_naming_key_and_line(project):
    (project / "Makefile").write_text("all:\n")
    (project / "xbuild.toml").write_text('[build]\nsteps = ["make"]\nstepz = ["x"]\n')
    r = xbuild("build", "--target", "rpi3", project)
    assert_user_error(r, 6)
    assert "'stepz'" in r.stderr and "(line 3)" in r.stderr


def test_invalid_toml_exits_6(project):
    (project / "xbuild.toml").write_text("[build\n")
    r = xbuild("build", "--target", "rpi3", project)
    assert_user_error(r, 6)
    assert "line" in r.stderr


def test_json_error_is_one_object_on_stdout(project):
    r = xbuild("build", "--target", "rpi3", project, "--json")
    assert r.returncode == 5
    data = json.loads(r.stdout)
    assert data["status"] == "error"
    assert data["exit_code"] == 5
    assert data["error"] == "NoRecipe"
    assert data["target"] == "rpi3" and data["mode"] == "cross"
    assert data["hint"]
    assert "error:" in r.stderr  # the human message still goes to stderr


def test_json_error_for_an_unknown_target(tmp_path):
    r = xbuild("build", "--target", "rpi9", tmp_path, "--json")
    assert r.returncode == 3
    data = json.loads(r.stdout)
    assert data["status"] == "error" and data["exit_code"] == 3 and data["error"] == "UnknownTarget"


def test_build_is_the_default_command(project):
    r = xbuild("--target", "rpi3", project)
    assert_user_error(r, 5)
    assert "no build recipe" in r.stderr


def test_target_from_the_environment(project):
    r = xbuild(project, env_extra={"XBUILD_TARGET": "rpi9"})
    assert_user_error(r, 3)


def test_default_project_is_the_current_directory(project):
    r = xbuild("--target", "rpi3", cwd=project)
    assert_user_error(r, 5)
    assert str(project) in r.stderr


def test_bad_command_line_exits_2(project):
    r = xbuild("build", project)  # no --target
    assert r.returncode == 2
    assert "--target" in r.stderr
    assert "Traceback" not in r.stderr
    r = xbuild("--target", "rpi3", "--mode", "native", project)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr

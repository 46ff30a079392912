"""xbuild.project.config.load: the project's xbuild.toml, strictly checked, with messages naming the key
and its line."""

from pathlib import Path

import pytest

from tests.unit.test_cli import assert_user_error, xbuild
from xbuild.errors import ConfigError
from xbuild.project import config
from xbuild.project.config import ProjectConfig


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "xbuild.toml").write_text(text)
    return tmp_path


def load_error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        config.load(write(tmp_path, text))
    assert exc.value.exit_code == 6
    assert "xbuild.toml" in exc.value.message  # the file is named
    return exc.value


VALID = """\
[build]
recipe = "make"
steps = ["make linux", "make check"]
artifacts = ["src/app", "lib/*.so*"]
packages = ["libssl-dev"]
env = { FOO = "1", BAR = "two words" }
pass_env = ["MY_TOKEN", "_X1"]
timeout = 1800
os = "bullseye"

[target.rpi0]
steps = ["make STATIC=1"]
static = true
env = { LDFLAGS = "-static" }
"""


def test_no_file_is_the_default_config(tmp_path):
    cfg = config.load(tmp_path).for_target(("rpi3",))
    assert cfg == ProjectConfig()
    assert cfg.recipe is None and cfg.steps is None and cfg.timeout is None
    assert cfg.artifacts == cfg.packages == cfg.env == cfg.pass_env == ()


def test_valid_file_round_trip(tmp_path):
    cfg = config.load(write(tmp_path, VALID)).for_target(("rpi3", "pi3"))
    assert cfg.recipe == "make"
    assert cfg.steps == ("make linux", "make check")
    assert cfg.artifacts == ("src/app", "lib/*.so*")
    assert cfg.packages == ("libssl-dev",)
    assert cfg.env == (("BAR", "two words"), ("FOO", "1"))  # a sorted tuple of pairs
    assert cfg.pass_env == ("MY_TOKEN", "_X1")
    assert cfg.timeout == 1800
    assert cfg.os == "bullseye" and cfg.static is None  # static: not set, the command line decides
    assert cfg.to_json() == {
        "recipe": "make", "steps": ["make linux", "make check"],
        "artifacts": ["src/app", "lib/*.so*"], "packages": ["libssl-dev"], "os": "bullseye",
        "env": {"BAR": "two words", "FOO": "1"}, "pass_env": ["MY_TOKEN", "_X1"], "timeout": 1800,
        "static": None, "tools": [], "name": None, "version": None, "deb": None,
        "dests": [None, None], "cmake_args": [], "configure_args": [], "meson_args": [],
        "make_args": [], "go_args": [], "go_packages": [], "cargo_args": []}
    hash(cfg)  # frozen, hashable: part of a cache key


def test_target_table_overrides_only_its_keys(tmp_path):
    pf = config.load(write(tmp_path, VALID))
    cfg = pf.for_target(("rpi0", "pi0"))
    assert cfg.steps == ("make STATIC=1",)
    assert cfg.env == (("LDFLAGS", "-static"),)  # replaced, not merged
    assert cfg.recipe == "make" and cfg.timeout == 1800 and cfg.packages == ("libssl-dev",)
    assert cfg.static is True


def test_target_table_found_by_alias(tmp_path):
    pf = config.load(write(tmp_path, '[target.pi0]\nsteps = ["x"]\n'))
    assert pf.for_target(("rpi0", "pi0")).steps == ("x",)
    assert pf.for_target(("rpi3", "pi3")).steps is None


def test_target_table_by_name_beats_alias(tmp_path):
    pf = config.load(write(tmp_path, '[target.pi0]\nsteps = ["alias"]\n[target.rpi0]\nsteps = ["name"]\n'))
    assert pf.for_target(("rpi0", "pi0")).steps == ("name",)


def test_empty_steps_list_is_refused(tmp_path):
    err = load_error(tmp_path, "[build]\nsteps = []\n")
    assert "(line 2): [build] 'steps' is an empty list" in err.message
    assert "steps = [" in err.hint


def test_broken_toml_names_the_line(tmp_path):
    err = load_error(tmp_path, '[build]\nsteps = ["make"\ntimeout = 3\n')
    assert "not valid TOML" in err.message
    assert "line" in err.message
    assert err.hint


def test_unknown_key_names_key_and_line(tmp_path):
    err = load_error(tmp_path, '[build]\nrecipe = "make"\nstepz = ["make"]\n')
    assert "'stepz'" in err.message
    assert "(line 3)" in err.message
    assert "steps" in err.hint  # the known keys are listed


def test_unknown_key_in_target_table_names_key_and_line(tmp_path):
    err = load_error(tmp_path, '[build]\nsteps = ["make"]\n\n[target.rpi0]\nstep = ["x"]\n')
    assert "[target.rpi0]" in err.message
    assert "'step'" in err.message and "(line 5)" in err.message


def test_wrong_type_in_target_table_names_the_line_in_that_table(tmp_path):
    # "steps" is set on line 2 (fine) and line 5 (wrong): the message must point at line 5
    err = load_error(tmp_path, '[build]\nsteps = ["make"]\n\n[target.rpi0]\nsteps = "make"\n')
    assert "[target.rpi0]" in err.message
    assert "'steps'" in err.message and "(line 5)" in err.message


def test_unknown_table(tmp_path):
    err = load_error(tmp_path, '[build]\nsteps = ["make"]\n[builds]\nsteps = ["make"]\n')
    assert "[builds]" in err.message
    assert "(line 3)" in err.message


@pytest.mark.parametrize("text, key", [
    ('[build]\nsteps = "make"\n', "steps"),
    ('[build]\nsteps = ["make", 1]\n', "steps"),
    ('[build]\nartifacts = "bin/app"\n', "artifacts"),
    ('[build]\npackages = [1]\n', "packages"),
    ("[build]\nenv = { A = 1 }\n", "A"),  # [build.env] 'A' must be a string
    ('[build]\nenv = ["A=1"]\n', "env"),
    ("[build]\ntimeout = -1\n", "timeout"),
    ("[build]\ntimeout = 0\n", "timeout"),
    ('[build]\ntimeout = "60"\n', "timeout"),
    ("[build]\ntimeout = 1.5\n", "timeout"),
    ("[build]\ntimeout = true\n", "timeout"),
    ('[build]\npass_env = ["1BAD"]\n', "pass_env"),
    ('[build]\npass_env = ["A-B"]\n', "pass_env"),
    ('[build]\npass_env = "HOME"\n', "pass_env"),
    ("[build]\nrecipe = 3\n", "recipe"),
])
def test_wrong_types_name_the_key_and_line(tmp_path, text, key):
    err = load_error(tmp_path, text)
    assert f"'{key}'" in err.message
    assert "(line 2)" in err.message


def test_pass_env_names_the_bad_variable(tmp_path):
    err = load_error(tmp_path, '[build]\npass_env = ["GOOD", "1BAD"]\n')
    assert "'1BAD'" in err.message


@pytest.mark.parametrize("text", [
    "build = 3\n",
    "target = 3\n",
    "[target]\nrpi0 = 1\n",
    '[build]\nsteps = ["a"]\n[target]\nrpi0 = "make"\n',
])
def test_tables_that_are_not_tables_are_config_errors(tmp_path, text):
    err = load_error(tmp_path, text)
    assert "table" in err.message
    assert "line" in err.message


# Every value rule, on a real file: the file, the line and what the value must be.
@pytest.mark.parametrize("text, expected", [
    ('[build]\npackages = ["libssl-dev", "Bad Name"]\n',
     "(line 2): [build] 'packages' lists 'Bad Name', which is not a Debian package name such as \"zlib1g-dev\""),
    ('[build]\npackages = ["libssl-dev:armhf", "-x"]\n', "(line 2): [build] 'packages' lists '-x'"),
    ('[build]\nrecipe = "scons"\n',
     "(line 2): [build] 'recipe' must be a recipe name (python, cargo, go, cmake, meson, "),
    ('[build]\nos = "../etc"\n', "(line 2): [build] 'os' must be an OS release name such as bullseye, not '../etc'"),
    ('[build]\nstatic = "yes"\n', "(line 2): [build] 'static' must be true or false, not 'yes'"),
    ("[build]\nstatic = 1\n", "(line 2): [build] 'static' must be true or false, not 1"),
    ("\n[target.rpi0]\ntimeout = 604801\n",
     "(line 3): [target.rpi0] 'timeout' must be a number of seconds from 1 to 604800 (7 days), not 604801"),
    ('[build]\nartifacts = ["bin/app", ""]\n', "(line 2): [build] 'artifacts' lists '', which is not a glob"),
    ('[build]\nsteps = ["make", " "]\n', "(line 2): [build] 'steps' lists ' ', which is not a shell command"),
    ('[build]\nenv = { "A-B" = "1" }\n', "(line 2): [build.env] 'A-B' must be a variable name"),
    ('[build]\n[build.env]\nOK = "1"\n1X = "2"\n', "(line 4): [build.env] '1X' must be a variable name"),
    ('[target."rpi 0"]\nsteps = ["x"]\n', "(line 1): [target] 'rpi 0' must be a board name"),
    ('[build]\nsteps = ["make"]\n[target.rpi0]\nstaticc = true\n', "(line 4): [target.rpi0] unknown key 'staticc'"),
])
def test_each_value_rule_names_file_line_and_what(tmp_path, text, expected):
    err = load_error(tmp_path, text)
    assert err.message.startswith(str(tmp_path / "xbuild.toml"))
    assert expected in err.message
    assert err.hint


def test_unknown_key_says_did_you_mean(tmp_path):
    err = load_error(tmp_path, '[build]\npass-env = ["X"]\n')
    assert err.hint.startswith("did you mean 'pass_env'? known keys: artifacts, cargo_args, cmake_args, configure_args")


def test_static_is_unset_unless_written(tmp_path):
    pf = config.load(write(tmp_path, '[build]\nstatic = false\n[target.rpi0]\nstatic = true\n'))
    assert pf.for_target(("rpi3",)).static is False and pf.for_target(("rpi0",)).static is True
    assert config.load(write(tmp_path, '[build]\nsteps = ["make"]\n')).for_target(("rpi3",)).static is None


def test_the_command_line_prints_one_line_and_exits_6(tmp_path):
    """`xbuild build` with a bad xbuild.toml: the error and its hint, never a traceback."""
    write(tmp_path, '[build]\nsteps = ["make"]\n\n[target.rpi3]\ntimeout = 99999999\n')
    (tmp_path / "Makefile").write_text("all:\n")
    r = xbuild("build", "--target", "rpi3", tmp_path)
    assert_user_error(r, 6)
    assert r.stderr.splitlines()[0] == (
        f"error: {tmp_path / 'xbuild.toml'} (line 5): [target.rpi3] 'timeout' must be a number of seconds "
        "from 1 to 604800 (7 days), not 99999999")
    assert r.stderr.splitlines()[1].startswith("hint: ") and len(r.stderr.splitlines()) == 2


def test_a_build_key_at_the_top_says_it_belongs_in_build(tmp_path):
    """`packages = [...]` written at the top level, as a new user copies a hint, says where it goes."""
    err = load_error(tmp_path, 'packages = ["libusb-1.0-0-dev"]\n')
    assert "unknown key 'packages'" in err.message
    assert err.hint.startswith("'packages' belongs in the [build] table; known keys: build, target")

"""One place for the XBUILD_* variables (xbuild/environment.py): every name the code mentions is
declared, every declared one is used, each is read when used, a wrong value is a clear ConfigError
(exit 6) naming the variable, and the docs agree with the registry."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.helpers import make_project, xbuild
from xbuild import environment
from xbuild.environment import CONTAINER, MB, SETTINGS
from xbuild.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SOURCES = {p: p.read_text() for p in (REPO / "xbuild").rglob("*.py")}
NAME = re.compile(r"XBUILD_[A-Z0-9_]*[A-Z0-9]")


def test_defaults_and_values(monkeypatch):
    for name in ("XBUILD_PROGRESS_SECONDS", "XBUILD_MAX_LOG_MB", "XBUILD_MIN_FREE_MB", "XBUILD_STORE",
                 "XBUILD_IMAGES_PUSH", "XBUILD_COMPILER_CACHE", "XBUILD_API_TOKENS"):
        monkeypatch.delenv(name, raising=False)
    assert environment.number("XBUILD_PROGRESS_SECONDS") == 15
    assert environment.megabytes("XBUILD_MAX_LOG_MB") == 50 * MB
    assert environment.text("XBUILD_STORE") == "" and environment.names("XBUILD_API_TOKENS") == []
    assert environment.flag("XBUILD_IMAGES_PUSH") is False and environment.flag("XBUILD_COMPILER_CACHE")
    monkeypatch.setenv("XBUILD_MAX_LOG_MB", "0.5")
    assert environment.megabytes("XBUILD_MAX_LOG_MB") == MB // 2
    monkeypatch.setenv("XBUILD_MIN_FREE_MB", "0")
    assert environment.whole("XBUILD_MIN_FREE_MB") == 0
    monkeypatch.setenv("XBUILD_COMPILER_CACHE", "Off")
    monkeypatch.setenv("XBUILD_API_TOKENS", " a, ,b ")
    assert not environment.flag("XBUILD_COMPILER_CACHE") and environment.names("XBUILD_API_TOKENS") == ["a", "b"]


@pytest.mark.parametrize("name,raw,must", [
    ("XBUILD_MAX_PIDS", "lots", "a whole number above 0"), ("XBUILD_MAX_PIDS", "-1", "above 0"),
    ("XBUILD_MAX_PIDS", "0", "above 0"), ("XBUILD_MAX_PIDS", "1.5", "whole"),
    ("XBUILD_MAX_DISK_MB", "10G", "whole"), ("XBUILD_MAX_SOURCE_MB", "1.5", "a whole number above 0"),
    ("XBUILD_PROGRESS_SECONDS", "nan", "a number above 0"),
    ("XBUILD_PROGRESS_SECONDS", "inf", "a number"), ("XBUILD_RETRY_SECONDS", "-0.5", "a number"),
    ("XBUILD_IMAGES_PUSH", "maybe", "1/on/true/yes"), ("XBUILD_S3_ADDRESSING", "sideways", "path or virtual"),
])
def test_wrong_values_are_config_errors_naming_the_variable(monkeypatch, name, raw, must):
    monkeypatch.setenv(name, raw)
    with pytest.raises(ConfigError) as exc:
        environment.get(name)
    assert name in exc.value.message and must in exc.value.message and exc.value.exit_code == 6


def test_check_all_reads_every_setting(monkeypatch):
    for name, setting in SETTINGS.items():
        if setting.kind != "option":
            monkeypatch.delenv(name, raising=False)
    environment.check_all()  # the defaults are all good values
    monkeypatch.setenv("XBUILD_LEASE_TTL", "soon")
    with pytest.raises(ConfigError, match="XBUILD_LEASE_TTL"):
        environment.check_all()


def test_a_worker_refuses_a_wrong_setting_when_it_starts(tmp_path):
    proc = xbuild("worker", env={"XBUILD_REAPER_INTERVAL": "-3", "XBUILD_STATE_DIR": str(tmp_path)})
    assert proc.returncode == 6 and "XBUILD_REAPER_INTERVAL='-3'" in proc.stderr, proc.stderr


def test_an_accessor_of_the_wrong_kind_is_a_bug_not_a_default():
    with pytest.raises(TypeError):
        environment.flag("XBUILD_MAX_PIDS")
    with pytest.raises(KeyError):
        environment.text("XBUILD_NOT_DECLARED")


def test_every_name_in_the_code_is_declared():
    undeclared = {f"{p.relative_to(REPO)}: {n}" for p, text in SOURCES.items() for n in NAME.findall(text)
                  if n not in SETTINGS and n not in CONTAINER}
    assert not undeclared


def test_every_declared_name_is_used():
    others = "".join(text for p, text in SOURCES.items() if p.name != "environment.py")
    assert not [n for n in [*SETTINGS, *CONTAINER] if n not in others]


def test_nothing_reads_the_environment_around_the_registry():
    direct = re.compile(r"(environ\.get\(|environ\[|getenv\()\s*[\"']XBUILD_")
    assert not [p.name for p, text in SOURCES.items() if direct.search(text)]


def test_every_accessor_call_names_a_setting_of_its_kind():
    kinds = {"text": ("text", "choice"), "choice": ("choice",), "flag": ("flag",), "names": ("list",),
             "number": ("whole", "number", "mb"), "whole": ("whole",), "megabytes": ("mb",)}
    call = re.compile(r"environment\.(\w+)\(\s*\"(XBUILD_\w+)\"")
    calls = [(m[1], m[2]) for text in SOURCES.values() for m in call.finditer(text) if m[1] in kinds]
    assert len(calls) > 30
    assert not [c for c in calls if SETTINGS[c[1]].kind not in kinds[c[0]]]


def _options(command: click.Command):
    for param in command.params:
        if isinstance(param, click.Option) and param.envvar:
            yield param.envvar
    for sub in getattr(command, "commands", {}).values():
        yield from _options(sub)


def test_every_options_variable_is_declared_and_every_option_setting_is_an_option():
    from xbuild.cli import cli
    envvars = set(_options(cli))
    assert not envvars - set(SETTINGS)
    assert {n for n, s in SETTINGS.items() if s.kind == "option"} <= envvars


def test_docs_environment_md_is_generated_from_the_registry():
    assert (REPO / "docs" / "environment.md").read_text() == environment.table(), \
        "run: python -m xbuild.environment > docs/environment.md"


def test_the_readme_and_docs_agree_with_the_registry():
    """The variables the README and docs/ name exist, and the defaults they give are the code's
    (docs/environment.md is the registry itself: the test above)."""
    docs = [p for p in sorted((REPO / "docs").glob("*.md")) if p.name != "environment.md"]
    readme = "\n".join(p.read_text() for p in [REPO / "README.md", *docs])
    assert not {n for n in NAME.findall(readme) if n not in SETTINGS and n not in CONTAINER}
    said = re.findall(r"^\| `(XBUILD_\w+)` \| (\w+) \|", readme, re.M)  # | `XBUILD_X` | default |
    said += [(n, d) for d, n in re.findall(r"^\| [^|]+ \| (\d+)(?: MB)? \| `(XBUILD_\w+)` \|", readme, re.M)]
    said += re.findall(r"`(XBUILD_\w+)`\s*\((?:default\s*)?`?(\d\w*)", readme)    # `XBUILD_X` (15)
    said += re.findall(r"`(XBUILD_\w+)`,\s*default\s*`?(\d\w*)", readme)         # `XBUILD_X`, default 200
    assert len(said) >= 15
    assert not [(n, d) for n, d in said if str(SETTINGS[n].default) != d]


def test_a_setting_is_not_read_at_import():
    """A wrong value fails when the setting is used, not as a ValueError importing the module."""
    env = {"XBUILD_MAX_UPLOAD_MB": "lots", "XBUILD_S3_PART_MB": "x", "XBUILD_REQUEUE_AFTER": "x",
           "XBUILD_LEASE_TTL": "x", "XBUILD_DEBIAN_MIRROR": "", "XBUILD_S3_MULTIPART_MB": "x"}
    code = ("import xbuild.service.settings, xbuild.service.reaper, xbuild.store.s3, xbuild.containers.rootfs, "
            "xbuild.datafiles, xbuild.containers.binfmt")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", ["XBUILD_MAX_DISK_MB", "XBUILD_MAX_PIDS", "XBUILD_MAX_LOG_MB",
                                  "XBUILD_DEBUG"])
def test_the_cli_reports_a_wrong_setting_before_building(tmp_path, name):
    project = make_project(tmp_path / "p", {"Makefile": "all:\n"})
    proc = xbuild("--target", "rpi3", project, env={name: "10G"})
    assert proc.returncode == 6 and name in proc.stderr and "internal error" not in proc.stderr

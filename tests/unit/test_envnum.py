"""One parser for the numbers xbuild reads from the environment: a wrong value is a clear
ConfigError (exit 6) wherever it is read."""

import pytest

from tests.helpers import make_project, xbuild
from xbuild.envnum import MB, megabytes, number
from xbuild.errors import ConfigError


def test_defaults_and_values(monkeypatch):
    monkeypatch.delenv("XBUILD_X", raising=False)
    assert number("XBUILD_X", 7) == 7 and megabytes("XBUILD_X", 2) == 2 * MB
    monkeypatch.setenv("XBUILD_X", "12")
    assert number("XBUILD_X", 7) == 12
    monkeypatch.setenv("XBUILD_X", "0.5")
    assert megabytes("XBUILD_X", 50, fraction=True) == MB // 2
    monkeypatch.setenv("XBUILD_X", "0")
    assert number("XBUILD_X", 7, zero=True) == 0


@pytest.mark.parametrize("raw,kwargs", [("lots", {}), ("-1", {}), ("0", {}), ("1.5", {}), ("10G", {}),
                                        ("nan", {"fraction": True}), ("inf", {"fraction": True}),
                                        ("-0.5", {"fraction": True, "zero": True})])
def test_wrong_values_are_config_errors(monkeypatch, raw, kwargs):
    monkeypatch.setenv("XBUILD_X", raw)
    with pytest.raises(ConfigError) as exc:
        number("XBUILD_X", 7, **kwargs)
    assert "XBUILD_X" in exc.value.message and exc.value.exit_code == 6


@pytest.mark.parametrize("name", ["XBUILD_MAX_DISK_MB", "XBUILD_MAX_PIDS", "XBUILD_MAX_LOG_MB"])
def test_the_cli_reports_a_wrong_limit_before_building(tmp_path, name):
    project = make_project(tmp_path / "p", {"Makefile": "all:\n"})
    proc = xbuild("--target", "rpi3", project, env={name: "10G"})
    assert proc.returncode == 6 and name in proc.stderr and "internal error" not in proc.stderr

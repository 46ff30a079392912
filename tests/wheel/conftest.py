"""The wheel tier: xbuild as a user installs it. The wheel is built once per session from a copy
of the source tree, installed into a clean virtualenv WITHOUT the test extras, and every command
of this tier runs from that virtualenv, outside the repository, so nothing of the checkout (its
targets/, its editable install, the test extras such as pytest and its dependencies) can stand in
for what the wheel lacks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

# Not part of a wheel's source: local state of a checkout (and a wheel must not depend on it).
_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                 ".pytest_cache", "xbuild-out", ".cache", ".mypy_cache", ".ruff_cache")


class Venv:
    def __init__(self, root: Path, wheel: Path, home: Path):
        self.root, self.wheel, self.home = root, wheel, home
        self.bin = root / "bin"
        self.xbuild_exe = self.bin / "xbuild"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a user's shell with this virtualenv on PATH: nothing that points
        back at the checkout (PYTHONPATH, XBUILD_DATA_DIR, another virtualenv)."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "XBUILD_DATA_DIR", "XBUILD_DEBUG", "PYTHONHOME")}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.root)
        env.update(extra)
        return env

    def run(self, *args, env: dict | None = None, cwd: Path | None = None, timeout: int = 1800,
            exe: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe or self.xbuild_exe), *map(str, args)], capture_output=True,
                              text=True, env=env or self.env(), cwd=cwd or self.home, timeout=timeout)

    def python(self, code: str) -> subprocess.CompletedProcess:
        return self.run("-c", code, exe=self.bin / "python")


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        pytest.fail(f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory) -> Venv:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=_IGNORE)
    dist = tmp / "dist"
    # pip's build isolation fetches setuptools from the package index (as a user's pip would).
    _check(subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist),
                           str(src)], capture_output=True, text=True, timeout=600), "pip wheel")
    (wheel,) = dist.glob("xbuild-*.whl")
    venv = tmp / "venv"
    _check(subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True,
                          timeout=300), "python -m venv")
    # The wheel alone, no extras: its declared dependencies are all a user gets.
    _check(subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True,
                          text=True, timeout=900), "pip install the wheel")
    home = tmp / "home"  # the working directory of every command: far from the checkout
    home.mkdir()
    return Venv(venv, wheel, home)

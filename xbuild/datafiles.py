"""Where the data files (targets/, releases/, recipes/, toolchains/) live. xbuild/schema.py checks what they hold."""

from __future__ import annotations

from pathlib import Path

from xbuild import environment
from xbuild.errors import DataFilesMissing

_PACKAGE = Path(__file__).resolve().parent


def _default_dir() -> Path:
    """Where targets/, releases/, recipes/ and toolchains/ are, without XBUILD_DATA_DIR.

    The top-level folders of the repository are the source of truth. A wheel (`pip install .`)
    carries a copy inside the package, xbuild/data/, made by setup.py at build time; a source
    checkout or an editable install has no such copy and reads the repository root beside the
    package. The root counts only when it is xbuild's own checkout (its pyproject.toml): the
    parent of an installed package is site-packages, where a `targets/` may belong to anyone."""
    if (_PACKAGE.parent / "pyproject.toml").is_file() and not (_PACKAGE / "data").is_dir():
        return _PACKAGE.parent
    return _PACKAGE / "data"


def data_dir() -> Path:
    """XBUILD_DATA_DIR, a site's own boards and recipes, else the installation's."""
    return Path(environment.text("XBUILD_DATA_DIR") or _default_dir())


def data_files(kind: str) -> list[Path]:
    """The TOML files of one kind; none at all is a broken install, not an empty list of boards."""
    files = sorted((data_dir() / kind).glob("*.toml"))
    if not files:
        if environment.text("XBUILD_DATA_DIR"):
            hint = "point XBUILD_DATA_DIR at a directory that holds targets/, releases/ and recipes/"
        else:
            hint = ("this installation lacks its data files: reinstall xbuild (`pip install .` from "
                    "a clone builds a wheel that carries them), or set XBUILD_DATA_DIR to a "
                    "directory that holds targets/ and recipes/")
        raise DataFilesMissing(f"no {kind}: {data_dir() / kind} holds no *.toml file", hint=hint)
    return files


def lookup(kind: str, name: str) -> Path | None:
    """kind/name from a site's XBUILD_DATA_DIR, else from the installation's data; None when
    neither has it (a site need not copy every data file to bring its own boards)."""
    for root in (data_dir(), _default_dir()):
        if (path := root / kind / name).is_file():
            return path
    return None


def toolchain_files() -> list[Path]:
    """toolchains/*.toml. A site's XBUILD_DATA_DIR may bring its own toolchains/; boards and recipes
    alone are the usual case there, so without one the installation's own are used. (Boards name
    a toolchain, toolchain/ builds on boards: both read the list here.)"""
    if (data_dir() / "toolchains").is_dir():
        return data_files("toolchains")
    return sorted((_default_dir() / "toolchains").glob("*.toml"))

"""Where the data files (targets/, releases/, recipes/, toolchains/) live, and strict loading of TOML
into dataclasses."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path

from xbuild.errors import ConfigError, DataFilesMissing

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


# XBUILD_DATA_DIR points elsewhere: a site's own boards and recipes.
DATA_DIR = Path(os.environ.get("XBUILD_DATA_DIR") or _default_dir())


def data_files(kind: str) -> list[Path]:
    """The TOML files of one kind; none at all is a broken install, not an empty list of boards."""
    files = sorted((DATA_DIR / kind).glob("*.toml"))
    if not files:
        if os.environ.get("XBUILD_DATA_DIR"):
            hint = "point XBUILD_DATA_DIR at a directory that holds targets/, releases/ and recipes/"
        else:
            hint = ("this installation lacks its data files: reinstall xbuild (`pip install .` from "
                    "a clone builds a wheel that carries them), or set XBUILD_DATA_DIR to a "
                    "directory that holds targets/ and recipes/")
        raise DataFilesMissing(f"no {kind}: {DATA_DIR / kind} holds no *.toml file", hint=hint)
    return files


def read_toml(path: Path, error=ConfigError) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:  # the message already says "(at line N, column M)"
        raise error(f"{path}: not valid TOML: {exc}",
                    hint="fix the syntax at the line shown") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None


def build(cls, data: dict, where: str, error=ConfigError):
    """cls(**data), refusing unknown keys, missing keys and wrong types with a message naming them."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise error(f"{where}: unknown key {unknown[0]!r}",
                    hint=f"known keys: {', '.join(sorted(fields))}")
    missing = [n for n, f in fields.items() if n not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise error(f"{where}: missing key {missing[0]!r}")
    for name, value in data.items():
        expected = _simple_type(fields[name].type)
        if expected and not isinstance(value, expected):
            raise error(f"{where}: key {name!r} should be {_type_name(expected)}, "
                        f"not {type(value).__name__} ({value!r})")
    return cls(**{n: (tuple(v) if isinstance(v, list) else v) for n, v in data.items()})


_TYPES: dict[str, type | tuple[type, ...]] = {"str": str, "int": int, "bool": bool, "tuple[str, ...]": (list, tuple),
          "dict[str, str]": dict, "str | None": (str, type(None)), "int | None": (int, type(None))}


def _simple_type(annotation) -> type | tuple | None:
    return _TYPES.get(annotation if isinstance(annotation, str) else getattr(annotation, "__name__", ""))


def _type_name(t) -> str:
    return {str: "a string", int: "an integer", bool: "true or false", dict: "a table"}.get(
        t, "a list" if t == (list, tuple) else "a string")

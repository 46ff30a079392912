"""Where the data files (targets/, recipes/) live, and strict loading of TOML into dataclasses."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path

from xbuild.errors import ConfigError

# The repository root holds targets/ and recipes/ beside the package; XBUILD_DATA_DIR points
# elsewhere for an installed copy or a site's own boards.
DATA_DIR = Path(os.environ.get("XBUILD_DATA_DIR") or Path(__file__).resolve().parent.parent)


def data_files(kind: str) -> list[Path]:
    return sorted((DATA_DIR / kind).glob("*.toml"))


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


_TYPES = {"str": str, "int": int, "bool": bool, "tuple[str, ...]": (list, tuple),
          "dict[str, str]": dict, "str | None": (str, type(None)), "int | None": (int, type(None))}


def _simple_type(annotation) -> type | tuple | None:
    return _TYPES.get(annotation if isinstance(annotation, str) else getattr(annotation, "__name__", ""))


def _type_name(t) -> str:
    return {str: "a string", int: "an integer", bool: "true or false", dict: "a table"}.get(
        t, "a list" if t == (list, tuple) else "a string")

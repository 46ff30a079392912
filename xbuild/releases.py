"""OS releases: releases/*.toml loaded into frozen `Release`s, checked against a schema.

A board runs an OS release, and an artifact must fit it: its glibc, its libstdc++ (GLIBCXX_ and
CXXABI_ symbol versions), its program interpreter, and the sonames of its libraries, which come
from the Debian suite whose packages match it. Boards name the releases they run (targets/*.toml:
`os`, `default_os`); this module knows what each release is."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from xbuild.config import _line_of
from xbuild.datafiles import data_files, read_toml
from xbuild.errors import ConfigError

_VERSION = re.compile(r"\d+(\.\d+)+\Z")
_NAME = re.compile(r"[a-z][a-z0-9.-]*\Z")
# Debian architectures xbuild knows (targets' debian_arch), plus amd64, the build machine's.
ARCHES = ("amd64", "arm64", "armel", "armhf", "i386", "ppc64el", "riscv64", "s390x")


@dataclass(frozen=True)
class Release:
    name: str                            # what --os takes, e.g. "bullseye"
    description: str                     # e.g. "Debian 11"
    suite: str                           # the Debian suite whose packages match the release
    glibc: str                           # newest GLIBC_ symbol version its libc provides
    glibcxx: str                         # newest GLIBCXX_ version of its libstdc++
    cxxabi: str                          # newest CXXABI_ version of its libstdc++
    loaders: tuple[tuple[str, str], ...]  # (Debian arch, PT_INTERP path): the arches it carries

    def loader(self, arch: str) -> str | None:
        return dict(self.loaders).get(arch)

    def floors(self) -> dict:
        """What the manifest records of the release."""
        return {"os": self.name, "suite": self.suite, "glibc": self.glibc,
                "glibcxx": self.glibcxx, "cxxabi": self.cxxabi}


# key -> (check, what the value must be): one schema for every release file.
_SCHEMA = {
    "description": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string"),
    "suite": (lambda v: isinstance(v, str) and bool(_NAME.match(v)), "a Debian suite name such as "
                                                                       "bookworm"),
    "glibc": (lambda v: isinstance(v, str) and bool(_VERSION.match(v)), 'a version such as "2.36"'),
    "glibcxx": (lambda v: isinstance(v, str) and bool(_VERSION.match(v)),
                'a GLIBCXX_ version such as "3.4.30"'),
    "cxxabi": (lambda v: isinstance(v, str) and bool(_VERSION.match(v)),
               'a CXXABI_ version such as "1.3.13"'),
    "loaders": (lambda v: isinstance(v, dict) and bool(v), "a table of Debian arch = loader path"),
}


def _fail(path: Path, text: str, key: str, message: str, table: tuple[str, ...] = ()) -> ConfigError:
    return ConfigError(f"{path}{_line_of(text, key, table)}: {message}",
                       hint="see the header comment of releases/bookworm.toml for the shape")


def load(path: Path) -> Release:
    data, text = read_toml(path), path.read_text()
    if not _NAME.match(path.stem):
        raise ConfigError(f"{path}: {path.stem!r} is not a release name (lower case, digits, . and -)")
    for key, value in data.items():
        if key not in _SCHEMA:
            raise _fail(path, text, key, f"unknown key {key!r}")
        ok, what = _SCHEMA[key]
        if not ok(value):
            raise _fail(path, text, key, f"{key!r} must be {what}, not {value!r}")
    if missing := [k for k in _SCHEMA if k not in data]:
        raise ConfigError(f"{path}: missing key {missing[0]!r}", hint=f"keys: {', '.join(_SCHEMA)}")
    for arch, loader in data["loaders"].items():
        if arch not in ARCHES:
            raise _fail(path, text, arch, f"[loaders] {arch!r} is not a Debian architecture "
                                          f"xbuild knows ({', '.join(ARCHES)})", ("loaders",))
        if not isinstance(loader, str) or not loader.startswith("/"):
            raise _fail(path, text, arch, f"[loaders] {arch} must be an absolute path, not "
                                          f"{loader!r}", ("loaders",))
    return Release(name=path.stem, description=data["description"], suite=data["suite"],
                   glibc=data["glibc"], glibcxx=data["glibcxx"], cxxabi=data["cxxabi"],
                   loaders=tuple(sorted(data["loaders"].items())))


@functools.cache
def all_releases() -> dict[str, Release]:
    return {r.name: r for r in map(load, data_files("releases"))}

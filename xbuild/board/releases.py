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

from xbuild import schema
from xbuild.datafiles import data_files
from xbuild.errors import ConfigError

_NAME = r"[a-z][a-z0-9.-]*"
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
    python: str                          # CPython X.Y of its python3: what its wheels are built for
    pip: str                             # its python3-pip's version: which wheel tags it accepts
    loaders: tuple[tuple[str, str], ...]  # (Debian arch, PT_INTERP path): the arches it carries
    # (soname, dependency) of the release's own packages, for a release whose packages are not
    # its suite's (L4T: Ubuntu's names, while bullseye stands in): runtime Depends and messages
    # name these; a soname not here keeps the stand-in suite's name, and the build says so.
    sonames: tuple[tuple[str, str], ...] = ()

    @property
    def stand_in(self) -> bool:
        """Whether its suite only stands in for it (no userland of its own on the mirror)."""
        return self.suite != self.name

    def loader(self, arch: str) -> str | None:
        return dict(self.loaders).get(arch)

    def floors(self) -> dict:
        """What the manifest records of the release."""
        return {"os": self.name, "suite": self.suite, "glibc": self.glibc,
                "glibcxx": self.glibcxx, "cxxabi": self.cxxabi}


_VERSION = r"\d+(\.\d+)+"
# One line per key of a release file; every key is required.
RELEASE = schema.Table({
    "description": schema.text(required=True),
    "suite": schema.text("a Debian suite name such as bookworm", _NAME, required=True),
    "glibc": schema.text('a version such as "2.36"', _VERSION, required=True),
    "glibcxx": schema.text('a GLIBCXX_ version such as "3.4.30"', _VERSION, required=True),
    "cxxabi": schema.text('a CXXABI_ version such as "1.3.13"', _VERSION, required=True),
    "python": schema.text('a CPython version such as "3.11"', r"3\.\d+", required=True),
    "pip": schema.text('a pip version such as "23.0.1"', _VERSION, required=True),
    "loaders": schema.Names(schema.one_of(ARCHES, "a Debian architecture xbuild knows"),
                            schema.text("an absolute path such as /lib/ld-linux-armhf.so.3", r"/\S+"),
                            required=True, empty=False, convert=lambda d: tuple(sorted(d.items()))),
    "sonames": schema.Names(schema.text("a soname such as libz.so.1", r"[A-Za-z0-9_.+-]+\.so(\.[0-9]+)*"),
                            schema.text('a dependency such as "zlib1g (>= 1:1.1.4)"',
                                        r"[a-z0-9][a-z0-9+.-]+( \((>=|=) [0-9][A-Za-z0-9.+~:-]*\))?"),
                            convert=lambda d: tuple(sorted(d.items()))),
})


def load(path: Path) -> Release:
    if not re.fullmatch(_NAME, path.stem):
        raise ConfigError(f"{path}: {path.stem!r} is not a release name (lower case, digits, . and -)",
                          hint="rename the file")
    data = schema.load(path, RELEASE, hint="see the header comment of releases/bookworm.toml for the shape")
    return Release(name=path.stem, **data)


@functools.cache
def all_releases() -> dict[str, Release]:
    return {r.name: r for r in map(load, data_files("releases"))}

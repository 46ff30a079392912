"""The toolchain families and toolchains/*.toml: a family module registers its `Toolchain` class
under the name toolchains/*.toml gives as `family = ...`; `get` applies one file's definition to
a board through its family. Below the package's face (__init__.py), which imports the built-in
families (so they are registered before any toolchain is read) and picks one for a build."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from xbuild import schema
from xbuild.board.targets import Target
from xbuild.datafiles import toolchain_files
from xbuild.request import Mode
from xbuild.toolchain.base import GATES, Toolchain, ToolchainDef

_FAMILIES: dict[str, type[Toolchain]] = {}
T = TypeVar("T", bound=type[Toolchain])

_PACKAGE = schema.text('a Debian package name such as "crossbuild-essential-{arch}"',
                       r"[a-z0-9][a-z0-9+.{}-]+(:[a-z0-9{}]+)?")
_TOOL = schema.text("a binutils tool name such as ar", r"[a-z][a-z0-9+._-]*")
TOOLCHAIN = schema.Table({
    "description": schema.text(required=True),
    "family": schema.one_of(lambda: families(), "a toolchain family", required=True),
    "mode": schema.one_of(tuple(m.value for m in Mode), required=True),
    "packages": schema.List(_PACKAGE, required=True),
    "binutils": schema.List(_TOOL, required=True),
    "compilers": schema.Names(schema.one_of(("gcc", "cc", "g++", "c++", "cpp"), "a compiler shim"),
                              schema.text("a command line"), required=True, empty=False),
    "home": schema.text("an absolute path", r"/\S*"),
    "cache": schema.text("an absolute path", r"/\S*"),
    "musl": schema.Names(schema.text("a GNU triple", r"[a-z0-9_]+(-[a-z0-9_]+)+"),
                         schema.text("a zig musl target", r"[a-z0-9_]+(-[a-z0-9_]+)+")),
    "defines": schema.Tables(schema.Table({
        "suite": schema.text("a Debian suite name", r"[a-z][a-z0-9.-]*", required=True),
        "arch": schema.text("a Debian architecture", r"[a-z0-9]+", required=True),
        "flags": schema.List(schema.text("a compiler flag such as -D_TIME_BITS=64", r"-\S+"),
                             required=True),
    })),
})


def register(name: str) -> Callable[[T], T]:
    """Class decorator of a family module: toolchains/*.toml files with `family = "<name>"` are
    applied to a board by this class. A family whose outputs no gate reads is refused here, at
    import, rather than at the end of its first build."""
    def add(cls: T) -> T:
        if cls.outputs not in GATES:
            raise ValueError(f"toolchain family {name}: outputs {cls.outputs!r}, which no gate reads "
                             f"({', '.join(GATES)})")
        _FAMILIES[name] = cls
        return cls
    return add


def unregister(name: str) -> None:
    """Forget a family (a test's own, once it is done)."""
    _FAMILIES.pop(name, None)
    all_toolchains.cache_clear()


def families() -> dict[str, type[Toolchain]]:
    """Family name -> its class, in the order they registered (built-in ones first)."""
    return dict(_FAMILIES)


def _load(path) -> ToolchainDef:
    data = schema.load(path, TOOLCHAIN, hint="toolchains/zig.toml shows every key of a toolchain")
    return ToolchainDef(name=path.stem, **data)


@functools.cache
def all_toolchains() -> dict[str, ToolchainDef]:
    """Every toolchains/*.toml, loaded and checked (which files: datafiles.toolchain_files)."""
    return {d.name: d for d in map(_load, toolchain_files())}


def get(name: str, target: Target, static: bool = False) -> Toolchain:
    defn = all_toolchains()[name]
    return _FAMILIES[defn.family](defn, target, static)

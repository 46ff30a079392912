"""Toolchains: toolchains/*.toml loaded into frozen `ToolchainDef`s, and one small interface.

A (board, release, mode, static) picks one toolchain (`pick`); the chosen `Toolchain` yields what a
build container needs to aim every tool at the target, written fresh for each build:

- /xbuild/bin: shims early on PATH, so a Makefile that calls plain `gcc`, `ar`, `ranlib`,
  `strip` or `pkg-config` reaches the target's tools, and every compiler call carries the board's
  flags (a Makefile that overrides CFLAGS cannot drop them);
- a CMake toolchain file and a Meson cross file (cross mode);
- autoconf's answers for the probes a cross configure cannot run (cross mode, glibc: configsite.py);
- the environment the recipes read (XBUILD_*, CC, AR, ...);
- its builder image, on top of images.py's Debian bases (`builder_image`).

Each family is one module behind one protocol (base.Toolchain): Debian's GCC (gcc.py), zig
(zig.py), hybrid (hybrid.py). A module registers its family under the name toolchains/*.toml use
(registry.register); adding a family is a module plus a TOML file."""

from __future__ import annotations

from xbuild.board.targets import Target
from xbuild.errors import ConfigError
from xbuild.request import Mode
from xbuild.toolchain.base import BIN as BIN
from xbuild.toolchain.base import PREFIX as PREFIX
from xbuild.toolchain.base import ROOT as ROOT
from xbuild.toolchain.base import Toolchain as Toolchain
from xbuild.toolchain.base import ToolchainDef as ToolchainDef
from xbuild.toolchain.base import multiarch as multiarch
from xbuild.toolchain.base import needs_exact_glibc as needs_exact_glibc

# The built-in families (Gcc, Hybrid, Zig) register as they are imported; their claims do not overlap.
from xbuild.toolchain.gcc import Gcc as Gcc
from xbuild.toolchain.hybrid import Hybrid as Hybrid
from xbuild.toolchain.registry import TOOLCHAIN as TOOLCHAIN
from xbuild.toolchain.registry import all_toolchains as all_toolchains
from xbuild.toolchain.registry import families as families
from xbuild.toolchain.registry import get as get
from xbuild.toolchain.zig import Zig as Zig

# Debian's GCC, where no family claims the build.
_DEFAULT = {Mode.CROSS: "gcc-cross", Mode.EMULATE: "gcc-native"}


def pick(target: Target, mode: Mode = Mode.CROSS, static: bool = False) -> Toolchain:
    """The toolchain of a build: the one a registered family claims (zig: --static, and a board
    that needs its C runtime built for its exact CPU or an older glibc than its suite's; hybrid:
    --mode hybrid), else Debian's GCC: the cross compiler, or in emulate mode the release's
    native one."""
    mode = Mode(mode)
    for family in families().values():
        if (name := family.claim(target, mode, static)) is not None:
            return get(name, target, static)
    if mode == Mode.EMULATE and target.toolchain:  # its release's own GCC makes what the board cannot run
        raise ConfigError(f"{target.name} builds with {target.toolchain} in cross mode, not "
                          f"--mode emulate: Debian's native {target.debian_arch} GCC links its "
                          f"own C runtime, built for a newer CPU than the {target.name}'s",
                          hint="drop --mode emulate")
    return get(_DEFAULT[mode], target)

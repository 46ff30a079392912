"""GCC, Debian's: the cross compiler (gcc-cross) or the release's native one (gcc-native). Every
compiler call carries the board's tuning flags (targets/*.toml `cflags`), except the
preprocessor's."""

from __future__ import annotations

from xbuild.toolchain.base import Toolchain


class Gcc(Toolchain):
    def flags(self, shim: str) -> list[str]:
        return [] if shim == "cpp" else list(self.target.cflags)

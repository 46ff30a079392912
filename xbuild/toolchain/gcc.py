"""GCC, Debian's: the cross compiler (gcc-cross) or the release's native one (gcc-native). Every
compiler call carries the board's tuning flags (targets/*.toml `cflags`), except the
preprocessor's.

Its builder image is Debian's own: cross, the build machine's Debian with crossbuild-essential
and dpkg multiarch for the target's -dev packages; emulate, the target's Debian (the runtime
image `xbuild run` uses) with its native GCC, every process under qemu."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xbuild.request import Mode
from xbuild.toolchain.base import Toolchain
from xbuild.toolchain.registry import register

if TYPE_CHECKING:
    from xbuild.containers.images import ImageDef


@register("gcc")
class Gcc(Toolchain):
    """Claims nothing: Debian's GCC is what the default policy picks (__init__.pick)."""

    def flags(self, shim: str) -> list[str]:
        return [] if shim == "cpp" else list(self.target.cflags)

    def builder_image(self) -> ImageDef:
        from xbuild.containers import images
        target, mode = self.target, self.mode
        arch = target.debian_arch
        if mode == Mode.CROSS:
            parent = images.host_base(target.suite)
            run = images.apt(images.TOOLS + self.image_packages(), add_arch=arch)
        else:
            parent = images.runtime_def(target)
            run = images.apt(images.TOOLS + self.image_packages())
        run += " && useradd --create-home --uid 1000 --user-group builder"
        return images.child(parent, "builder", f"{target.suite}-{arch}-{mode}", run,
                            images.labels("builder", arch, mode))

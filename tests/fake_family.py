"""A toolchain family made in the tests, to show that adding one is a module plus a TOML file:
nothing in xbuild names it. `Fake` is Debian's cross GCC in an image of its own (a small layer on
the gcc-cross builder, which leaves MARK), with compiler shims that log every call, a variable
of its own in the build's environment, and a step after collection that puts all three into the
artifact (share/fake-family/). It claims rpi3 cross builds while it is registered (`registered`).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from xbuild import datafiles
from xbuild.board.targets import Target
from xbuild.toolchain import PREFIX, ROOT, Toolchain, registry

NAME, TOOLCHAIN = "fake", "fake-cc"
MARK = "/opt/fake-family/mark"
CALLS = "/tmp/fake-family-calls"
ENV = "XBUILD_FAKE_FAMILY"
OUT = "share/fake-family"  # in the artifact, under the prefix

# The TOML file: gcc-cross.toml's compilers and packages, under the fake family.
TOML = f"""\
description = "Debian's GCC cross compiler (crossbuild-essential-{{arch}}), through a test family"
family = "{NAME}"
mode = "cross"
packages = ["crossbuild-essential-{{arch}}", "libc6-dev:{{arch}}"]
binutils = ["ar", "ranlib", "strip", "nm", "ld", "as", "objcopy", "objdump", "readelf", "size"]

[compilers]
gcc = "/usr/bin/{{triple}}-gcc"
cc = "/usr/bin/{{triple}}-gcc"
"g++" = "/usr/bin/{{triple}}-g++"
"c++" = "/usr/bin/{{triple}}-g++"
cpp = "/usr/bin/{{triple}}-cpp"
"""


class Fake(Toolchain):
    @classmethod
    def claim(cls, target: Target, mode: str, static: bool) -> str | None:
        return TOOLCHAIN if (target.name, mode, static) == ("rpi3", "cross", False) else None

    def flags(self, shim: str) -> list[str]:
        return [] if shim == "cpp" else list(self.target.cflags)

    def builder_image(self):
        from xbuild.containers import images
        debian = registry.get("gcc-cross", self.target).builder_image()
        dockerfile = f"FROM {debian.tag}\nRUN mkdir -p {Path(MARK).parent} && echo made-by-the-fake-layer > {MARK}\n"
        arch = self.target.debian_arch
        return images.layer(debian, "builder", f"{self.target.suite}-{arch}-{NAME}", dockerfile,
                            images.labels("builder", arch, self.mode))

    def shims(self) -> dict[str, str]:
        log = f'#!/bin/sh\necho "$(basename "$0") $*" >> {CALLS}\n'
        compilers = {*self.definition.compilers, *(f"{self.target.triple}-{c}" for c in self.definition.compilers)}
        return {rel: body.replace("#!/bin/sh\n", log, 1) if rel.removeprefix("bin/") in compilers else body
                for rel, body in super().shims().items()}

    def environment(self, jobs: int) -> dict[str, str]:
        return {**super().environment(jobs), ENV: "set-by-the-fake-family"}

    def finish(self, keep_debug: bool) -> str:
        out = f"{ROOT}/stage/install{PREFIX}/{OUT}"
        return f'mkdir -p {out} && cp {CALLS} {out}/calls && cp {MARK} {out}/mark && echo "${ENV}" > {out}/env\n'


@contextlib.contextmanager
def registered(monkeypatch, data: Path) -> Iterator[None]:
    """The fake family registered and its TOML file beside the installation's, through a site's
    XBUILD_DATA_DIR (`data`: made here, the other data linked in); undone on leaving."""
    installed = datafiles.data_dir()
    (data / "toolchains").mkdir(parents=True)
    for kind in ("targets", "releases", "recipes"):
        (data / kind).symlink_to(installed / kind)
    for toml in (installed / "toolchains").glob("*.toml"):
        shutil.copy(toml, data / "toolchains")
    (data / "toolchains" / f"{TOOLCHAIN}.toml").write_text(TOML)
    monkeypatch.setenv("XBUILD_DATA_DIR", str(data))
    registry.register(NAME)(Fake)
    registry.all_toolchains.cache_clear()
    try:
        yield
    finally:
        registry.unregister(NAME)
        monkeypatch.delenv("XBUILD_DATA_DIR")

"""What every toolchain family shares: the paths of a build container, one toolchains/*.toml
file (`ToolchainDef`), and `Toolchain`, the one protocol a family module (gcc.py, zig.py,
hybrid.py) implements and registers (registry.py). What a family decides, each in one place:

- its builder image: `builder_image`, on top of what (images.py holds the generic machinery);
- the environment of a build (`environment`, `run_env`), its shims and CMake/Meson files
  (`files`), and what runs after collection (`finish`);
- the compiler cache (`compiler_cache`: its compilers go through ccache, in a namespace per
  board, release, toolchain and project: compiler_cache.namespace);
- what its outputs are, and so which gate reads them (`outputs`);
- whether its container runs the target's programs, and so needs a binfmt handler (`needs_binfmt`);
- whether it takes a build that the default policy (__init__.pick) would give another (`claim`).

Below the package's face (__init__.py), which picks a family and so imports them all."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from xbuild.attest import sbom
from xbuild.board.targets import Target, host_arch
from xbuild.request import Mode
from xbuild.toolchain import configsite

if TYPE_CHECKING:
    from xbuild.containers.images import ImageDef

ROOT = "/xbuild"
BIN = f"{ROOT}/bin"
PREFIX = "/usr/local"
_MESON_CPU_FAMILY = {"arm": "arm", "aarch64": "aarch64", "i686": "x86", "powerpc64le": "ppc64",
                     "s390x": "s390x", "riscv64": "riscv64", "x86_64": "x86_64"}
_GNU_HOST = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}
# What a gate reads, by the kind of output a family makes: "elf", programs and libraries that
# artifacts.gate checks against the board's ABI (every family so far). A family making something
# else (a wheel, a crate) adds its kind here with the gate that reads it.
GATES = ("elf",)


@dataclass(frozen=True)
class ToolchainDef:
    """One toolchains/*.toml file."""
    name: str
    description: str
    family: str                    # gcc | zig | hybrid: the registered family that applies it
    mode: str                      # cross | emulate | hybrid: where it runs
    packages: tuple[str, ...]      # Debian packages its builder image installs ({arch})
    binutils: tuple[str, ...]      # tools shimmed as /usr/bin/{triple}-<tool>
    compilers: dict[str, str]      # shim name -> command ({triple}, zig: {zig} {target} {cpu})
    home: str = ""                 # zig: where the ziglang package sits in the image
    cache: str = ""                # zig: its global cache, warmed when the image is made
    musl: dict[str, str] | None = None  # zig: GNU triple -> musl target, for --static
    defines: tuple = ()            # zig: [{suite, arch, flags}] a suite's own GCC implies


def multiarch(target: Target) -> str:
    """Debian's multiarch directory name: the GNU triple, except i386's."""
    return "i386-linux-gnu" if target.debian_arch == "i386" else target.triple


def needs_exact_glibc(target: Target) -> bool:
    """The release's glibc is older than its package suite's: Debian's GCC would link against the
    suite's newer libc, so zig builds stubs for the release's own version."""
    from xbuild.board import releases
    from xbuild.board.requirement import glibc_tuple
    suite = releases.all_releases().get(target.suite)
    return suite is not None and glibc_tuple(target.glibc) < glibc_tuple(suite.glibc)


def _script(body: str) -> str:
    return f"#!/bin/sh\n{body}\n"


@dataclass(frozen=True)
class Toolchain:
    """A toolchain definition applied to one board on one release (static: --static)."""
    definition: ToolchainDef
    target: Target
    static: bool = False

    outputs: ClassVar[str] = "elf"       # what the build makes: the gate that reads it (GATES)
    compiler_cache: ClassVar[bool] = True  # its compilers run through ccache ($XBUILD_CCACHE)

    @classmethod
    def claim(cls, target: Target, mode: str, static: bool) -> str | None:
        """The toolchain (a toolchains/*.toml name) this family takes the build with, over the
        default policy's choice (__init__.pick); None: leave it to the policy."""
        return None

    def builder_image(self) -> ImageDef:
        """The image a build runs in, before the project's packages (images.builder_def adds
        those on top)."""
        raise NotImplementedError(f"toolchain family {self.definition.family} defines no builder image")

    @property
    def needs_binfmt(self) -> bool:
        """The build container is the target's architecture (it runs the target's programs):
        the engine needs a binfmt handler for it, unless the machine runs that architecture."""
        return self.mode.emulated and self.target.needs_qemu

    def target_package(self, package: str) -> str:
        """A declared -dev package as its builder installs it: the target architecture's through
        multiarch in a cross builder (libssl-dev:armhf), else the name itself."""
        if ":" in package or self.mode != Mode.CROSS:
            return package
        return f"{package}:{self.target.debian_arch}"

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def mode(self) -> Mode:
        return Mode(self.definition.mode)

    @property
    def version(self) -> str:
        """The toolchain's own version where the data or the install knows it (zig); GCC's comes
        from the image's packages, which the image tag and the build's meta/toolchain.txt record."""
        return ""

    def _fill(self, text: str) -> str:
        t = self.target
        return text.format(arch=t.debian_arch, triple=t.triple, **self._placeholders())

    def _placeholders(self) -> dict[str, str]:
        return {}

    def compiler(self, shim: str) -> str:
        """The command line a compiler shim runs, before "$@"."""
        return self._fill(self.definition.compilers[shim])

    def flags(self, shim: str) -> list[str]:
        """Flags every call of that compiler carries (the board's tuning, the target's defines)."""
        return []

    def shims(self) -> dict[str, str]:
        t = self.target.triple
        files: dict[str, str] = {}
        for name in self.definition.compilers:
            flags = " ".join(shlex.quote(f) for f in self.flags(name))
            # The build path must not reach the output (debug info, __FILE__): map it to ".".
            # $XBUILD_CCACHE: "ccache" when the compiler cache is on (compiler_cache.py), else empty.
            body = (f'exec $XBUILD_CCACHE {self.compiler(name)}{" " + flags if flags else ""} '
                    '-ffile-prefix-map="${XBUILD_SRC:-/xbuild/src}"=. "$@"')
            files[name] = files[f"{t}-{name}"] = _script(body)
        for tool in self.definition.binutils:
            files[tool] = _script(f'exec /usr/bin/{t}-{tool} "$@"')
        if self.mode == Mode.CROSS:
            pc = (f"PKG_CONFIG_LIBDIR=/usr/lib/{multiarch(self.target)}/pkgconfig:/usr/share/pkgconfig "
                  'exec /usr/bin/pkgconf "$@"')
            files["pkg-config"] = files[f"{t}-pkg-config"] = _script(pc)
        return {f"bin/{name}": body for name, body in files.items()}

    def finish(self, keep_debug: bool) -> str:
        """Shell the build script runs after collecting the artifact's files into /xbuild/stage
        (keep_debug: --keep-debug). Nothing for GCC: what it links carries no debug
        information the project did not ask for."""
        return ""

    def cmake_toolchain(self) -> str:
        t = self.target.triple
        return "\n".join([
            f"# Written by xbuild for this build: the {self.name} toolchain through xbuild's shims.",
            "set(CMAKE_SYSTEM_NAME Linux)",
            f"set(CMAKE_SYSTEM_PROCESSOR {t.split('-')[0]})",
            f"set(CMAKE_C_COMPILER {BIN}/{t}-gcc)",
            f"set(CMAKE_CXX_COMPILER {BIN}/{t}-g++)",
            f"set(CMAKE_AR /usr/bin/{t}-ar CACHE FILEPATH \"\")",
            f"set(CMAKE_RANLIB /usr/bin/{t}-ranlib CACHE FILEPATH \"\")",
            f"set(CMAKE_LIBRARY_ARCHITECTURE {multiarch(self.target)})",
            f"set(PKG_CONFIG_EXECUTABLE {BIN}/{t}-pkg-config)",
            # Programs run on the build machine; libraries and headers are the target's (multiarch).
            "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)", ""])

    def meson_cross(self) -> str:
        t = self.target.triple
        cpu = t.split("-")[0]
        return "\n".join([
            "[binaries]",
            f"c = '{BIN}/{t}-gcc'", f"cpp = '{BIN}/{t}-g++'", f"ar = '/usr/bin/{t}-ar'",
            f"strip = '/usr/bin/{t}-strip'", f"pkg-config = '{BIN}/{t}-pkg-config'", "",
            "[host_machine]", "system = 'linux'", f"cpu_family = '{_MESON_CPU_FAMILY.get(cpu, cpu)}'",
            f"cpu = '{cpu}'", f"endian = '{self.target.abi.endian}'", ""])

    def libc_answers(self) -> str:
        """Whose autoconf answers a build gets (configsite.py): glibc's in cross mode; none where
        configure runs its probes (emulate, hybrid), nor for musl (--static), which has none yet."""
        return configsite.GLIBC if self.mode == Mode.CROSS and not self.static else ""

    def config_site(self) -> str:
        return configsite.render(libc) if (libc := self.libc_answers()) else ""

    def files(self) -> dict[str, str]:
        out = self.shims()
        if self.mode == Mode.CROSS:
            out["toolchain.cmake"] = self.cmake_toolchain()
            out["cross.ini"] = self.meson_cross()
        if site := self.config_site():
            out[configsite.PATH] = site
        return out

    def environment(self, jobs: int) -> dict[str, str]:
        t, target = self.target.triple, self.target
        cross = self.mode == Mode.CROSS
        return {
            "PATH": f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/home/builder", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC",
            "XBUILD_TARGET": target.name, "XBUILD_MODE": self.mode, "XBUILD_JOBS": str(jobs),
            "XBUILD_DEBIAN_ARCH": target.debian_arch, "XBUILD_TOOLCHAIN": self.name,
            "XBUILD_OUT": f"{ROOT}/stage/install", "XBUILD_PREFIX": PREFIX,
            "XBUILD_HOST": t,
            "XBUILD_BUILD": _GNU_HOST.get(host_arch(), "x86_64-linux-gnu") if cross else t,
            "CC": f"{t}-gcc", "CXX": f"{t}-g++",
            "AR": f"{t}-ar" if cross else "ar", "RANLIB": f"{t}-ranlib" if cross else "ranlib",
            "STRIP": f"{t}-strip" if cross else "strip",
            "PKG_CONFIG": f"{t}-pkg-config" if cross else "pkg-config",
            "XBUILD_CMAKE_TOOLCHAIN": f"{ROOT}/toolchain.cmake" if cross else "",
            "XBUILD_MESON_CROSS": f"{ROOT}/cross.ini" if cross else "",
            # configure reads it; xbuild.toml's env (applied after this) may replace or empty it.
            **({"CONFIG_SITE": f"{ROOT}/{configsite.PATH}"} if self.config_site() else {}),
            # Configure probes and tests that run target code go through qemu, as the board's CPU.
            **self.run_env(),
        }

    def run_env(self) -> dict[str, str]:
        return dict(self.target.run_env)

    def image_packages(self) -> list[str]:
        return [self._fill(p) for p in self.definition.packages]

    def sbom_components(self) -> list[sbom.Component]:
        """What the SBOM names of the toolchain besides the image's Debian packages (which the
        build's inventory lists): a toolchain brought from elsewhere says so."""
        return []

    def summary(self) -> dict:
        """What the manifest and the cache key record of the toolchain."""
        return {"name": self.name, "family": self.definition.family, "version": self.version,
                "static": self.static, "description": self._fill(self.definition.description),
                "config_site": configsite.digest(libc) if (libc := self.libc_answers()) else ""}

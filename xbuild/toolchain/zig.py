"""zig as C/C++ compiler and linker: `zig cc -target arm-linux-gnueabihf.2.31 -mcpu=arm1176jzf_s`
builds its C runtime (crt files, compiler_rt, glibc stubs of that exact version, or musl) for that
CPU, so nothing newer than the board's CPU or release reaches the artifact. Headers and libraries
of declared packages are the suite's Debian -dev packages, searched after zig's own libc headers.

zig comes from the `ziglang` package on PyPI (an xbuild dependency). Its image copies the
installed package in (no network needed) on top of the gcc-cross builder, whose binutils, pkgconf
and multiarch set-up it reuses, and warms zig's cache for the board's CPU and C library there, so
the minutes zig spends building its C runtime are paid once per image, not per build."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from xbuild.attest import sbom
from xbuild.board.targets import Target, all_targets, debian_userland_cpu
from xbuild.errors import ConfigError, ToolchainMissing
from xbuild.request import Mode
from xbuild.toolchain.base import ROOT, Toolchain, multiarch, needs_exact_glibc
from xbuild.toolchain.registry import all_toolchains, get, register

if TYPE_CHECKING:
    from xbuild.containers.images import ImageDef


@functools.cache
def installed() -> tuple[Path, str]:
    """(the ziglang package directory, its version) of this installation."""
    import importlib.metadata
    import importlib.util
    spec = importlib.util.find_spec("ziglang")
    if spec is None or not spec.submodule_search_locations:
        raise ToolchainMissing("this build needs zig, and the ziglang package is not installed")
    home = Path(list(spec.submodule_search_locations)[0])
    if not (home / "zig").is_file():
        raise ToolchainMissing(f"{home} holds no zig executable: a broken ziglang install")
    return home, importlib.metadata.version("ziglang")


def zig_cpu(target: Target) -> str:
    """zig's -mcpu name for the board: its GCC -mcpu (arm1176jzf-s -> arm1176jzf_s), else the
    architecture's baseline."""
    for flag in target.cflags:
        if flag.startswith("-mcpu="):
            return flag.split("=", 1)[1].replace("-", "_").replace(".", "_")
    return "baseline"


# `zig cc -c a.c b.c` writes one a.o holding both (gcc and clang write a.o and b.o; lz4's Makefile,
# for one, relies on that): without -o, the shim compiles each source in a call of its own.
_SOURCE = "*.c|*.cc|*.cpp|*.cxx|*.C|*.S|*.s|*.m"
_ONE_SOURCE_AT_A_TIME = f"""\
if [ -z "$XBUILD_ONE_SOURCE" ]; then
  c=0 o=0 n=0
  for a do
    case $a in -c) c=1 ;; -o|-o?*) o=1 ;; -*) ;; {_SOURCE}) n=$((n + 1)) ;; esac
  done
  if [ $c = 1 ] && [ $o = 0 ] && [ $n -gt 1 ]; then
    for a do
      case $a in -*) ;; {_SOURCE}) XBUILD_ONE_SOURCE=$a "$0" "$@" || exit $? ;; esac
    done
    exit 0
  fi
else
  n=$#
  for a do
    case $a in
      -*) set -- "$@" "$a" ;;
      {_SOURCE}) if [ "$a" = "$XBUILD_ONE_SOURCE" ]; then set -- "$@" "$a"; fi ;;
      *) set -- "$@" "$a" ;;
    esac
  done
  shift $n
  unset XBUILD_ONE_SOURCE
fi
"""


# cc-rs (a Rust build script compiling C) takes zig for clang and adds --target=<Rust triple>,
# which zig refuses ("unable to parse target query"): the shim sets -target itself, so it drops it.
_NO_CLANG_TARGET = """\
n=$#
for a do
  case $a in --target=*) ;; *) set -- "$@" "$a" ;; esac
done
shift $n
"""


# Two defaults of zig cc that gcc does not have, undone where the call leaves them to zig:
# - it writes DWARF into every object unless told -g0 (gcc and clang write none without -g), and
#   a later plain -g does not undo a -g0 (zig 0.17): so -g0 only when the call asks no -g* of
#   its own (-gz* only compresses). The project's own -g stays its choice.
# - it links the whole of its compiler_rt (one object: 0.2 MB of code in a Pi Zero's `hello`)
#   unless sections are collected, which it does itself only when the link carries -O1 or more:
#   a link gets --gc-sections (a project's -Wl,--no-gc-sections comes later and wins). Only a
#   link: on a -c call zig applies it to the object it writes and empties it.
# - it builds that compiler_rt with debug information whenever the program is not stripped
#   whole (-s): 0.8 MB of DWARF in every program, which a project's -g (autoconf's default
#   CFLAGS are "-g -O2") would keep. A link gets -rtlib=none (zig then links no compiler_rt)
#   and the one built without debug information when the image was made (RUNTIME), with the
#   options zig builds its own with; its symbols are hidden, as zig's are.
RUNTIME = "/opt/zig-runtime"
_RUNTIME_FLAGS = ("-OReleaseFast -fstrip -fPIC -ffunction-sections -fdata-sections -fno-builtin "
                  "-fno-stack-check -fno-stack-protector")
_ZIG_DEFAULTS = """\
xbuild_g0=-g0 xbuild_gc=-Wl,--gc-sections
if [ -f {runtime} ]; then xbuild_gc="$xbuild_gc -rtlib=none {runtime}"; fi
for a do
  case $a in
    -g0|-gz*) ;;
    -g*) xbuild_g0= ;;
    -c|-S|-E|-M|-MM|-fsyntax-only|-r|-Wl,-r|-Wl,--relocatable) xbuild_gc= ;;
  esac
done
"""

# The rest of zig's runtime comes with debug information too, whatever the program asked: the C
# start files (start.S, init.c; 1.6 KB), and for C++ libc++ and libunwind (megabytes). After
# collection, every ELF program and library whose DWARF is all zig's loses it (strip
# --strip-debug: the symbol table stays, as gcc leaves it); one with a compile unit of the
# project (built with -g) keeps all of it. --keep-debug skips this. A unit is zig's when its
# name is under zig's directory, or its compilation directory is zig's lib/ (compiler_rt).
_STRIP_RUNTIME_DEBUG = r"""
zig_debug_only() {{
  {readelf} --debug-dump=info --dwarf-depth=1 "$1" 2>/dev/null | awk -v home={home} '
    function done() {{ if (cu && !(index(name, home "/") == 1 || dir == home "/lib")) mine = 1 }}
    /DW_TAG_compile_unit|DW_TAG_partial_unit/ {{ done(); cu = 1; name = ""; dir = ""; next }}
    /DW_AT_name/ {{ n = split($0, f, ": "); name = f[n] }}
    /DW_AT_comp_dir/ {{ n = split($0, f, ": "); dir = f[n] }}
    END {{ done(); exit mine }}'
}}
find {stage} -type f -print0 | sort -z | while IFS= read -r -d '' f; do
  if file -b "$f" | grep -qE '^ELF .*(executable|shared object)' && zig_debug_only "$f"; then
    {strip} --strip-debug "$f"
  fi
done
"""


@register("zig")
class Zig(Toolchain):
    @classmethod
    def claim(cls, target: Target, mode: str, static: bool) -> str | None:
        """--static (zig with musl); a board that needs its C runtime built for its exact CPU
        (target.toolchain, the Pi Zero/1) or a release older than the suite its packages come
        from (L4T R32 on bullseye), in cross mode."""
        if static:
            _check_static(target, mode)
            return "zig"
        if mode == Mode.CROSS and (target.toolchain == "zig" or needs_exact_glibc(target)):
            return "zig"
        return None

    @property
    def version(self) -> str:
        return installed()[1]

    def sbom_components(self) -> list[sbom.Component]:
        """zig comes from PyPI (ziglang), copied into the builder image: not a Debian package."""
        return [sbom.Component("pypi", "ziglang", self.version, "tool", licenses=("MIT",))]

    @property
    def zig_target(self) -> str:
        if self.static:
            return (self.definition.musl or {})[self.target.triple]
        return f"{self.target.triple}.{self.target.glibc}"

    def _placeholders(self) -> dict[str, str]:
        return {"zig": f"{self.definition.home}/zig", "target": self.zig_target,
                "cpu": zig_cpu(self.target), "version": self.version}

    def defines(self) -> list[str]:
        """What the suite's own GCC defines by itself (trixie armhf: 64-bit time_t)."""
        if self.static:  # musl's time_t is 64-bit everywhere already
            return []
        return [f for d in self.definition.defines
                if (d["suite"], d["arch"]) == (self.target.suite, self.target.debian_arch)
                for f in d["flags"]]

    def flags(self, shim: str) -> list[str]:
        ma = multiarch(self.target)
        # zig's own libc headers come first; the -dev packages' headers after them.
        out = ["-Wno-unused-command-line-argument", *self.defines(),
               "-idirafter", f"/usr/include/{ma}", "-idirafter", "/usr/include"]
        if shim != "cpp":
            out.append(f"-L/usr/lib/{ma}")
            if self.static:
                out.append("-static")
        return out

    def shims(self) -> dict[str, str]:
        files = super().shims()
        for rel, body in files.items():
            if f"{self.definition.home}/zig " in body and " -E " not in body:  # cc and c++
                body = body.replace(" -ffile-prefix-map=", " $xbuild_g0 $xbuild_gc -ffile-prefix-map=", 1)
                defaults = _ZIG_DEFAULTS.format(runtime=self.runtime_lib(self.zig_target))
                files[rel] = body.replace("#!/bin/sh\n", "#!/bin/sh\n" + _NO_CLANG_TARGET + _ONE_SOURCE_AT_A_TIME
                                          + defaults, 1)
        return files

    def runtime_lib(self, zig_target: str) -> str:
        """compiler_rt for that target, built without debug information when the image is made."""
        return f"{RUNTIME}/{zig_target}/libcompiler_rt.a"

    def finish(self, keep_debug: bool) -> str:
        """Shell run after collection: zig's runtime debug information out (see above)."""
        if keep_debug:
            return ""
        t = self.target.triple
        return _STRIP_RUNTIME_DEBUG.format(readelf=f"/usr/bin/{t}-readelf", strip=f"/usr/bin/{t}-strip",
                                           home=self.definition.home, stage=f"{ROOT}/stage")

    def environment(self, jobs: int) -> dict[str, str]:
        return {**super().environment(jobs), "ZIG_GLOBAL_CACHE_DIR": self.definition.cache,
                "ZIG_LOCAL_CACHE_DIR": "/home/builder/.cache/zig-local"}

    def run_env(self) -> dict[str, str]:
        env = dict(self.target.run_env)
        if env and not self.static and (cpu := debian_userland_cpu(self.target)):
            env["QEMU_CPU"] = cpu  # configure probes link against the Debian armhf userland
        return env

    def builder_image(self) -> ImageDef:
        """The gcc-cross builder (its binutils, pkgconf and multiarch set-up) with zig on top."""
        from xbuild.containers import images
        debian = get("gcc-cross", self.target).builder_image()
        name, body, home = self.image_layer()
        labels = images.labels("builder", self.target.debian_arch, self.mode)
        return images.layer(debian, "builder", name, f"FROM {debian.tag}\n{body}",
                            labels + (("org.xbuild.toolchain", "zig"),), context=(("ziglang", str(home)),))

    def image_layer(self) -> tuple[str, str, Path]:
        """(name, Dockerfile body after FROM, the ziglang directory to copy in as `ziglang`).
        The cache is warmed for the board's CPU on both the release's glibc and musl, C and C++,
        so dynamic and --static builds share the image."""
        home, version = installed()
        zig, cache, cpu = f"{self.definition.home}/zig", self.definition.cache, zig_cpu(self.target)
        glibc_target = f"{self.target.triple}.{self.target.glibc}"
        musl_target = (self.definition.musl or {})[self.target.triple]
        warm = " && ".join(
            f"{zig} {cc} -target {t} -mcpu={cpu} {extra} /tmp/w.{ext} -o /tmp/w"
            for t, extra in ((glibc_target, ""), (musl_target, "-static"))
            for cc, ext in (("cc", "c"), ("c++", "cc")))
        runtime = " && ".join(
            f"mkdir -p {Path(self.runtime_lib(t)).parent} && {zig} build-lib -target {t} -mcpu={cpu} "
            f"{_RUNTIME_FLAGS} {self.definition.home}/lib/compiler_rt.zig --name compiler_rt "
            f"-femit-bin={self.runtime_lib(t)}"
            for t in (glibc_target, musl_target))
        body = (f"LABEL org.xbuild.zig={version}\n"
                f"COPY ziglang {self.definition.home}\n"
                f"ENV ZIG_GLOBAL_CACHE_DIR={cache} ZIG_LOCAL_CACHE_DIR=/tmp/zig-local\n"
                "RUN printf 'int main(void){return 0;}\\n' > /tmp/w.c && "
                "printf '#include <string>\\nint main(){return std::string(\"x\").size()-1;}\\n' "
                f"> /tmp/w.cc && {warm} && {runtime} && chown -R 1000:1000 {cache} "
                "&& rm -rf /tmp/w* /tmp/zig-local\n")
        name = f"{self.target.suite}-{self.target.debian_arch}-zig-{cpu}-{self.target.glibc}"
        return name, body, home


def _check_static(target: Target, mode: str) -> None:
    musl = all_toolchains()["zig"].musl or {}
    if target.triple not in musl:
        boards = sorted(t.name for t in all_targets().values() if t.triple in musl)
        raise ConfigError(f"--static is not available for {target.name} ({target.debian_arch}): "
                          f"static builds are zig + musl, for the ARM boards",
                          hint=f"boards with --static: {', '.join(boards)}; or build {target.name} "
                               "without --static")
    if Mode(mode).emulated:
        raise ConfigError(f"--static builds with zig in cross mode, not --mode {mode}",
                          hint=f"drop --mode {mode} (or --static)")

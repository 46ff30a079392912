"""--mode hybrid: the target's root filesystem (the emulate builder: its configure runs, its
build-time tools, its -dev packages and libc6-dev are the target's own, under qemu) with Debian's
x86-64 GCC cross compiler and binutils of the same suite copied over its own compiler, so the
compiler, assembler and linker run natively and only the rest pays for qemu. Otherwise Debian's
GCC (gcc.py): the build sees a native build."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xbuild.board.targets import Target, host_arch
from xbuild.errors import ConfigError
from xbuild.request import Mode
from xbuild.toolchain.base import needs_exact_glibc
from xbuild.toolchain.gcc import Gcc
from xbuild.toolchain.registry import get, register

if TYPE_CHECKING:
    from xbuild.containers.images import ImageDef

# The build machine's own shell, make and text tools, which run natively in the hybrid image too
# (configure and libtool are shell scripts: under qemu they cost more than the compiles). They act
# the same on any CPU; what reports or depends on the machine stays the target's: uname, arch,
# nproc, od (its output follows the CPU's byte order), and stdbuf, chroot, hostid, bashbug.
HYBRID_TOOLS = ("coreutils", "dash", "bash", "sed", "grep", "mawk", "make", "m4", "diffutils",
                "findutils")
_TARGETS_OWN = "arch|uname|nproc|od|stdbuf|chroot|hostid|bashbug"
# Run in the cross builder (host arch): gather under /xbuild-hybrid the cross compiler, binutils and
# their runtime libraries (the -<arch>-cross packages), but not the cross C library nor kernel
# headers (the root filesystem's own libc6-dev is what hybrid links against); the HYBRID_TOOLS'
# programs; the host's loader and shared libraries, which all of them run on; and the host's ccache
# as /usr/local/bin/ccache (first on PATH: the target's own would run under qemu). Every suite's
# image is merged-/usr: /bin/x is /usr/bin/x.
_HYBRID_FILES = " && ".join([
    "pkgs=$(dpkg-query -W -f '${{Package}}\\n'"
    " | grep -E '^(binutils|cpp|gcc|g[+][+])(-[0-9]+)?-{triple}(-base)?$|^gcc-[0-9]+-cross-base$|-{arch}-cross$'"
    " | grep -vE '^(libc6|libc6-dev|linux-libc-dev)-{arch}-cross$')",
    "{{ dpkg -L $pkgs | grep -v '^/usr/share/';"
    " dpkg -L {tools} | grep -E '^(/usr)?/s?bin/' | grep -vE '/({targets_own})$'; }}"
    " | sed -E 's,^/(bin|sbin|lib)/,/usr/\\1/,' | sort -u"
    ' | while read -r f; do if [ -L "$f" ] || [ -f "$f" ]; then echo "${{f#/}}"; fi; done > /tmp/files',
    'echo "usr/lib/$(gcc -print-multiarch)" >> /tmp/files',
    "mkdir -p /xbuild-hybrid/usr/local/bin",
    # the loader's path, there before the first RUN (whose /bin/sh is the x86-64 dash already)
    "if [ -d /usr/lib64 ]; then echo usr/lib64 >> /tmp/files; ln -s usr/lib64 /xbuild-hybrid/lib64; fi",
    "tar -C / -cf - -T /tmp/files | tar -C /xbuild-hybrid -xf -",
    "cp -a /usr/bin/ccache /xbuild-hybrid/usr/local/bin/ccache",
    "rm /tmp/files"])
# Run in the hybrid image: the cross GCC's LTO plugin for the binutils (the x86-64 ar and nm
# cannot load the target GCC's).
_HYBRID_LINKS = ("rm -f /usr/lib/bfd-plugins/* && "
                 "ln -s /usr/libexec/gcc-cross/*/*/liblto_plugin.so /usr/lib/bfd-plugins/")



@register("hybrid")
class Hybrid(Gcc):
    @classmethod
    def claim(cls, target: Target, mode: str, static: bool) -> str | None:
        if mode != Mode.HYBRID or static:  # --static is zig's (which refuses --mode hybrid)
            return None
        _check(target)
        return "gcc-hybrid"

    def builder_image(self) -> ImageDef:
        """--mode hybrid: the emulate builder (the target's root filesystem, build tools and
        libc6-dev) with the x86-64 cross toolchain of the same suite copied over its own compiler:
        /usr/bin/<triple>-gcc & co. become the cross tools, so the shims, and even a plain /usr/bin/gcc,
        run the compiler natively; so do the shell, make and text tools (HYBRID_TOOLS). The rest
        (perl, python, the project's own programs, configure's test programs) runs under qemu.
        Debian's amd64 cross compiler cannot be installed into a foreign root filesystem with apt
        (its arch-all dependencies are refused), so its files are copied: gathered in an image of
        their own made from the cross builder, then COPY --from, which the engine's classic builder
        allows across platforms."""
        from xbuild.containers import images
        target = self.target
        arch, name = target.debian_arch, f"{target.suite}-{target.debian_arch}"
        cross, emulate = get("gcc-cross", target).builder_image(), get("gcc-native", target).builder_image()
        script = _HYBRID_FILES.format(triple=target.triple, arch=arch, tools=" ".join(HYBRID_TOOLS),
                                      targets_own=_TARGETS_OWN)
        files = images.layer(cross, "builder", f"{name}-hybrid-files", f"FROM {cross.tag}\nRUN {script}\n",
                             images.labels("builder", arch, "hybrid-files"))
        dockerfile = (f"FROM {emulate.tag}\nCOPY --from={files.tag} /xbuild-hybrid/ /\n"
                      f"RUN {_HYBRID_LINKS}\n")
        return images.layer(emulate, "builder", f"{name}-hybrid", dockerfile,
                            images.labels("builder", arch, Mode.HYBRID.value), needs=(files,))


def _check(target: Target) -> None:
    """Hybrid runs Debian's x86-64 cross GCC against the release's own libc6-dev: not for boards
    that need zig (an exact CPU or an older glibc than the suite's), nor on another host CPU."""
    if host_arch() != "amd64":
        raise ConfigError(f"--mode hybrid runs Debian's x86-64 cross compiler: this machine is "
                          f"{host_arch()}", hint="use --mode emulate (or cross) here")
    if target.toolchain or needs_exact_glibc(target):
        why = (f"its C runtime must be built for its exact CPU ({target.toolchain})" if target.toolchain
               else f"its glibc {target.glibc} is older than its package suite's")
        raise ConfigError(f"{target.name} on {target.os_name} cannot build with --mode hybrid: {why}, "
                          "which Debian's GCC does not do", hint="drop --mode hybrid: cross mode uses zig")

"""Builder and runtime images, built locally and tagged by a hash of everything that defines them,
so an image is reused until its definition changes.

  xbuild/base:<suite>-<arch>-<hash>        debootstrap'd Debian, right platform label (rootfs.py)
  xbuild/builder:<suite>-<arch>-<mode>-<hash>  base + toolchains: cross = host-arch base with Debian's
                                             cross toolchain; emulate = target-arch base, native gcc
  xbuild/builder:<suite>-<arch>-zig-<cpu>-<glibc>-<hash>  cross builder + zig, its cache warmed for
                                             the board's CPU (toolchain/zig.py)
  xbuild/builder:<suite>-<arch>-hybrid-<hash>  emulate builder + the x86-64 cross toolchain's files,
                                             gathered in ...-hybrid-files-<hash> (hybrid_def)
  xbuild/deps:<...>-<hash>                 builder + the project's declared -dev packages

Targets that share a Debian architecture share images: the board's tuning is applied at build
time by the compiler shims (toolchain/), so rpi2, rpi3 and beaglebone reuse one armhf image."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xbuild import BUILD_LOGIC_VERSION, rootfs
from xbuild.config import PACKAGE
from xbuild.engine import client
from xbuild.errors import ConfigError, ImageBuildFailed
from xbuild.paths import cache_dir, under
from xbuild.request import Mode
from xbuild.targets import Target, host_arch

if TYPE_CHECKING:
    from xbuild.toolchain import Toolchain

LABEL = "org.xbuild.kind"
KINDS = ("base", "builder", "deps")  # each built on the one before it
REPO_PREFIX = "xbuild/"
BUILD_USER = "1000:1000"
# What every builder has, whatever the recipe: the image is shared by all recipes.
TOOLS = ["build-essential", "make", "cmake", "ninja-build", "meson", "autoconf", "automake",
         "libtool", "pkgconf", "file", "ca-certificates",
         "ccache"]  # the compiler cache (compiler_cache.py): in every builder, so a cache is a mount
LOCKS = cache_dir("locks")
_PACKAGE = re.compile(PACKAGE + r"\Z")  # the same names xbuild.toml's schema accepts
_PLATFORMS = {"amd64": "linux/amd64", "arm64": "linux/arm64/v8"}


@dataclass(frozen=True)
class Image:
    tag: str
    id: str
    built: bool  # built now (False: reused)


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps([BUILD_LOGIC_VERSION, *parts], sort_keys=True).encode()).hexdigest()[:12]


@contextlib.contextmanager
def _building(tag: str):
    """One builder of an image at a time on this machine (parallel builds, several workers):
    the second waits, then finds the image made by the first."""
    LOCKS.mkdir(parents=True, exist_ok=True)
    with open(under(LOCKS, tag.replace("/", "_").replace(":", "_") + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _existing(tag: str):
    from docker.errors import ImageNotFound
    try:
        return client().images.get(tag)
    except ImageNotFound:
        return None


@dataclass(frozen=True)
class ImageDef:
    """What an image is made of. Its tag is a hash of this definition (a Dockerfile names its
    parent by tag, and the tag holds the parent's hash), so tags are known without the engine:
    the cache key of a build uses them."""
    tag: str
    kind: str                       # base | builder | deps
    platform: str
    labels: tuple[tuple[str, str], ...]
    dockerfile: str | None = None   # None: a debootstrap'd base
    parent: ImageDef | None = None
    arch: str = ""
    suite: str = ""
    context: tuple[tuple[str, str], ...] = ()  # (name in the build context, host directory)
    needs: tuple[ImageDef, ...] = ()  # other images its Dockerfile copies from (COPY --from)


def base_def(arch: str, suite: str, platform: str) -> ImageDef:
    key = _digest("base", arch, suite, platform, rootfs.mirror())
    return ImageDef(f"{REPO_PREFIX}base:{suite}-{arch}-{key}", "base", platform,
                    ((LABEL, "base"), ("org.xbuild.key", key)), arch=arch, suite=suite)


# In every debootstrap'd base already (apt itself needs them): a program that needs no more than
# these runs on the base image, with no image of its own.
IN_EVERY_BASE = frozenset({"libc6", "libgcc-s1", "libstdc++6"})


def runtime_def(target: Target, packages: tuple[str, ...] = ()) -> ImageDef:
    """A fresh target-arch Debian of the board's release: where `xbuild run` unpacks and runs an
    artifact. With the artifact's runtime dependencies installed (or, for a manifest from before
    those, its declared -dev packages, which pull in their libraries), the program finds the
    release's sonames there, as on the board. A board older than its
    Debian userland's CPU baseline (the ARMv6 Pi Zero on armhf) shares the Debian armhf image,
    labelled as what it is (ARMv7)."""
    from xbuild.toolchain.zig import debian_userland_cpu
    platform = "linux/arm/v7" if debian_userland_cpu(target) else target.platform
    base = base_def(target.debian_arch, target.suite, platform)
    packages = tuple(p for p in packages if p not in IN_EVERY_BASE)
    if not packages:
        return base
    _check_packages(packages)
    labels = ((LABEL, "deps"), ("org.xbuild.arch", target.debian_arch), ("org.xbuild.mode", "run"))
    return _child(base, "deps", f"{target.suite}-{target.debian_arch}-run", _apt(sorted(packages)),
                  labels)


def builder_def(target: Target, mode: Mode, packages: tuple[str, ...] = (),
                toolchain: Toolchain | None = None, tools: tuple[str, ...] = ()) -> ImageDef:
    """The image a build runs in: the toolchain's (default: the one pick() chooses for the board
    and mode), plus the project's `packages` (the target's libraries: multiarch in cross mode) and
    `tools` (programs the build runs: the build machine's own packages)."""
    from xbuild.toolchain import get, pick
    from xbuild.toolchain.zig import Zig
    toolchain = toolchain or pick(target, mode)
    arch, mode = target.debian_arch, toolchain.mode
    # zig extends the gcc-cross builder: its binutils, pkgconf and multiarch set-up.
    debian = get("gcc-cross", target) if isinstance(toolchain, Zig) else toolchain
    labels = ((LABEL, "builder"), ("org.xbuild.arch", arch), ("org.xbuild.mode", mode))
    if mode == Mode.HYBRID:
        defn = hybrid_def(target)
    elif mode == Mode.CROSS:
        host_platform = _PLATFORMS.get(host_arch(), "linux/" + host_arch())
        parent = base_def(host_arch(), target.suite, host_platform)
        run = _apt(TOOLS + debian.image_packages(), add_arch=arch)
    else:
        parent = runtime_def(target)
        run = _apt(TOOLS + debian.image_packages())
    if mode != Mode.HYBRID:
        run += " && useradd --create-home --uid 1000 --user-group builder"
        defn = _child(parent, "builder", f"{target.suite}-{arch}-{mode}", run, labels)
    if isinstance(toolchain, Zig):
        name, body, home = toolchain.image_layer()
        dockerfile = f"FROM {defn.tag}\n{body}"
        defn = ImageDef(f"{REPO_PREFIX}builder:{name}-{_digest('builder', dockerfile)}", "builder",
                        defn.platform, labels + (("org.xbuild.toolchain", "zig"),), dockerfile, defn,
                        context=(("ziglang", str(home)),))
    if not packages and not tools:
        return defn
    _check_packages((*packages, *tools))
    # Cross mode installs the target architecture's packages through multiarch (libssl-dev:armhf).
    names = sorted({*(p if ":" in p or mode != Mode.CROSS else f"{p}:{arch}" for p in packages), *tools})
    labels = ((LABEL, "deps"), ("org.xbuild.arch", arch), ("org.xbuild.mode", mode))
    return _child(defn, "deps", f"{target.suite}-{arch}-{mode}", _apt(names), labels)


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


def hybrid_def(target: Target) -> ImageDef:
    """--mode hybrid: the emulate builder (the target's root filesystem, build tools and
    libc6-dev) with the x86-64 cross toolchain of the same suite copied over its own compiler:
    /usr/bin/<triple>-gcc & co. become the cross tools, so the shims, and even a plain /usr/bin/gcc,
    run the compiler natively; so do the shell, make and text tools (HYBRID_TOOLS). The rest
    (perl, python, the project's own programs, configure's test programs) runs under qemu.
    Debian's amd64 cross compiler cannot be installed into a foreign root filesystem with apt
    (its arch-all dependencies are refused), so its files are copied: gathered in an image of
    their own made from the cross builder, then COPY --from, which the engine's classic builder
    allows across platforms."""
    from xbuild.toolchain import get
    arch, name = target.debian_arch, f"{target.suite}-{target.debian_arch}"
    cross = builder_def(target, Mode.CROSS, toolchain=get("gcc-cross", target))
    emulate = builder_def(target, Mode.EMULATE, toolchain=get("gcc-native", target))
    script = _HYBRID_FILES.format(triple=target.triple, arch=arch, tools=" ".join(HYBRID_TOOLS),
                                  targets_own=_TARGETS_OWN)
    files_df = f"FROM {cross.tag}\nRUN {script}\n"
    files = ImageDef(f"{REPO_PREFIX}builder:{name}-hybrid-files-{_digest('builder', files_df)}",
                     "builder", cross.platform,
                     ((LABEL, "builder"), ("org.xbuild.arch", arch), ("org.xbuild.mode", "hybrid-files")),
                     files_df, cross)
    dockerfile = (f"FROM {emulate.tag}\nCOPY --from={files.tag} /xbuild-hybrid/ /\n"
                  f"RUN {_HYBRID_LINKS}\n")
    labels = ((LABEL, "builder"), ("org.xbuild.arch", arch), ("org.xbuild.mode", Mode.HYBRID.value))
    return ImageDef(f"{REPO_PREFIX}builder:{name}-hybrid-{_digest('builder', dockerfile)}", "builder",
                    emulate.platform, labels, dockerfile, emulate, needs=(files,))


def _check_packages(packages) -> None:
    for p in packages:
        if not _PACKAGE.match(p):
            raise ConfigError(f"xbuild.toml: {p!r} is not a Debian package name",
                              hint='packages are Debian names such as "zlib1g-dev"')


def _child(parent: ImageDef, kind: str, name: str, run: str, labels) -> ImageDef:
    dockerfile = _dockerfile(parent.tag, run)
    return ImageDef(f"{REPO_PREFIX}{kind}:{name}-{_digest(kind, dockerfile)}", kind, parent.platform,
                    labels, dockerfile, parent)


def ensure(defn: ImageDef, log, publish: bool = True) -> Image:
    """The image for a definition: reused when present, else pulled from the shared store
    (image_store.py: no parent needed, the record holds every layer), else built (parents first)
    and published when this process publishes (`publish`: not an image made only for another's
    COPY --from, which is removed once that one holds its files)."""
    from xbuild import image_store
    if (img := _existing(defn.tag)) is not None:
        return Image(defn.tag, img.id, False)
    with _building(defn.tag):
        if _existing(defn.tag) is not None or image_store.fetch(defn.tag, log):
            return Image(defn.tag, client().images.get(defn.tag).id, False)
    if defn.parent is not None:
        ensure(defn.parent, log)
    for needed in defn.needs:  # images its COPY --from lines read
        ensure(needed, log, publish=False)
    with _building(defn.tag):
        if (img := _existing(defn.tag)) is not None:  # made by another process meanwhile
            return Image(defn.tag, img.id, False)
        if defn.dockerfile is None:
            _debootstrap(defn, log)
        else:
            _docker_build(defn.tag, defn.dockerfile, defn.platform, dict(defn.labels), log,
                          defn.context)
            for needed in defn.needs:  # made for its COPY --from only: the image holds the files now
                _remove(needed.tag)
    if publish:
        image_store.publish(defn.tag, parents(defn), log)
    return Image(defn.tag, client().images.get(defn.tag).id, True)


def parents(defn: ImageDef) -> tuple[str, ...]:
    """The tags an image is built on, nearest first."""
    out, node = [], defn.parent
    while node is not None:
        out.append(node.tag)
        node = node.parent
    return tuple(out)


def _remove(tag: str) -> None:
    from docker.errors import APIError
    with contextlib.suppress(APIError):  # gone already, or in use
        client().images.remove(tag)


def _debootstrap(defn: ImageDef, log) -> None:
    with tempfile.TemporaryDirectory(prefix="xbuild-rootfs-") as tmp:
        root, archive = Path(tmp, "rootfs"), Path(tmp, "image.tar")
        rootfs.debootstrap(defn.arch, defn.suite, root, log)
        rootfs.image_archive(root, archive, tag=defn.tag, platform=defn.platform,
                             labels=dict(defn.labels))
        shutil.rmtree(root)
        log(f"loading {defn.tag}")
        with archive.open("rb") as f:
            client().images.load(f)


def builder(target: Target, mode: Mode, log, packages: tuple[str, ...] = (),
            tools: tuple[str, ...] = ()) -> Image:
    return ensure(builder_def(target, mode, packages, tools=tools), log)


def runtime(target: Target, log, packages: tuple[str, ...] = ()) -> Image:
    return ensure(runtime_def(target, packages), log)


def _dockerfile(parent: str, run: str) -> str:
    return (f"FROM {parent}\nENV DEBIAN_FRONTEND=noninteractive\n"
            f"RUN {run} && apt-get clean && rm -rf /var/lib/apt/lists/*\n")


def _apt(packages: list[str], add_arch: str | None = None) -> str:
    add = f"dpkg --add-architecture {add_arch} && " if add_arch else ""
    return (f"{add}apt-get update -q && apt-get install -y -q --no-install-recommends "
            + " ".join(packages))


@contextlib.contextmanager
def _build_context(dockerfile: str, context: tuple[tuple[str, str], ...]):
    """What the engine builds from: the Dockerfile alone, or a tar of it and the directories its
    COPY lines name (spooled to a temporary file: zig's is 400 MB)."""
    if not context:
        yield {"fileobj": io.BytesIO(dockerfile.encode())}
        return
    import tarfile
    with tempfile.TemporaryFile(prefix="xbuild-context-") as f:
        with tarfile.open(fileobj=f, mode="w") as tar:
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(dockerfile.encode())
            tar.addfile(info, io.BytesIO(dockerfile.encode()))
            for name, path in context:
                tar.add(path, arcname=name, filter=lambda m: None if "__pycache__" in m.name else m)
        f.seek(0)
        yield {"fileobj": f, "custom_context": True}


def _docker_build(tag: str, dockerfile: str, platform: str, labels: dict, log,
                  context: tuple[tuple[str, str], ...] = ()) -> None:
    from docker.errors import APIError, BuildError
    log(f"building {tag} (first time for this definition: this takes a few minutes)")
    tail: list[str] = []
    try:
        # The low-level API streams the build output, so the user sees apt's progress as it happens.
        with _build_context(dockerfile, context) as ctx:
            _stream_build(ctx, tag, labels, platform, log, tail)
    except (BuildError, APIError) as exc:
        raise ImageBuildFailed(f"building image {tag} failed: {str(exc).strip()}",
                               detail="\n".join(tail),
                               hint="check that containers reach the Debian mirror, and the "
                                    "package names") from None


def _stream_build(ctx: dict, tag: str, labels: dict, platform: str, log, tail: list[str]) -> None:
    from docker.errors import BuildError
    for chunk in client().api.build(**ctx, tag=tag, rm=True, forcerm=True, labels=labels,
                                    decode=True, platform=platform):
        if "stream" in chunk and (line := chunk["stream"].rstrip()):
            tail[:] = (tail + [line])[-30:]
            log(line)
        if "error" in chunk:
            raise BuildError(chunk["error"], tail)


def _ours(img) -> bool:
    """xbuild's own images. An image built FROM one inherits its labels (a Dockerfile project's
    image, or anything else made on a base), so the tags decide: only xbuild/... tags, or none
    (a superseded image, garbage either way)."""
    return img.labels.get(LABEL) in KINDS and all(t.startswith(REPO_PREFIX) for t in img.tags)


def listing() -> list[dict]:
    out = []
    for img in client().images.list(filters={"label": LABEL}):
        if not _ours(img):
            continue
        attrs = img.attrs
        out.append({"tags": img.tags, "id": img.id, "kind": img.labels.get(LABEL),
                    "platform": "/".join(filter(None, (attrs.get("Os"), attrs.get("Architecture"),
                                                        attrs.get("Variant")))),
                    "size": attrs.get("Size", 0)})
    return sorted(out, key=lambda i: (i["tags"] or [""])[0])


def prune() -> list[str]:
    """Remove xbuild images (dependents first); return the tags removed."""
    from docker.errors import APIError
    removed = []
    for img in sorted(listing(), key=lambda i: -KINDS.index(i["kind"])):
        for tag in img["tags"] or [img["id"]]:
            try:
                client().images.remove(tag, noprune=False)
                removed.append(tag)
            except APIError:
                pass  # in use by a container: leave it
    return removed

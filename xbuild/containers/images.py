"""Builder and runtime images, built locally and tagged by a hash of everything that defines them,
so an image is reused until its definition changes. The generic machinery: the Debian bases, the
layers on them, the project's packages on top, and making (or reusing) an image. Which builder a
build runs in is its toolchain family's to say (toolchain/: `builder_image`), with the parts here.

  xbuild/base:<suite>-<arch>-<hash>        debootstrap'd Debian, right platform label (rootfs.py)
  xbuild/builder:<suite>-<arch>-<mode>-<hash>  base + toolchains: cross = host-arch base with Debian's
                                             cross toolchain; emulate = target-arch base, native gcc
                                             (toolchain/gcc.py)
  xbuild/builder:<suite>-<arch>-zig-<cpu>-<glibc>-<hash>  cross builder + zig, its cache warmed for
                                             the board's CPU (toolchain/zig.py)
  xbuild/builder:<suite>-<arch>-hybrid-<hash>  emulate builder + the x86-64 cross toolchain's files,
                                             gathered in ...-hybrid-files-<hash> (toolchain/hybrid.py)
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
from typing import Protocol

from xbuild import BUILD_LOGIC_VERSION
from xbuild.board.targets import Target, debian_userland_cpu, host_arch
from xbuild.containers import rootfs
from xbuild.containers.engine import client
from xbuild.errors import ConfigError, ImageBuildFailed
from xbuild.host.paths import cache_dir, under
from xbuild.schema import DEBIAN_PACKAGE

LABEL = "org.xbuild.kind"
KINDS = ("base", "builder", "deps")  # each built on the one before it
REPO_PREFIX = "xbuild/"
BUILD_USER = "1000:1000"
# What every builder has, whatever the recipe: the image is shared by all recipes.
TOOLS = ["build-essential", "make", "cmake", "ninja-build", "meson", "autoconf", "automake",
         "libtool", "pkgconf", "file", "ca-certificates",
         "ccache"]  # the compiler cache (compiler_cache.py): in every builder, so a cache is a mount
LOCKS = cache_dir("locks")
_PACKAGE = re.compile(DEBIAN_PACKAGE + r"\Z")  # the same names xbuild.toml's schema accepts
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
    platform = "linux/arm/v7" if debian_userland_cpu(target) else target.platform
    base = base_def(target.debian_arch, target.suite, platform)
    packages = tuple(p for p in packages if p not in IN_EVERY_BASE)
    if not packages:
        return base
    _check_packages(packages)
    return child(base, "deps", f"{target.suite}-{target.debian_arch}-run", apt(sorted(packages)),
                 labels("deps", target.debian_arch, "run"))


class Builds(Protocol):
    """What builder_def needs of a toolchain (toolchain.Toolchain: each family defines its own
    builder image, on top of the images here)."""
    @property
    def target(self) -> Target: ...
    @property
    def mode(self) -> str: ...
    def builder_image(self) -> ImageDef: ...
    def target_package(self, package: str) -> str: ...


def builder_def(toolchain: Builds, packages: tuple[str, ...] = (),
                tools: tuple[str, ...] = ()) -> ImageDef:
    """The image a build runs in: the toolchain's builder, plus the project's `packages` (the
    target's libraries: multiarch in a cross builder, toolchain.target_package) and `tools`
    (programs the build runs: the build machine's own packages)."""
    defn = toolchain.builder_image()
    if not packages and not tools:
        return defn
    _check_packages((*packages, *tools))
    target, mode = toolchain.target, toolchain.mode
    names = sorted({*map(toolchain.target_package, packages), *tools})
    return child(defn, "deps", f"{target.suite}-{target.debian_arch}-{mode}", apt(names),
                 labels("deps", target.debian_arch, mode))


def labels(kind: str, arch: str, mode: str) -> tuple[tuple[str, str], ...]:
    return (LABEL, kind), ("org.xbuild.arch", arch), ("org.xbuild.mode", mode)


def host_base(suite: str) -> ImageDef:
    """The build machine's own Debian of that suite (a cross builder's parent)."""
    return base_def(host_arch(), suite, _PLATFORMS.get(host_arch(), "linux/" + host_arch()))


def _check_packages(packages) -> None:
    for p in packages:
        if not _PACKAGE.match(p):
            raise ConfigError(f"xbuild.toml: {p!r} is not a Debian package name",
                              hint='packages are Debian names such as "zlib1g-dev"')


def child(parent: ImageDef, kind: str, name: str, run: str, labels) -> ImageDef:
    """`parent` with apt's `run` on top (tagged as layer())."""
    return layer(parent, kind, name, _dockerfile(parent.tag, run), labels)


def layer(parent: ImageDef, kind: str, name: str, dockerfile: str, labels, *,
          context: tuple[tuple[str, str], ...] = (), needs: tuple[ImageDef, ...] = (),
          platform: str = "") -> ImageDef:
    """An image made by a Dockerfile (FROM parent.tag ...), tagged <kind>:<name>-<its hash>."""
    return ImageDef(f"{REPO_PREFIX}{kind}:{name}-{_digest(kind, dockerfile)}", kind,
                    platform or parent.platform, labels, dockerfile, parent, context=context, needs=needs)


def ensure(defn: ImageDef, log, publish: bool = True) -> Image:
    """The image for a definition: reused when present, else pulled from the shared store
    (image_store.py: no parent needed, the record holds every layer), else built (parents first)
    and published when this process publishes (`publish`: not an image made only for another's
    COPY --from, which is removed once that one holds its files)."""
    from xbuild.containers import image_store
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


def builder(toolchain: Builds, log, packages: tuple[str, ...] = (), tools: tuple[str, ...] = ()) -> Image:
    return ensure(builder_def(toolchain, packages, tools), log)


def runtime(target: Target, log, packages: tuple[str, ...] = ()) -> Image:
    return ensure(runtime_def(target, packages), log)


def _dockerfile(parent: str, run: str) -> str:
    return (f"FROM {parent}\nENV DEBIAN_FRONTEND=noninteractive\n"
            f"RUN {run} && apt-get clean && rm -rf /var/lib/apt/lists/*\n")


def apt(packages: list[str], add_arch: str | None = None) -> str:
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

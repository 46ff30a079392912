"""The compiler cache: Debian's ccache (in every builder image, images.TOOLS), one directory per
(board, OS release, toolchain) bind-mounted into the build container, which keeps no network.

Why ccache and not sccache: ccache needs no server process (sccache runs one, and its S3 backend
wants a network the build container must not have), it is a Debian package of each suite and
architecture (the emulated board's image gets its own armhf ccache from the same mirror), it has
a direct mode (no preprocessor run on a hit), and it knows gcc, cross and native alike. The farm
shares a tenant's cache by moving the directory through the store before and after a build
(fetch/publish below), outside the container.

Hits never change the output:
- no base_dir: ccache would rewrite absolute paths in the compiler's arguments to relative ones,
  and those reach the object (__FILE__, debug info): measured here, an object differs with it.
  A compile given relative paths (make) hits across build directories anyway; one given absolute
  paths (CMake) hits whenever the build directory is the same, which it is except in `verify`.
- hash_dir off: the shims map the build directory to "." (-ffile-prefix-map), so the working
  directory never reaches the output and need not split the cache.
- sloppiness: `locale` (LANG/LC_ALL change messages, not objects: `verify` varies them);
  include_file_mtime/ctime (every file is copied in just before the build, so every header looks
  "too new" to direct mode; nothing edits the tree during a compile).
- the umask is ccache's own (CCACHE_UMASK=000, for its files only in ccache 4): `verify` builds
  with umask 077, and the user who runs xbuild (root or not, any uid) must be able to read and
  `xbuild cache clear` what the container's uid 1000 wrote. The cache lives under the user's own
  cache directory, so open modes inside it expose nothing to other users.

What the container writes there is untrusted: xbuild reads the tree without following links or
opening FIFOs, the farm extracts a cache archive only through the checked extractor, the growth
of the directory counts against the build's disk limit (sandbox.py), and a farm's tenants never
share a cache. On one machine, one user's projects share a namespace, as with any local ccache.

zig (rpi0, --static) is cached too: checked here with trixie's ccache 4.11, `ccache zig cc
-target ... -c` hits (ccache takes `zig` for the compiler and hashes `cc` and every other argument),
and the object is the same bit for bit cold, warm and without ccache. An older ccache that did not
understand the call would only run it uncached (ccache's fallback), never give a wrong object."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from xbuild.errors import CompilerCacheError, ConfigError

MOUNT = "/ccache"                 # where the build container sees it
SWITCH = "XBUILD_COMPILER_CACHE"  # off / 0 / false / no: no compiler cache
SIZE = "XBUILD_COMPILER_CACHE_SIZE"
DEFAULT_SIZE = "2G"               # per namespace: ccache evicts the least recently used beyond it
CACHED_FAMILIES = ("gcc", "zig")  # every family xbuild has (see the docstring for zig)
# ccache 4's counters, by their index in its `stats` files (checked against `ccache --print-stats`).
_HIT_DIRECT, _HIT_PREPROCESSED, _MISS = 22, 8, 4
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([kKMGT]?)(i?)B?\Z")
_UNITS = {"": 1, "k": 1, "K": 1, "M": 2, "G": 3, "T": 4}


def enabled(flag: bool | None = None) -> bool:
    """--compiler-cache/--no-compiler-cache when given, else XBUILD_COMPILER_CACHE (default on)."""
    if flag is not None:
        return flag
    return os.environ.get(SWITCH, "").strip().lower() not in ("off", "0", "false", "no")


def size_limit() -> tuple[str, int]:
    """XBUILD_COMPILER_CACHE_SIZE as ccache's CCACHE_MAXSIZE and in bytes (2G = 2*1000^3,
    2Gi = 2*1024^3, as ccache reads them)."""
    text = os.environ.get(SIZE, "").strip() or DEFAULT_SIZE
    return text, parse_size(text)


def parse_size(text: str) -> int:
    m = _SIZE_RE.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"{SIZE}={text!r} is not a size",
                          hint=f"write a size such as 500M, 2G or 4Gi (default {DEFAULT_SIZE})")
    base = 1024 if m.group(3) else 1000
    return int(float(m.group(1)) * base ** _UNITS[m.group(2)])


def namespace(target: str, os_release: str, toolchain: str) -> str:
    """One cache per board, OS release and toolchain: "rpi3/trixie/gcc-cross", a directory each
    (names from the data files, which hold dashes: a path keeps them apart)."""
    from xbuild.store import is_segment
    parts = (target, os_release, toolchain)
    if not all(map(is_segment, parts)):
        raise ValueError(f"not plain names: {parts}")
    return "/".join(parts)


def root() -> Path:
    from xbuild.paths import cache_dir
    return cache_dir("ccache")


@dataclass(frozen=True)
class CompilerCache:
    """One namespace's cache directory, on this machine, as a build uses it."""
    namespace: str
    directory: Path

    def prepare(self) -> None:
        """Make it writable for the container's uid 1000 whoever runs xbuild (see the docstring),
        behind a root only its owner can enter: another user of this machine must not be able to
        plant objects in the open directory (the container needs no way through the root: the
        engine mounts the namespace's directory itself)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.directory.chmod(0o777)
            if self.directory.is_relative_to(root()):
                root().chmod(0o700)
        except OSError as exc:
            raise CompilerCacheError(f"cannot prepare the compiler cache {self.directory}: "
                                     f"{exc.strerror}") from None

    def mounts(self) -> dict[str, str]:
        return {str(self.directory): MOUNT}

    def environment(self) -> dict[str, str]:
        return {"XBUILD_CCACHE": "ccache",  # the shims' prefix (toolchain.Toolchain.shims)
                "CCACHE_DIR": MOUNT, "CCACHE_MAXSIZE": size_limit()[0], "CCACHE_UMASK": "000",
                "CCACHE_NOHASHDIR": "1",
                "CCACHE_SLOPPINESS": "include_file_mtime,include_file_ctime,locale"}

    def counters(self) -> tuple[int, int]:
        return counters(self.directory)


def for_build(target, toolchain, use: bool | Path) -> CompilerCache | None:
    """The cache a build uses: use is False (none), True (this user's, for the namespace) or a
    directory (a farm worker's job-private copy). None where the toolchain is not cached."""
    if use is False or (use is True and not enabled()):
        return None
    if toolchain.definition.family not in CACHED_FAMILIES or not engine_is_local():
        return None
    size_limit()  # a wrong XBUILD_COMPILER_CACHE_SIZE fails before any work
    ns = namespace(target.name, target.selected.name, toolchain.name)
    return CompilerCache(ns, use if isinstance(use, Path) else root() / ns)


def engine_is_local() -> bool:
    """A bind mount names a directory on the engine's machine: only a local engine (the SDK's
    default socket, or DOCKER_HOST=unix://...) sees ours. A remote one builds without the cache."""
    host = os.environ.get("DOCKER_HOST", "")
    return not host or host.startswith("unix://")


def counters(directory: Path) -> tuple[int, int]:
    """(hits, misses) summed over ccache's stats files, read directly: the host needs no ccache."""
    hits = misses = 0
    for stats in _stats_files(directory):
        try:
            values = [int(v) for v in _read_small(stats).split()]
        except (OSError, ValueError):
            continue  # being rewritten by a build right now (or not ccache's): not counted
        values += [0] * (_HIT_DIRECT + 1 - len(values))  # an older ccache writes fewer
        hits += values[_HIT_DIRECT] + values[_HIT_PREPROCESSED]
        misses += values[_MISS]
    return hits, misses


def _stats_files(directory: Path):
    """ccache's <d>/stats and <d>/<d>/stats: the build container wrote this tree, so no link is
    followed (a link or a FIFO in place of a directory or a file is skipped)."""
    for a in "0123456789abcdef":
        level1 = directory / a
        if not level1.is_dir() or level1.is_symlink():
            continue
        yield level1 / "stats"
        for b in "0123456789abcdef":
            if (level1 / b).is_dir() and not (level1 / b).is_symlink():
                yield level1 / b / "stats"


def _read_small(path: Path) -> str:
    """A regular file's first 64 KiB, never through a link, never blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
        return os.read(fd, 1 << 16).decode("ascii", "replace")
    finally:
        os.close(fd)


def usage(directory: Path) -> tuple[int, int]:
    """(bytes, files) under directory, links not followed."""
    size = files = 0
    for dirpath, _, names in os.walk(directory):
        for name in names:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
    return size, files


def namespaces(target: str = "*", os_release: str = "*") -> list[str]:
    """This user's namespaces, those of a board and/or release only when given."""
    from xbuild.paths import component
    base = root()
    target, os_release = (n if n == "*" else component(n, "a cache name") for n in (target, os_release))
    return sorted(p.relative_to(base).as_posix() for p in base.glob(f"{target}/{os_release}/*")
                  if p.is_dir() and not p.is_symlink())


def clear(directory: Path) -> None:
    try:
        shutil.rmtree(directory)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise CompilerCacheError(f"cannot remove {exc.filename or directory}: {exc.strerror}",
                                 hint="remove it as the user who owns it (a cache written by an "
                                      "older xbuild may belong to uid 1000)") from None


# --- the farm: a tenant's cache moves through the store ---------------------------------------
def store_key(tenant: str, ns: str) -> str:
    """The tenant is the server's own name for the token's owner (jobs.tenant_of), never a
    name from the request, so no tenant can read or plant another's cache."""
    from xbuild.store import is_segment
    if not is_segment(tenant):
        raise ValueError(f"not a plain name: {tenant!r}")
    return f"compiler-cache/{tenant}/{namespace(*ns.split('/'))}.tar"


def fetch(store, tenant: str, ns: str, dest: Path, log: Callable[[str], None]) -> bool:
    """The tenant's cache for the namespace into dest (empty, job-private); False when none."""
    from xbuild.archive import extract
    from xbuild.errors import BadArtifact, OutputTooLarge
    key = store_key(tenant, ns)
    if not store.exists(key):
        log(f"[xbuild] compiler cache: none yet for {ns}")
        return False
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        tar = Path(tmp) / "cache.tar"
        store.get_file(key, tar)
        try:
            extract(tar, dest, "the compiler cache", limit=_publish_cap())
        except (BadArtifact, OutputTooLarge) as exc:  # the tenant's own builds wrote it: start empty
            log(f"[xbuild] compiler cache: not used ({exc.message})")
            shutil.rmtree(dest, ignore_errors=True)
            return False
    _open_up(dest)
    log(f"[xbuild] compiler cache: fetched {ns} ({usage(dest)[0]} bytes)")
    return True


def publish(store, tenant: str, ns: str, src: Path, log: Callable[[str], None]) -> bool:
    """src as one tar (ccache's files are compressed already), if within the size cap."""
    from xbuild.archive import sha256_file, write_tar
    with tempfile.TemporaryDirectory(dir=src.parent) as tmp:
        tar = Path(tmp) / "cache.tar"
        with tar.open("wb") as f:
            # mtimes kept: ccache evicts the least recently used by them
            write_tar(src, f, mtime=int(time.time()), exclude=lambda rel: rel.split("/")[0] in ("lock", "tmp"))
        size = tar.stat().st_size
        if size > _publish_cap():
            log(f"[xbuild] compiler cache: not published ({size} bytes, over {SIZE})")
            return False
        store.put_file(store_key(tenant, ns), tar, sha256_file(tar))
    log(f"[xbuild] compiler cache: published {ns} ({size} bytes)")
    return True


@contextlib.contextmanager
def shared(store, tenant: str, spec, work: Path, log: Callable[[str], None]):
    """A worker's build with the tenant's cache: fetched into work/ccache (job-private) before,
    published after a build that compiled (not after a failure, nor a build-cache hit). Yields
    run_build's compiler_cache argument."""
    cc = for_build(spec.target, spec.toolchain, work / "ccache") \
        if enabled() and spec.recipe.kind != "image" else None
    if cc is None:
        yield False
        return
    cc.prepare()
    fetch(store, tenant, cc.namespace, cc.directory, log)
    cc.prepare()
    before = cc.counters()
    yield cc.directory
    if cc.counters() != before:
        publish(store, tenant, cc.namespace, cc.directory, log)


# --- CI runners: one shared cache through an s3:// XBUILD_STORE -------------------------------
PUSH_ENV = "XBUILD_COMPILER_CACHE_PUSH"
# The store's name for the runners' cache (everyone with the bucket's keys): never a farm
# tenant's, which are hex digests (jobs.tenant_of).
CI_TENANT = "shared"


@contextlib.contextmanager
def through_store(spec, use: bool | Path, log: Callable[[str], None]):
    """A command-line build whose XBUILD_STORE is a shared s3:// store (as images.py's pulls): a
    local cache that is empty (an ephemeral CI runner) first takes the store's copy, and after a
    build that compiled it goes back to the store when XBUILD_COMPILER_CACHE_PUSH=1. Push from
    trusted runs only (a CI's main branch, like XBUILD_IMAGES_PUSH): every later run's compiler
    answers from what was pushed. The store failing costs speed, never the build."""
    from xbuild.errors import StoreError
    from xbuild.image_store import shared_url
    from xbuild.store import open_store
    url = shared_url()
    cc = for_build(spec.target, spec.toolchain, use) if use is True and spec.recipe.kind != "image" else None
    if cc is None or url is None:
        yield
        return
    try:
        store = open_store(url)
        if usage(cc.directory)[1] == 0:
            cc.prepare()
            fetch(store, CI_TENANT, cc.namespace, cc.directory, log)
    except StoreError as exc:
        log(f"[xbuild] compiler cache: not fetched ({exc.message})")
    before = cc.counters()
    yield
    if cc.counters() != before and os.environ.get(PUSH_ENV) == "1":
        try:
            publish(open_store(url), CI_TENANT, cc.namespace, cc.directory, log)
        except StoreError as exc:
            log(f"[xbuild] compiler cache: not published ({exc.message})")


def _publish_cap() -> int:
    return size_limit()[1] * 5 // 4  # ccache trims to its limit after the build; tar adds headers


def _open_up(directory: Path) -> None:
    """Extracted files belong to the worker: the container's uid 1000 must write them too."""
    for dirpath, _, filenames in os.walk(directory):
        os.chmod(dirpath, 0o777)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o666)

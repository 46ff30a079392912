"""The compiler cache: Debian's ccache (in every builder image, images.TOOLS), one directory per
(board, OS release, toolchain, project) bind-mounted into the build container, which keeps no
network.

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

What the container writes there is untrusted input to every later build that mounts it:
- one namespace per project (namespace(), project_key(): the resolved path on one machine, the
  project's name within a farm tenant): a build sees, and can rewrite, only its own project's
  entries, so it cannot change what another project's build produces (its own project's later
  builds it can: they run the same project's code anyway, unless an untrusted branch was built in
  the same folder, which docs/store-and-caches.md warns of). Sharing one namespace between projects is the
  user's choice (XBUILD_COMPILER_CACHE_SHARE=1 or --share-compiler-cache), and then any of them
  can change what the others' builds produce;
- ccache's configuration never comes from the cache: CCACHE_CONFIGPATH names /xbuild/ccache.conf
  (written by xbuild into each build's payload), so a ccache.conf the container left in /ccache
  (prefix_command, compiler_check=%command%, remote_storage, ...) is never read;
- before each build, and after it before the host reads it, the host removes from the cache
  whatever is not a regular file or a directory, and directories deeper than ccache's (scrub):
  a FIFO where ccache keeps its counters would block every later compile, a link would make
  ccache (or the host) read elsewhere, a deep tree would overflow a recursive walk. The build
  script's own ccache calls run under `timeout` as well.
The host reads the tree without following links or opening FIFOs, the farm extracts a cache
archive only through the checked extractor, the growth of the directory counts against the
build's disk limit (sandbox.py), and a farm's tenants never share a cache.

zig (rpi0, --static) is cached too: checked here with trixie's ccache 4.11, `ccache zig cc
-target ... -c` hits (ccache takes `zig` for the compiler and hashes `cc` and every other argument),
and the object is the same bit for bit cold, warm and without ccache. An older ccache that did not
understand the call would only run it uncached (ccache's fallback), never give a wrong object."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xbuild import environment
from xbuild.errors import CompilerCacheError, ConfigError
from xbuild.host.safefs import DIR_FLAGS, NestedTooDeep, tree_usage

MOUNT = "/ccache"                 # where the build container sees it
CONFIG = "/xbuild/ccache.conf"    # ccache's only configuration file (toolchain.ROOT: the payload)
CONFIG_TEXT = ("# Written by xbuild for this build (compiler_cache.py): ccache reads this file instead of\n"
               "# /ccache/ccache.conf, which earlier builds could write. The settings are in CCACHE_*.\n")
SWITCH = "XBUILD_COMPILER_CACHE"  # off / 0 / false / no: no compiler cache
SHARE = "XBUILD_COMPILER_CACHE_SHARE"  # 1 / on / true / yes: all projects in one namespace
SHARED = "shared"                 # that namespace's last part (a project's always ends in a hash)
ROOT_NAME, LEGACY_NAME = "compiler-cache", "ccache"  # see root()
_MAX_DEPTH = 6  # ccache 4 nests at most 4 levels of directories (plus tmp/, lock/): deeper is not its
# The language toolchains' own caches (cargo's target directory, Go's build cache) live in the same
# namespace, under tools/ (XBUILD_TOOL_CACHE in the build): same isolation, same clean-up, deeper
# trees (a crate's build script may nest its OUT_DIR as it likes; the cap only bounds the walk).
TOOLS = "tools"
_TOOLS_DEPTH = 40
SIZE = "XBUILD_COMPILER_CACHE_SIZE"
# ccache 4's counters, by their index in its `stats` files (checked against `ccache --print-stats`).
_HIT_DIRECT, _HIT_PREPROCESSED, _MISS = 22, 8, 4
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([kKMGT]?)(i?)B?\Z")
_UNITS = {"": 1, "k": 1, "K": 1, "M": 2, "G": 3, "T": 4}


def enabled(flag: bool | None = None) -> bool:
    """--compiler-cache/--no-compiler-cache when given, else XBUILD_COMPILER_CACHE (default on)."""
    if flag is not None:
        return flag
    return environment.flag(SWITCH)


def sharing(flag: bool | None = None) -> bool:
    """--share-compiler-cache when given, else XBUILD_COMPILER_CACHE_SHARE (default off)."""
    if flag is not None:
        return flag
    return environment.flag(SHARE)


def size_limit() -> tuple[str, int]:
    """XBUILD_COMPILER_CACHE_SIZE as ccache's CCACHE_MAXSIZE and in bytes (2G = 2*1000^3,
    2Gi = 2*1024^3, as ccache reads them)."""
    text = environment.text(SIZE)
    return text, parse_size(text)


def parse_size(text: str) -> int:
    m = _SIZE_RE.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"{SIZE}={text!r} is not a size",
                          hint=f"write a size such as 500M, 2G or 4Gi (default {environment.SETTINGS[SIZE].default})")
    base = 1024 if m.group(3) else 1000
    return int(float(m.group(1)) * base ** _UNITS[m.group(2)])


def namespace(target: str, os_release: str, toolchain: str, project: str) -> str:
    """One cache per board, OS release, toolchain and project: "rpi3/trixie/gcc-cross/app-<hash>"
    (project_key), or ".../shared" for the projects that opted into sharing. A directory each
    (names from the data files hold dashes: a path keeps them apart)."""
    from xbuild.store import is_segment
    parts = (target, os_release, toolchain, project)
    if not all(map(is_segment, parts)):
        raise ValueError(f"not plain names: {parts}")
    return "/".join(parts)


def project_key(label: str, identity: str) -> str:
    """A project's part of its namespace: the hash of what tells it from every other project (its
    resolved path on this machine; the farm's project name within a tenant), after its folder's
    name for the reader of `xbuild cache stats`."""
    from xbuild.store import to_segment
    digest = hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{to_segment(label)[:40]}-{digest}"


def root() -> Path:
    """~/.cache/xbuild/compiler-cache. Not ccache/, where xbuild kept one namespace per board,
    release and toolchain for all projects, mounted whole into every build: any name in there
    (a future project's directory included) may have been planted, so nothing there is mounted
    again (`xbuild cache clear` removes it)."""
    from xbuild.host.paths import cache_dir
    return cache_dir(ROOT_NAME)


def legacy_root() -> Path:
    from xbuild.host.paths import cache_dir
    return cache_dir(LEGACY_NAME)


@dataclass(frozen=True)
class CompilerCache:
    """One namespace's cache directory, on this machine, as a build uses it."""
    namespace: str
    directory: Path

    def prepare(self) -> None:
        """Make it writable for the container's uid 1000 whoever runs xbuild (see the docstring),
        behind a root only its owner can enter: another user of this machine must not be able to
        plant objects in the open directory (the container needs no way through the root: the
        engine mounts the namespace's directory itself). Then scrub what earlier builds left."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.directory.chmod(0o777)
            if self.directory.is_relative_to(root()):
                root().chmod(0o700)
            scrub(self.directory)
        except OSError as exc:
            raise CompilerCacheError(f"cannot prepare the compiler cache {self.directory}: "
                                     f"{exc.strerror}") from None

    def scrub(self) -> None:
        """After a build, before the host reads the tree: best effort (the next prepare insists)."""
        with contextlib.suppress(OSError):
            scrub(self.directory)

    def mounts(self) -> dict[str, str]:
        return {str(self.directory): MOUNT}

    def environment(self) -> dict[str, str]:
        return {"XBUILD_CCACHE": "ccache",  # the shims' prefix (toolchain.Toolchain.shims)
                "CCACHE_DIR": MOUNT, "CCACHE_CONFIGPATH": CONFIG, "CCACHE_MAXSIZE": size_limit()[0],
                "XBUILD_TOOL_CACHE": f"{MOUNT}/{TOOLS}",  # cargo's and Go's (recipes/cargo.toml, go.toml)
                "CCACHE_UMASK": "000", "CCACHE_NOHASHDIR": "1",
                "CCACHE_SLOPPINESS": "include_file_mtime,include_file_ctime,locale"}

    def counters(self) -> tuple[int, int]:
        return counters(self.directory)


def for_build(spec, use: bool | Path, *, share: bool | None = None,
              project: str | None = None) -> CompilerCache | None:
    """The cache a build uses: use is False (none), True (this user's) or a directory (a farm
    worker's job-private copy). None where the build compiles nothing of ours (a Dockerfile) or
    the toolchain is not cached. The namespace's last part: project when given (the farm's),
    else SHARED when sharing (share, else XBUILD_COMPILER_CACHE_SHARE), else this project's
    resolved path's key."""
    if use is False or (use is True and not enabled()):
        return None
    if spec.recipe.kind == "image" or not spec.toolchain.compiler_cache \
            or not engine_is_local():
        return None
    size_limit()  # a wrong XBUILD_COMPILER_CACHE_SIZE fails before any work
    if project is None:
        project = SHARED if sharing(share) else project_key(spec.project.name, str(spec.project))
    ns = namespace(spec.target.name, spec.target.selected.name, spec.toolchain.name, project)
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


class TooDeep(CompilerCacheError):
    """A cache tree nested deeper than any ccache makes it: a build's doing."""


def usage(directory: Path) -> tuple[int, int]:
    """(bytes, files) under directory (safefs.tree_usage), or TooDeep with what to do."""
    try:
        return tree_usage(directory)
    except NestedTooDeep as exc:
        raise TooDeep(f"{exc} deep, which no ccache makes", hint="xbuild cache clear (a build wrote them)") from None


def namespaces(target: str = "*", os_release: str = "*") -> list[str]:
    """This user's namespaces, those of a board and/or release only when given."""
    from xbuild.host.paths import component
    base = root()
    target, os_release = (n if n == "*" else component(n, "a cache name") for n in (target, os_release))
    found = (p.relative_to(base).as_posix() for p in base.glob(f"{target}/{os_release}/*/*")
             if p.is_dir() and not p.is_symlink())
    return sorted(ns for ns in found if _is_project(ns.rsplit("/", 1)[-1]))


def _is_project(name: str) -> bool:
    return name == SHARED or re.fullmatch(r"[A-Za-z0-9._+-]*-[0-9a-f]{16}", name) is not None


def clear(directory: Path) -> None:
    """Remove a cache directory and all in it (see _remove_tree)."""
    try:
        fd = os.open(directory.parent, DIR_FLAGS)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _cannot_remove(directory, exc) from None
    try:
        _remove_tree(fd, directory.name)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _cannot_remove(directory, exc) from None
    finally:
        os.close(fd)


def _cannot_remove(directory: Path, exc: OSError) -> CompilerCacheError:
    return CompilerCacheError(f"cannot remove {exc.filename or directory}: {exc.strerror}",
                              hint="remove it as the user who owns it (a cache written by an "
                                   "older xbuild may belong to uid 1000)")


# --- what a build left in the cache, handled without following it ------------------------------


def scrub(directory: Path) -> None:
    """Remove from a cache tree whatever ccache does not leave there: FIFOs, sockets, devices and
    links (a FIFO where ccache keeps its counters blocks every later compile; a link makes ccache
    or the host read elsewhere; ccache's own lock links only live while a ccache runs, and one
    broken by this is taken for stale, which ccache's locking allows for), and directories nested
    deeper than ccache nests them. Through directory descriptors opened with O_NOFOLLOW: a
    directory swapped for a link meanwhile is never entered."""
    fd = os.open(directory, DIR_FLAGS)
    try:
        _scrub(fd, 1)
    finally:
        os.close(fd)


def _scrub(fd: int, depth: int, limit: int = _MAX_DEPTH) -> None:
    with os.scandir(fd) as it:
        entries = [(e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False)) for e in it]
    for name, is_dir, is_file in entries:
        with contextlib.suppress(FileNotFoundError):  # a concurrent ccache's own clean-up
            if is_dir and depth > limit:
                _remove_tree(fd, name)
            elif is_dir:
                sub = os.open(name, DIR_FLAGS, dir_fd=fd)
                try:
                    _scrub(sub, depth + 1, _TOOLS_DEPTH if depth == 1 and name == TOOLS else limit)
                finally:
                    os.close(sub)
            elif not is_file:
                os.unlink(name, dir_fd=fd)


def _remove_tree(parent: int, name: str) -> None:
    """parent/name and everything under it, never following a link, in a loop rather than a
    recursion (a build can nest directories deeper than Python's stack, and than PATH_MAX):
    every directory below is first moved up into the top one, then emptied and removed."""
    try:
        top = os.open(name, DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):  # ELOOP: a link in its place
            raise
        os.unlink(name, dir_fd=parent)
        return
    try:
        pending = _empty(top, top, move=False)
        while pending:
            current = pending.pop()
            fd = os.open(current, DIR_FLAGS, dir_fd=top)
            try:
                pending += _empty(fd, top, move=True)
            finally:
                os.close(fd)
            os.rmdir(current, dir_fd=top)
    finally:
        os.close(top)
    os.rmdir(name, dir_fd=parent)


def _empty(fd: int, top: int, move: bool) -> list[str]:
    """Unlink what is not a directory in fd; return its directories' names under top (moved up
    there first unless fd is top)."""
    with os.scandir(fd) as it:
        entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
    dirs = []
    for entry, is_dir in entries:
        if not is_dir:
            os.unlink(entry, dir_fd=fd)
        elif move:
            moved = f".xbuild-removing-{secrets.token_hex(8)}"
            os.rename(entry, moved, src_dir_fd=fd, dst_dir_fd=top)
            dirs.append(moved)
        else:
            dirs.append(entry)
    return dirs


# --- the farm: a tenant's cache moves through the store ---------------------------------------
def store_key(tenant: str, ns: str) -> str:
    """The tenant is the server's own name for the token's owner (jobs.tenant_of), never a
    name from the request, so no tenant can read or plant another's cache."""
    from xbuild.store import is_segment
    parts = ns.split("/")
    if not is_segment(tenant) or len(parts) != 4:
        raise ValueError(f"not a tenant and a namespace: {tenant!r}, {ns!r}")
    return f"compiler-cache/{tenant}/{namespace(*parts)}.tar"


def fetch(store, tenant: str, ns: str, dest: Path, log: Callable[[str], None]) -> bool:
    """The tenant's cache for the namespace into dest (empty, job-private); False when none."""
    from xbuild.errors import BadArtifact, OutputTooLarge
    from xbuild.host.archive import extract
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
    scrub(dest)  # in-tree links pass the extractor: gone before _open_up's chmod could follow one
    _open_up(dest)
    log(f"[xbuild] compiler cache: fetched {ns} ({usage(dest)[0]} bytes)")
    return True


def publish(store, tenant: str, ns: str, src: Path, log: Callable[[str], None]) -> bool:
    """src as one tar (ccache's files are compressed already), if within the size cap; scrubbed
    first (the build just wrote it), so that only files and directories go into it."""
    from xbuild.host.archive import sha256_file, write_tar
    scrub(src)
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
    """A worker's build with the tenant's cache for the project: fetched into work/ccache
    (job-private) before, published after a build that compiled (not after a failure, nor a
    build-cache hit). Yields run_build's compiler_cache argument (a CompilerCache, or False).
    One namespace per project name within the tenant (the job's project, the directory the
    source was unpacked into): a tenant's projects share a cache only under one name."""
    cc = for_build(spec, work / "ccache", project=project_key(spec.project.name, spec.project.name)) \
        if enabled() else None
    if cc is None:
        yield False
        return
    cc.prepare()
    fetch(store, tenant, cc.namespace, cc.directory, log)
    cc.prepare()
    before = cc.counters()
    yield cc
    if cc.counters() != before:
        publish(store, tenant, cc.namespace, cc.directory, log)


# --- CI runners: one shared cache through an s3:// XBUILD_STORE -------------------------------
PUSH_ENV = "XBUILD_COMPILER_CACHE_PUSH"
# The store's name for the runners' cache (everyone with the bucket's keys): never a farm
# tenant's, which are hex digests (jobs.tenant_of).
CI_TENANT = "shared"


@contextlib.contextmanager
def through_store(cc: CompilerCache | None, log: Callable[[str], None]):
    """A command-line build (with cc, this user's cache: for_build) whose XBUILD_STORE is a shared
    s3:// store (as images.py's pulls): a local cache that is empty (an ephemeral CI runner)
    first takes the store's copy, and after a build that compiled it goes back to the store when
    XBUILD_COMPILER_CACHE_PUSH=1. Push from trusted runs only (a CI's main branch, like
    XBUILD_IMAGES_PUSH): every later run's compiler answers from what was pushed. The store
    failing costs speed, never the build."""
    from xbuild.containers.image_store import shared_url
    from xbuild.errors import StoreError
    from xbuild.store import open_store
    url = shared_url()
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
    if cc.counters() != before and environment.flag(PUSH_ENV):
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

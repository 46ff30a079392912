"""The project's source tree: what goes into the build container, and the hash of its content.

The hash covers names, file types, exec bits, link targets and file contents, never mtimes, so a
fresh clone of the same commit hits the cache. Per-file digests are remembered by (size, mtime,
inode), the way git's index does, so an unchanged tree of any size is hashed without reading it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from xbuild.errors import SourceTooLarge, UnreadableProject
from xbuild.host.archive import MB, max_source, max_source_files, sha256_of, too_many, write_tar
from xbuild.host.paths import cache_dir
from xbuild.host.safefs import open_read, walk, write_text

VCS_DIRS = (".git", ".hg", ".svn")
_CACHE_DIR = cache_dir("srchash")


def excluder(project: Path, out: Path, out_dirname: str):
    """What never goes into the build: VCS data, xbuild-out/, the output directory, and what xbuild
    writes beside the output directory (`.NAME.tmp-*`, `NAME.failed.log`, the `NAME.failed/` tree
    --keep keeps), which is inside the project when --out is."""
    out_rel = os.path.relpath(out, project)
    parent_rel, name = os.path.split(out_rel)
    kept = os.path.join(parent_rel, f"{name}.failed")

    def exclude(rel: str) -> bool:
        top = rel.split("/", 1)[0]
        if top in (out_dirname, *VCS_DIRS) or any(rel == d or rel.startswith(d + "/")
                                                   for d in (out_rel, kept)):
            return True
        where, base = os.path.split(rel)
        return where == parent_rel and (base.startswith(f".{name}.") or base == f"{name}.failed.log")
    return exclude


def _walk(root: Path, exclude):
    for dirpath, dirnames, filenames in walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        keep = []
        for d in sorted(dirnames):
            rel = d if rel_dir == "." else f"{rel_dir}/{d}"
            if not exclude(rel):
                keep.append(d)
                yield rel, Path(dirpath, d)
        dirnames[:] = keep
        for f in sorted(filenames):
            rel = f if rel_dir == "." else f"{rel_dir}/{f}"
            if not exclude(rel):
                yield rel, Path(dirpath, f)


class _Entry(NamedTuple):
    """What the hash needs of one entry (a Path and an os.stat_result cost ten times as much:
    100,000 entries of them took 130 MB)."""
    rel: str
    mode: int
    size: int
    sig: str  # size, mtime and inode: the file is unchanged while all three are (git's index)


def _check_size(project: Path, entries: list[_Entry], limit: int) -> None:
    """Apparent sizes: a sparse file counts in full (it is copied in full into the build)."""
    files = [e for e in entries if stat.S_ISREG(e.mode)]
    total = sum(e.size for e in files)
    if total > limit:
        largest = max(files, key=lambda e: e.size)
        raise SourceTooLarge(f"the project {project} holds {total // MB} MB, more than "
                             f"XBUILD_MAX_SOURCE_MB={limit // MB}; the largest file is {largest.rel} "
                             f"({largest.size // MB} MB, counted by its apparent size)")


def _entries(project: Path, exclude) -> list[_Entry]:
    """Everything that goes into the build, sorted; refuses more than XBUILD_MAX_SOURCE_FILES as
    it walks (the list is what grows with the tree), and is UnreadableProject when a part cannot
    be read (a silent gap would build something else than the tree)."""
    limit = max_source_files()
    entries: list[_Entry] = []
    try:
        for rel, path in _walk(project, exclude):
            if len(entries) == limit:
                raise too_many(f"the project {project}", limit)
            st = path.lstat()
            entries.append(_Entry(rel, st.st_mode, st.st_size, f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"))
    except OSError as exc:
        raise _unreadable(project, exc) from None
    entries.sort()
    return entries


def _unreadable(project: Path, exc: OSError) -> UnreadableProject:
    where = os.path.relpath(exc.filename, project) if isinstance(exc.filename, str) else "?"
    shown = where if len(where) < 200 else f"{where[:80]}...{where[-80:]} ({len(where)} characters)"
    return UnreadableProject(f"cannot read {shown!r} in the project {project}: {exc.strerror}")


def check_size(project: Path, exclude) -> None:
    """SourceTooLarge for a tree over XBUILD_MAX_SOURCE_MB, from its names and sizes alone: said
    before anything reads a project file's content (spec.resolve), not after."""
    _check_size(project, _entries(project, exclude), max_source())


def tree_hash(project: Path, exclude) -> str:
    """The content hash; refuses a tree larger than XBUILD_MAX_SOURCE_MB or with more entries than
    XBUILD_MAX_SOURCE_FILES before reading any file."""
    entries = _entries(project, exclude)
    _check_size(project, entries, max_source())
    cache_file = _CACHE_DIR / (hashlib.sha256(str(project).encode()).hexdigest()[:24] + ".json")
    try:
        known = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        known = {}
    fresh, h = {}, hashlib.sha256()
    for rel, mode, _, sig in entries:
        if stat.S_ISLNK(mode):
            entry = f"L {rel} {os.readlink(project / rel)}"
        elif stat.S_ISDIR(mode):
            entry = f"D {rel}"
        elif stat.S_ISREG(mode):
            try:
                digest = known.get(rel, {}).get(sig) or _digest(project / rel)
            except OSError as exc:  # no permission; or no longer a regular file since lstat
                raise _unreadable(project, exc) from None
            fresh[rel] = {sig: digest}
            entry = f"F {rel} {'x' if mode & 0o111 else '-'} {digest}"
        else:
            continue  # sockets, fifos: never copied into the build either
        h.update(os.fsencode(entry) + b"\0")  # a name need not be UTF-8: its bytes, as on disk
    if fresh != known:
        try:
            _CACHE_DIR.mkdir(parents=True, exist_ok=True)
            write_text(cache_file, json.dumps(fresh))
        except OSError:
            pass  # a read-only home only costs speed
    return h.hexdigest()


def _digest(path: Path) -> str:
    """A regular file's SHA-256, never through a link or a FIFO put in its place since lstat."""
    with open_read(path) as f:
        return sha256_of(f)


@contextlib.contextmanager
def payload(project: Path, exclude, mtime: int, src_dir: str = "/xbuild/src",
            then: bytes = b"") -> Iterator[BinaryIO]:
    """The project as a tar for the container (owned by the build user, every mtime the same), in a
    temporary file, so that a big tree never sits in memory. `then`, a whole tar, continues it:
    one copy into the container instead of two (each costs the engine a mount and an untar)."""
    with tempfile.TemporaryFile(prefix="xbuild-source-") as f:
        end = write_tar(project, f, mtime=mtime, uid=1000, gid=1000,
                        prefix=src_dir.strip("/") + "/", exclude=exclude, clamp=False)
        if then:
            f.seek(end)
            f.truncate()
            f.write(then)
        f.seek(0)
        yield f

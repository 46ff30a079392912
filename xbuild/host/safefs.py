"""The host's file operations on paths a project could have shaped: the one place that reads a
project file, and that writes in or beside an output directory.

A project is data on the host (tests/security/README.md). It can ship links (`xbuild-out/rpi3 ->
~`, `xbuild-out/rpi3.failed.log -> ~/.bashrc`), FIFOs that block whoever opens them, and sparse
files of any apparent size. So: every read is bounded, opens a regular file only and never through
a link; every write creates a fresh file (O_EXCL) and renames it over its destination, which
replaces a link there instead of following it; and an output path may not be a link, nor pass
through a link inside the project. The project cannot change the host's tree while it builds (the
container gets a copy), so checking the directories once, before the build, is enough."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from xbuild.errors import LinkInOutputPath, UnsafeProjectFile

# The most of a project file xbuild ever reads on the host (xbuild.toml, a Dockerfile).
MAX_PROJECT_FILE = 1 << 20


def open_regular(path: Path) -> int:
    """A descriptor of the regular file at path: never through a link at its last component (ELOOP),
    never blocking on a FIFO or a device (they are refused, EINVAL)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_read(path: Path) -> BinaryIO:
    """open_regular as a file object (for streaming a file whole: hashing, archiving)."""
    return os.fdopen(open_regular(path), "rb")


def read_prefix(path: Path, limit: int) -> bytes:
    """At most `limit` bytes from the start of a regular file (OSError as for open_regular)."""
    with open_read(path) as f:
        return f.read(limit)


def is_regular(path: Path) -> bool:
    """A regular file itself, not a link to one (a link may lead out of the project)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def is_directory(path: Path) -> bool:
    """A directory itself, not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def read_project_file(path: Path, what: str, limit: int = MAX_PROJECT_FILE) -> bytes:
    """A project file xbuild must read whole (xbuild.toml, a Dockerfile): a regular file of at most
    `limit` bytes, else UnsafeProjectFile (exit 47) saying what it is instead."""
    try:
        data = read_prefix(path, limit + 1)
    except OSError as exc:
        kind = _kind(path)
        why = f"is {kind}: xbuild reads only a regular file there" if kind else \
            f"cannot be read: {exc.strerror}"
        raise UnsafeProjectFile(f"{what} {path.name!r} {why}") from None
    if len(data) > limit:
        raise UnsafeProjectFile(f"{what} {path.name!r} is larger than {limit >> 10} KiB: "
                                "not a file xbuild reads whole")
    return data


def _kind(path: Path) -> str | None:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    kinds = {stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device",
             stat.S_IFBLK: "a device", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}
    return kinds.get(stat.S_IFMT(mode))


def walk(root: Path, strict: bool = True) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk's top-down (dirpath, dirnames, filenames; dirnames may be pruned in place), without
    recursion (3.11's os.walk recurses: a project nesting 1000 directories is a RecursionError)
    and never into a link. A directory that cannot be read (too long a path, no permission) is
    an OSError when strict, not a silent gap in what is built."""
    stack = [os.fspath(root)]
    while stack:
        top = stack.pop()
        dirs: list[str] = []
        files: list[str] = []
        try:
            with os.scandir(top) as entries:
                for e in entries:
                    (dirs if e.is_dir(follow_symlinks=False) else files).append(e.name)
        except OSError:
            if strict:
                raise
            continue
        yield top, dirs, files
        stack.extend(os.path.join(top, d) for d in reversed(dirs))


def remove_tree(root: Path) -> None:
    """shutil.rmtree(root, ignore_errors=True) without recursion (3.11's recurses: a tree 1000
    deep, which a project, an upload or a build's output may be, is a RecursionError) and never
    through a link (a link, root included, is removed itself)."""
    if os.path.islink(root):
        with contextlib.suppress(OSError):
            os.unlink(root)
        return
    dirs = []
    for top, _, files in walk(root, strict=False):
        dirs.append(top)
        for name in files:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(top, name))
    for d in reversed(dirs):  # a parent comes before its children in walk's order
        with contextlib.suppress(OSError):
            os.rmdir(d)


@contextlib.contextmanager
def temp_dir(prefix: str, parent: Path) -> Iterator[Path]:
    """tempfile.TemporaryDirectory, removed with remove_tree (whatever depth it was filled to)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield tmp
    finally:
        remove_tree(tmp)


def write_replacing(dest: Path, fill: Callable[[BinaryIO], object]) -> None:
    """dest written whole: a fresh file beside it (O_EXCL: nothing there is opened), filled, then
    renamed over dest, which replaces a link at dest instead of writing through it."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        os.fchmod(fd, 0o644)  # as an output file is (mkstemp's 0600 would hide a log from its group)
        with os.fdopen(fd, "wb") as f:
            fill(f)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(dest: Path, text: str) -> None:
    write_replacing(dest, lambda f: f.write(text.encode()))


def copy_replacing(src: Path, dest: Path) -> None:
    """A file xbuild made (src) copied to dest as write_replacing writes."""
    with open_read(src) as s:
        write_replacing(dest, lambda f: shutil.copyfileobj(s, f, 1 << 20))


def physical(path: Path, project: Path | None = None, what: str = "the output directory") -> Path:
    """path made absolute with the links on its way resolved, refusing (LinkInOutputPath) path
    itself as a link and any link on the way that lies inside `project` (resolved): that one the
    project could have placed. Links above the project (the user's own) are followed."""
    path = Path(os.path.abspath(path))
    parts = path.parts[1:]
    cur = Path(path.anchor)
    for i, name in enumerate(parts):
        nxt = cur / name
        try:
            is_link = stat.S_ISLNK(os.lstat(nxt).st_mode)
        except OSError:  # missing (made later) or not a directory (its own error later)
            return nxt.joinpath(*parts[i + 1:])
        if is_link and i == len(parts) - 1:
            raise LinkInOutputPath(f"{what} {path} is a symbolic link (to {_target(nxt)!r}): "
                                   "xbuild never writes through a link")
        if is_link and project is not None and cur.is_relative_to(project):
            raise LinkInOutputPath(f"{what} {path} goes through {nxt}, a symbolic link inside the "
                                   f"project (to {_target(nxt)!r}): xbuild never writes through a link")
        cur = nxt.resolve() if is_link else nxt
    return cur


def _target(link: Path) -> str:
    try:
        return os.readlink(link)
    except OSError:
        return "?"


def links_in(directory: Path) -> list[str]:
    """The names of the links directly in directory (an output directory holds none of its own)."""
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if e.is_symlink())
    except OSError:
        return []


class NestedTooDeep(ValueError):
    """A tree nested deeper than its counter goes."""


# How deep tree_usage counts: past any compiler cache's tree (ccache nests 2 levels), short of
# a descriptor per level of whatever a build nested.
MAX_COUNTED_DEPTH = 64
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def tree_usage(directory: Path, max_depth: int = MAX_COUNTED_DEPTH) -> tuple[int, int]:
    """(bytes, files) under directory: links not followed, no recursion (a build can nest
    directories deeper than Python's stack), every directory opened relative to its parent with
    O_NOFOLLOW (no path grows with the depth, none is swapped for a link). Deeper than
    max_depth raises NestedTooDeep: counting on would hold a descriptor per level."""
    try:
        top = os.open(directory, DIR_FLAGS)
    except OSError:
        return 0, 0
    totals = [0, 0]
    fds, pending = [top], [_count(top, totals)]  # per level: its descriptor, subdirectories left
    try:
        while fds:
            if not pending[-1]:
                os.close(fds.pop())
                pending.pop()
                continue
            if len(fds) > max_depth:
                raise NestedTooDeep(f"{directory} holds directories nested over {max_depth}")
            try:
                fd = os.open(pending[-1].pop(), DIR_FLAGS, dir_fd=fds[-1])
            except OSError:  # gone or swapped meanwhile: not counted
                continue
            fds.append(fd)
            pending.append(_count(fd, totals))
    finally:
        for fd in fds:
            os.close(fd)
    return totals[0], totals[1]


def _count(fd: int, totals: list[int]) -> list[str]:
    """Add fd's files (anything not a directory) to totals; return its subdirectories."""
    subdirs: list[str] = []
    with contextlib.suppress(OSError), os.scandir(fd) as it:
        for entry in it:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.name)
            else:
                with contextlib.suppress(FileNotFoundError):
                    totals[0] += entry.stat(follow_symlinks=False).st_size
                    totals[1] += 1
    return subdirs

"""What a project's git checkout says about it (its commit, the commit's date, `git describe`),
without git ever reading the project's configuration, hooks or attributes.

A project's .git/config names programs that git runs (gpg.program with log.showSignature,
core.fsmonitor, core.pager, diff.external, core.hooksPath, ...): `git -C project log` runs the
project's code on the host. So git runs here on a repository xbuild makes for the purpose, in a
temporary directory: xbuild's own `config`; copies of the project's HEAD, packed-refs, shallow and
refs/ (regular files only, bounded, opened without following a link); and the project's object
directory as an alternate, so that git reads its objects as data (only when it has no alternates
of its own: those would send git to paths the project names; commit-graph and multi-pack-index
files are not read either). git runs with none of the caller's GIT_* variables, no system or
global configuration, HOME in that directory, no terminal, a time limit, a memory limit and a
bounded output.

Only the project's own `.git` directory counts: git's search up through the parent directories
is not made (a parent is not the project's to describe, and on a build server it is the
server's). A `.git` that is a link, or a file (a worktree's or a submodule's pointer), names a
place outside the project: it is not followed, the build takes the default date and version, and
`note` says so."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REF_BYTES = 4096              # a loose ref is 41 bytes, a symbolic one "ref: <name>"
LIST_BYTES = 64 << 20         # packed-refs, shallow: a big repository's are a few MB
MAX_REFS = 100_000            # loose refs (and their directories) copied
MAX_DEPTH = 32                # levels of refs/ directories
TIMEOUT = 30                  # seconds, each git command
MEMORY_KB = 1 << 20           # git's address space: 1 GiB (a crafted object cannot take more)
OUTPUT_BYTES = 4096           # of git's output read back
MAX_EPOCH = 1 << 32           # a crafted commit's date beyond 2106 is no SOURCE_DATE_EPOCH (tar, .deb)
_HEAD = re.compile(rb"(ref: refs/[^\0\n]{1,1000}|[0-9a-f]{40}|[0-9a-f]{64})\n?\Z")
_COMMIT = re.compile(r"[0-9a-f]{40}\Z|[0-9a-f]{64}\Z")
# What a version may be (the .deb's rules are stricter still: deb.check_version).
_VERSION = re.compile(r"[0-9][0-9A-Za-z.+~_-]{0,127}\Z")
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO does not block the open

# git reads this and nothing else: no system, global or project configuration.
_CONFIG = """\
[core]
\trepositoryformatversion = 0
\tbare = true
\tpackedGitWindowSize = 32m
\tpackedGitLimit = 256m
\tdeltaBaseCacheLimit = 32m
\tcommitGraph = false
\tmultiPackIndex = false
[log]
\tshowSignature = false
\tmailmap = false
[gc]
\tauto = 0
"""


class _Unusable(Exception):
    """The checkout cannot be read safely (a link, a file too large, no HEAD): use the defaults."""


@dataclass(frozen=True)
class Meta:
    commit: str | None = None     # HEAD's commit id
    epoch: int | None = None      # HEAD's committer date, seconds
    version: str | None = None    # `git describe --tags` from a tag, a leading "v" removed
    note: str | None = None       # why a .git that is there was not read


def read(project: Path) -> Meta:
    """The project's commit, date and describe; Meta() when it has no .git directory of its own."""
    git = shutil.which("git")
    try:
        st = os.lstat(project / ".git")
    except OSError:
        return Meta()
    if not stat.S_ISDIR(st.st_mode):
        kind = "a link" if stat.S_ISLNK(st.st_mode) else "not a directory (a worktree or submodule)"
        return Meta(note=f"the project's .git is {kind}: not followed, so the date and version "
                         "are the defaults (set SOURCE_DATE_EPOCH, and version in xbuild.toml)")
    if git is None:
        return Meta()
    try:
        with _mirror(project / ".git") as repo:
            commit, _, epoch = (_run(git, repo, "log", "-1", "--no-show-signature", "--format=%H %ct", "HEAD")
                                or "").partition(" ")
            described = (_run(git, repo, "describe", "--tags", "HEAD") or "").removeprefix("v")
    except (_Unusable, OSError) as exc:  # OSError: the temporary copy (a full disk, say)
        return Meta(note=f"the project's .git was not read ({exc}): the date and version are the defaults")
    return Meta(commit=commit if _COMMIT.match(commit) else None,
                epoch=int(epoch) if epoch.isdigit() and int(epoch) < MAX_EPOCH else None,
                version=described if _VERSION.match(described) else None)


def checkout_of(path: Path) -> Path:
    """The nearest directory at or above `path` that holds a .git, else `path`: for the operator's
    nightly paths, which may be folders of a larger checkout (a project's build looks at its own
    root only)."""
    return next((d for d in (path, *path.parents) if os.path.lexists(d / ".git")), path)


def _run(git: str, repo: Path, *args: str) -> str | None:
    """One git command on the mirror; its first line of output, or None if it failed."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(repo), "XDG_CONFIG_HOME": str(repo),
           "GIT_DIR": str(repo), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_NO_REPLACE_OBJECTS": "1", "GIT_NO_LAZY_FETCH": "1", "GIT_TERMINAL_PROMPT": "0",
           "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    # The memory limit through the shell: preexec_fn is not safe in a threaded worker.
    limited = ["/bin/sh", "-c", f'ulimit -v {MEMORY_KB}; exec "$0" "$@"', git, *args]
    with tempfile.TemporaryFile(prefix="xbuild-git-") as out:
        try:
            done = subprocess.run(limited, cwd=repo, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.DEVNULL, timeout=TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        out.seek(0)
        text = out.read(OUTPUT_BYTES).decode(errors="replace")
    return (text.splitlines() or [""])[0].strip() if done.returncode == 0 else None


@contextlib.contextmanager
def _mirror(dot_git: Path) -> Iterator[Path]:
    """A temporary repository with xbuild's config and the project's HEAD, refs and objects."""
    with tempfile.TemporaryDirectory(prefix="xbuild-git-") as tmp, _opened(dot_git) as src:
        repo = Path(tmp)
        (repo / "config").write_text(_CONFIG)
        head = _read(src, "HEAD", REF_BYTES)
        if head is None or not _HEAD.match(head):
            raise _Unusable("no readable HEAD")
        (repo / "HEAD").write_bytes(head)
        for name in ("packed-refs", "shallow"):
            _copy(src, name, repo / name, LIST_BYTES)
        (repo / "refs").mkdir()
        _copy_refs(src, repo / "refs")
        _alternate(src, dot_git / "objects", repo / "objects")
        yield repo


@contextlib.contextmanager
def _opened(path: Path, dir_fd: int | None = None) -> Iterator[int]:
    """A directory's descriptor, never through a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        raise _Unusable(f"{path}: {exc.strerror}") from None
    try:
        yield fd
    finally:
        os.close(fd)


def _open_file(dir_fd: int, name: str) -> int | None:
    """A regular file's descriptor (not a link, FIFO or device), or None."""
    try:
        fd = os.open(name, _OPEN, dir_fd=dir_fd)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _read(dir_fd: int, name: str, limit: int) -> bytes | None:
    fd = _open_file(dir_fd, name)
    if fd is None:
        return None
    with open(fd, "rb") as f:
        data = f.read(limit + 1)
    return data if len(data) <= limit else None


def _copy(dir_fd: int, name: str, dest: Path, limit: int) -> None:
    """Copy a regular file, at most `limit` bytes; a missing one is not copied."""
    fd = _open_file(dir_fd, name)
    if fd is None:
        return
    with open(fd, "rb") as f, dest.open("xb") as out:
        copied = 0
        while chunk := f.read(1 << 20):
            copied += len(chunk)
            if copied > limit:
                raise _Unusable(f"its {name} is over {limit >> 20} MB")
            out.write(chunk)


def _copy_refs(git_fd: int, dest: Path) -> None:
    """refs/: its directories (at most MAX_DEPTH deep) and the regular files in them, at most
    MAX_REFS entries; a loose ref over REF_BYTES, a link or anything else is left out. fwalk
    descends through descriptors and never into a link."""
    count = 0
    for where, dirs, files, fd in os.fwalk("refs", dir_fd=git_fd):
        into = dest / os.path.relpath(where, "refs")
        into.mkdir(exist_ok=True)
        count += len(dirs) + len(files)
        if count > MAX_REFS:
            raise _Unusable(f"its refs/ holds over {MAX_REFS} entries")
        if where.count("/") >= MAX_DEPTH:
            dirs.clear()
        for name in files:
            if (data := _read(fd, name, REF_BYTES)) is not None:
                (into / name).write_bytes(data)


def _alternate(git_fd: int, objects: Path, dest: Path) -> None:
    """dest/info/alternates names the project's object directory, whose objects git reads as
    data; only if that directory has no alternates of its own (they would send git to paths the
    project names: a shared clone gets the defaults)."""
    if any(ord(c) < 32 for c in str(objects)):  # one path per line in that file
        raise _Unusable("its path holds a control character")
    with _opened(Path("objects"), git_fd) as fd:
        if _exists(fd, "info/alternates"):
            raise _Unusable("its objects/info/alternates names other object directories")
    (dest / "info").mkdir(parents=True)
    (dest / "info" / "alternates").write_text(f"{objects}\n")


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # not a directory, a loop: not something git would skip either
    return True

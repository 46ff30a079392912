"""The project's source tree: what goes into the build container, and the hash of its content.

The hash covers names, file types, exec bits, link targets and file contents, never mtimes, so a
fresh clone of the same commit hits the cache. Per-file digests are remembered by (size, mtime,
inode), the way git's index does, so an unchanged tree of any size is hashed without reading it."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from xbuild.archive import sha256_file, tar_tree

VCS_DIRS = (".git", ".hg", ".svn")
_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xbuild" / "srchash"


def excluder(project: Path, out: Path, out_dirname: str):
    out_rel = os.path.relpath(out, project)

    def exclude(rel: str) -> bool:
        top = rel.split("/", 1)[0]
        return top in (out_dirname, *VCS_DIRS) or rel == out_rel or rel.startswith(out_rel + "/")
    return exclude


def _walk(root: Path, exclude):
    for dirpath, dirnames, filenames in os.walk(root):
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


def tree_hash(project: Path, exclude) -> str:
    cache_file = _CACHE_DIR / (hashlib.sha256(str(project).encode()).hexdigest()[:24] + ".json")
    try:
        known = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        known = {}
    fresh, h = {}, hashlib.sha256()
    for rel, path in sorted(_walk(project, exclude)):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            entry = f"L {rel} {os.readlink(path)}"
        elif stat.S_ISDIR(st.st_mode):
            entry = f"D {rel}"
        elif stat.S_ISREG(st.st_mode):
            sig = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
            digest = known.get(rel, {}).get(sig) or sha256_file(path)
            fresh[rel] = {sig: digest}
            entry = f"F {rel} {'x' if st.st_mode & 0o111 else '-'} {digest}"
        else:
            continue  # sockets, fifos: never copied into the build either
        h.update(entry.encode() + b"\0")
    if fresh != known:
        try:
            _CACHE_DIR.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(fresh))
            tmp.replace(cache_file)
        except OSError:
            pass  # a read-only home only costs speed
    return h.hexdigest()


def payload(project: Path, exclude, mtime: int, src_dir: str = "/xbuild/src") -> bytes:
    """The project as a tar for the container: owned by the build user, every mtime the same."""
    return tar_tree(project, mtime=mtime, uid=1000, gid=1000, prefix=src_dir.strip("/") + "/",
                    exclude=exclude, clamp=False)

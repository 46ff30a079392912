"""Deterministic archives and safe extraction.

The same tree gives the same bytes: entries sorted, owner root:root with no names, permissions
normalised, mtimes clamped to SOURCE_DATE_EPOCH, and no timestamp or file name in the gzip header."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path, PurePosixPath

from xbuild.errors import BadArtifact


def _entries(root: Path):
    """Every path under root, sorted by its POSIX relative path (directories before their content)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            yield Path(dirpath, name)


def tar_tree(root: Path, *, mtime: int, uid: int = 0, gid: int = 0, prefix: str = "",
             exclude=lambda rel: False, clamp: bool = True) -> bytes:
    """An uncompressed deterministic tar of root's content (also used to copy trees into containers).
    clamp: mtimes newer than `mtime` become `mtime`; otherwise every mtime is `mtime` (sources, so
    that the content alone decides the bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        parts = [p for p in prefix.split("/") if p]
        prefix = "".join(p + "/" for p in parts)  # "a/b", "/a/b/" and "a/b/" all mean a/b/
        for n in range(1, len(parts) + 1):  # the prefix's directories, owned like the content
            info = tarfile.TarInfo("/".join(parts[:n]))
            info.type, info.mode, info.mtime, info.uid, info.gid = tarfile.DIRTYPE, 0o755, mtime, uid, gid
            tar.addfile(info)
        for path in sorted(_entries(root), key=lambda p: p.relative_to(root).as_posix()):
            rel = path.relative_to(root).as_posix()
            if exclude(rel):
                continue
            st = path.lstat()
            info = tarfile.TarInfo(prefix + rel)
            info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
            info.mtime = min(int(st.st_mtime), mtime) if clamp else mtime
            executable = st.st_mode & 0o111
            if stat.S_ISLNK(st.st_mode):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
                tar.addfile(info)
            elif stat.S_ISDIR(st.st_mode):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.size, info.mode = st.st_size, 0o755 if executable else 0o644
                with path.open("rb") as f:
                    tar.addfile(info, f)
            # sockets, fifos and devices never belong in an artifact
    return buf.getvalue()


def write_tar_gz(root: Path, dest: Path, *, mtime: int) -> None:
    data = tar_tree(root, mtime=mtime)
    with dest.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                               compresslevel=9) as gz:
        gz.write(data)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_member(m: tarfile.TarInfo, where: str) -> None:
    p = PurePosixPath(m.name)
    if p.is_absolute() or ".." in p.parts:
        raise BadArtifact(f"{where}: unsafe path {m.name!r} in archive")
    if m.islnk() or m.issym():
        target = PurePosixPath(m.linkname)
        resolved = target if m.islnk() else p.parent / target
        if target.is_absolute() or ".." in PurePosixPath(os.path.normpath(resolved)).parts:
            raise BadArtifact(f"{where}: link {m.name!r} points out of the tree ({m.linkname!r})")
    elif not (m.isfile() or m.isdir()):
        raise BadArtifact(f"{where}: {m.name!r} is a device or special file")


def safe_members(tar: tarfile.TarFile, where: str):
    """Refuse absolute paths, `..`, links that leave the tree and device files."""
    for m in tar.getmembers():
        _check_member(m, where)
        yield m


def extract(tar_bytes_or_file, dest: Path, where: str, strip: str = "") -> None:
    """Safely extract a tar (bytes, or a path to .tar/.tar.gz) into dest, dropping a leading dir."""
    try:  # opening is inside: a file that is not an archive (or is missing) is a BadArtifact too
        opener = (tarfile.open(fileobj=io.BytesIO(tar_bytes_or_file))
                  if isinstance(tar_bytes_or_file, (bytes, bytearray)) else tarfile.open(tar_bytes_or_file))
        with opener as tar:
            members = []
            for m in tar.getmembers():
                if strip:
                    if m.name.rstrip("/") == strip.rstrip("/"):
                        continue
                    m.name = m.name.removeprefix(strip.rstrip("/") + "/")
                    if m.islnk():
                        m.linkname = m.linkname.removeprefix(strip.rstrip("/") + "/")
                # checked under the name it is extracted as: "stage/x -> ../y" is inside the tree,
                # "x -> ../y" is not
                _check_member(m, where)
                members.append(m)
            # "data" also resolves each link against what is already on disk, which catches a
            # chain (x/up -> .., x/out -> up/..) that no check of one name at a time can see.
            tar.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise BadArtifact(f"{where}: unsafe entry in archive ({exc})") from None
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise BadArtifact(f"{where}: not a readable archive ({exc})") from None

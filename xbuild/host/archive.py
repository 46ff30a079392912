"""Deterministic archives and safe, bounded extraction.

The same tree gives the same bytes: entries sorted, owner root:root with no names, permissions
normalised, mtimes clamped to SOURCE_DATE_EPOCH, and no timestamp or file name in the gzip header.

Every archive is streamed, never held whole in memory, and every archive xbuild reads is bounded
by the apparent size of what it holds (XBUILD_MAX_SOURCE_MB, XBUILD_MAX_OUTPUT_MB): a 400-byte
upload can describe a 3 GiB sparse file, and a 3 MB gzip can hold 3 GiB of zeros. A source is
bounded by its number of entries too (XBUILD_MAX_SOURCE_FILES): 5 MB of gzip can hold 800,000
empty files, and every later step (the tree hash, the copy into the build) costs per file."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import stat
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from xbuild import environment
from xbuild.errors import BadArtifact, OutputTooLarge, SourceTooLarge, TooManyFiles, XBuildError
from xbuild.host.safefs import open_read, walk

MB = 1 << 20
# Each entry costs at least its 512-byte header, counted so that millions of empty entries (which
# compress to almost nothing) are bounded too.
_HEADER = tarfile.BLOCKSIZE
# pax and GNU long-name headers are read into memory whole by tarfile; real ones are a few hundred
# bytes.
_MAX_META = 1 * MB
_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
               tarfile.GNUTYPE_LONGLINK)


def max_source() -> int:
    """Bytes a project (or an uploaded source) may hold, by apparent size: a sparse file counts in full."""
    return environment.megabytes("XBUILD_MAX_SOURCE_MB")


def max_output() -> int:
    """Bytes a build's output, or any archive xbuild extracts, may hold."""
    return environment.megabytes("XBUILD_MAX_OUTPUT_MB")


def max_source_files() -> int:
    """Entries (files, directories, links) a project or an uploaded source may hold. 100,000 is
    about the Linux kernel's tree (~90,000): real projects fit, while the per-file costs (a
    worker's unpack, the tree hash, the copy into the container) stay bounded; measured in
    tests/security/test_upload_limits.py: a farm's API and worker stay far under 300 MB."""
    return environment.whole("XBUILD_MAX_SOURCE_FILES")


def too_many(what: str, limit: int) -> TooManyFiles:
    return TooManyFiles(f"{what} holds more than {limit} files and directories "
                        f"(XBUILD_MAX_SOURCE_FILES={limit})")


def too_large(error: type[XBuildError], what: str, limit: int) -> XBuildError:
    var = "XBUILD_MAX_SOURCE_MB" if error is SourceTooLarge else "XBUILD_MAX_OUTPUT_MB"
    return error(f"{what} is larger than {limit // MB} MB ({var}={limit // MB})")


# --- writing -----------------------------------------------------------------------------------
def _entries(root: Path) -> list[str]:
    """The POSIX relative path of everything under root, sorted (directories before their
    content). Strings, not Paths: a tree of 100,000 entries is listed in a few MB. An unreadable
    directory is skipped, as os.walk does: a project's was refused by sources.tree_hash already,
    and one a build container wrote (the compiler cache) must not fail a finished build."""
    found: list[str] = []
    for dirpath, dirnames, filenames in walk(root, strict=False):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        found += (name if rel_dir == "." else f"{rel_dir}/{name}" for name in dirnames + filenames)
    return sorted(found)


def _forget_members(tar: tarfile.TarFile) -> None:
    """tarfile keeps every header it reads or writes (TarFile.members): memory that grows with
    the number of entries. Nothing here looks a member up again."""
    vars(tar)["members"].clear()  # an instance attribute typeshed does not declare


def write_tar(root: Path, fileobj: BinaryIO | gzip.GzipFile, *, mtime: int, uid: int = 0, gid: int = 0,
              prefix: str = "", exclude=lambda rel: False, clamp: bool = True) -> int:
    """A deterministic uncompressed tar of root's content, streamed into fileobj.
    clamp: mtimes newer than `mtime` become `mtime`; otherwise every mtime is `mtime` (sources, so
    that the content alone decides the bytes). Returns where the end-of-archive blocks begin:
    another tar written from there continues this one."""
    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.GNU_FORMAT) as tar:
        parts = [p for p in prefix.split("/") if p]
        prefix = "".join(p + "/" for p in parts)  # "a/b", "/a/b/" and "a/b/" all mean a/b/
        for n in range(1, len(parts) + 1):  # the prefix's directories, owned like the content
            info = tarfile.TarInfo("/".join(parts[:n]))
            info.type, info.mode, info.mtime, info.uid, info.gid = tarfile.DIRTYPE, 0o755, mtime, uid, gid
            tar.addfile(info)
        for rel in _entries(root):
            if exclude(rel):
                continue
            path = root / rel
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
                with open_read(path) as f:  # not a FIFO or a link put in its place since lstat
                    tar.addfile(info, f)
            # sockets, fifos and devices never belong in an artifact
            _forget_members(tar)
        return tar.offset


def tar_tree(root: Path, **options) -> bytes:
    """write_tar into memory: for small trees only (control files, tests)."""
    buf = io.BytesIO()
    write_tar(root, buf, **options)
    return buf.getvalue()


# gzip's own default. Measured on a 2.3 MB Go program: 9 took 0.25 s for 0.2% less than 6's
# 0.10 s, a tenth of a rebuild's time (twice with --deb). In the build cache key: it changes the bytes.
GZIP_LEVEL = 6


def write_tar_gz(root: Path, dest: Path, *, mtime: int, compresslevel: int = GZIP_LEVEL, **options) -> None:
    """write_tar, gzipped as it goes (options as for write_tar: exclude, clamp, prefix...)."""
    with dest.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                               compresslevel=compresslevel) as gz:
        write_tar(root, gz, mtime=mtime, **options)


def save_stream(chunks: Iterable[bytes], dest: BinaryIO, limit: int, what: str,
                error: type[XBuildError] = OutputTooLarge) -> None:
    """Write a stream of chunks to a file, stopping once it passes `limit` bytes."""
    written = 0
    try:
        for chunk in chunks:
            written += len(chunk)
            if written > limit:
                raise too_large(error, what, limit)
            dest.write(chunk)
        dest.flush()
    finally:
        # A stream dropped half-read must end now, not when the error's traceback is freed: the
        # engine holds the container until its archive stream is closed.
        if hasattr(chunks, "close"):
            chunks.close()


def sha256_file(path: Path) -> str:
    with path.open("rb") as f:
        return sha256_of(f)


def sha256_of(f: BinaryIO) -> str:
    """The SHA-256 of what is left to read in f, read in 1 MiB chunks."""
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


# --- reading -----------------------------------------------------------------------------------
def _sparse(self, *args):
    """Raise for a sparse member (also called as the pax header's method, with the member first)."""
    name = args[0].name if args and isinstance(args[0], tarfile.TarInfo) else self.name
    raise BadArtifact(f"the archive holds {name!r} as a sparse file: its apparent size is not what "
                      "it stores", hint="archive the files as plain files (no --sparse)")


class _StrictInfo(tarfile.TarInfo):
    """Refuses, before tarfile acts on them, the headers that make it read without bound: sparse
    members (their sparse maps are read whole, and a 400-byte one can claim gigabytes) and huge
    pax or long-name headers (read into memory whole)."""

    def _proc_member(self, tf):
        if self.type == tarfile.GNUTYPE_SPARSE:
            _sparse(self)
        if self.type in _META_TYPES:
            tf.xbuild_meta = getattr(tf, "xbuild_meta", 0) + self.size
            if self.size > _MAX_META or tf.xbuild_meta > 16 * _MAX_META:
                raise BadArtifact(f"the archive has an extended header of {self.size} bytes",
                                  hint="a tar made by tar(1), Python or xbuild has none that large")
        # tarfile's own, looked up by name: typeshed leaves this private method out
        return tarfile.TarInfo.__dict__["_proc_member"](self, tf)

    _proc_gnusparse_00 = _proc_gnusparse_01 = _proc_gnusparse_10 = _sparse  # pax-style sparse


@contextlib.contextmanager
def _open(src) -> Iterator[tarfile.TarFile]:
    """bytes, a path (.tar or .tar.gz) or a readable file object, as a stream: one pass from the
    start, no seeking back, nothing kept of the members already read. gzip is unwrapped by the
    gzip module: tarfile's stream mode reads only a gzip file's first member, and members
    concatenated are one gzip file (RFC 1952; `tar xz` reads them all)."""
    with contextlib.ExitStack() as stack:
        if isinstance(src, (bytes, bytearray)):
            f: BinaryIO | gzip.GzipFile = io.BytesIO(src)
        elif isinstance(src, (str, os.PathLike)):
            f = stack.enter_context(open(src, "rb"))
        else:
            f = src
            f.seek(0)  # tarfile starts where the file is: at the end, it would see an empty archive
        gzipped = f.read(2) == b"\x1f\x8b"
        f.seek(0)
        if gzipped:
            f = stack.enter_context(gzip.GzipFile(fileobj=f, mode="rb"))
        yield stack.enter_context(tarfile.open(fileobj=f, mode="r|*", tarinfo=_StrictInfo))


def _check_member(m: tarfile.TarInfo, where: str) -> None:
    p = PurePosixPath(m.name)
    if p.is_absolute() or ".." in p.parts:
        raise BadArtifact(f"{where}: unsafe path {m.name!r} in archive")
    if m.issparse():
        _sparse(m)
    if m.islnk() or m.issym():
        target = PurePosixPath(m.linkname)
        resolved = target if m.islnk() else p.parent / target
        if target.is_absolute() or ".." in PurePosixPath(os.path.normpath(resolved)).parts:
            raise BadArtifact(f"{where}: link {m.name!r} points out of the tree ({m.linkname!r})")
    elif not (m.isfile() or m.isdir()):
        raise BadArtifact(f"{where}: {m.name!r} is a device or special file")


def _members(tar: tarfile.TarFile, where: str, limit: int, error: type[XBuildError], strip: str = "",
             files: int | None = None, depth: int | None = None):
    """Each member, checked, one at a time (tarfile would otherwise keep every header it read), until
    the apparent sizes so far pass `limit`, or the entries pass `files`, or a name nests deeper
    than `depth` directories. strip: drop this leading directory."""
    strip = strip.rstrip("/")
    total = count = 0
    while (m := tar.next()) is not None:
        _forget_members(tar)
        total += m.size + _HEADER
        count += 1
        if total > limit:
            raise too_large(error, where, limit)
        if files is not None and count > files:
            raise too_many(where, files)
        if strip:
            if m.name.rstrip("/") == strip:
                continue
            m.name = m.name.removeprefix(strip + "/")
            if m.islnk():
                m.linkname = m.linkname.removeprefix(strip + "/")
        if depth is not None and m.name.count("/") >= depth:
            raise BadArtifact(f"{where}: {m.name[:60]}... nests directories more than {depth} deep",
                              hint="no board's file system path is that deep: check the install step")
        # checked under the name it is extracted as: "stage/x -> ../y" is inside the tree,
        # "x -> ../y" is not
        _check_member(m, where)
        yield m


def safe_members(tar: tarfile.TarFile, where: str, limit: int | None = None):
    """For a tar its caller opened (check() opens one strictly): refuse absolute paths, `..`, links
    that leave the tree, devices, sparse files and more than `limit` bytes (default
    XBUILD_MAX_OUTPUT_MB)."""
    return _members(tar, where, max_output() if limit is None else limit, OutputTooLarge)


_UNREADABLE = (tarfile.TarError, EOFError, OSError, zlib.error, KeyError)


def check(src, where: str, limit: int, error: type[XBuildError] = OutputTooLarge, strip: str = "",
          files: int | None = None, visit=None, depth: int | None = None) -> None:
    """Read every header of a tar (bytes, a path, a file object) in one pass, extracting nothing:
    unsafe entries are a BadArtifact, more than `limit` bytes an `error`, more than `files`
    entries TooManyFiles. visit(tar, member), when given, sees each member as it passes (its
    content is readable then, with tar.extractfile(member), and never again)."""
    try:
        with _open(src) as tar:
            for m in _members(tar, where, limit, error, strip, files, depth):
                if visit is not None:
                    visit(tar, m)
    except _UNREADABLE as exc:
        raise BadArtifact(f"{where}: not a readable archive ({exc})") from None


def check_upload(path: Path, visit=None) -> None:
    """A tenant's source archive (.tar or .tar.gz), read as a stream: refuses sparse members, `..`,
    absolute paths, links out of the tree, devices, more than XBUILD_MAX_SOURCE_MB and more than
    XBUILD_MAX_SOURCE_FILES entries. visit: as for check()."""
    check(path, "the uploaded source", max_source(), SourceTooLarge, files=max_source_files(),
          visit=visit)


def extract(src, dest: Path, where: str, strip: str = "", limit: int | None = None,
            files: int | None = None, depth: int | None = None) -> None:
    """Safely extract a tar (bytes, a path to .tar/.tar.gz, or a file object) into dest, dropping a
    leading dir, at most `limit` bytes (default XBUILD_MAX_OUTPUT_MB), `files` entries and `depth`
    nested directories (default: no count). Everything is checked before anything is written."""
    limit = max_output() if limit is None else limit
    check(src, where, limit, OutputTooLarge, strip, files, depth=depth)
    try:
        with _open(src) as tar:
            for m in _members(tar, where, limit, OutputTooLarge, strip, files, depth):
                # a hard link whose file is not on disk yet: tarfile would go looking for it
                # back through the whole archive (and lose this loop's place)
                if m.islnk() and not (dest / m.linkname).is_file():
                    raise BadArtifact(f"{where}: hard link {m.name!r} comes before its file "
                                      f"{m.linkname!r}")
                # "data" also resolves each link against what is already on disk, which catches a
                # chain (x/up -> .., x/out -> up/..) that no check of one name at a time can see.
                tar.extract(m, dest, filter="data")
    except tarfile.FilterError as exc:
        raise BadArtifact(f"{where}: unsafe entry in archive ({exc})") from None
    except _UNREADABLE as exc:
        raise BadArtifact(f"{where}: not a readable archive ({exc})") from None

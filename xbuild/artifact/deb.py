"""A .deb the board installs with apt (`--deb`): the artifact tree under its prefix, `Depends` from
the artifact's runtime dependencies, and byte-identical for identical inputs, like the tar.gz.

Written here rather than by dpkg-deb: the build machine need not be Debian, and every byte
(member order, owners, mtimes, gzip headers) is ours to fix. The format is small: an ar archive
of `debian-binary`, `control.tar.gz` and `data.tar.gz` (deb(5)).

A package that ships shared libraries where ld.so's cache looks (e.g. /usr/local/lib) carries
dpkg's `ldconfig` trigger, as dh_makeshlibs gives Debian's own: without it the linker cache does
not know the new library until someone runs ldconfig, and the program that needs it does not
start (`error while loading shared libraries`)."""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import shutil
import tempfile
from pathlib import Path

from xbuild.artifact import elf
from xbuild.errors import ConfigError
from xbuild.host.archive import write_tar, write_tar_gz
from xbuild.host.safefs import open_read

# Debian policy 5.6.1 (Package) and 5.6.12 (Version: [epoch:]upstream[-revision]).
_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+\Z")
_VERSION = re.compile(r"([0-9]+:)?[0-9][A-Za-z0-9.+~:-]*\Z")
MAINTAINER = "xbuild <xbuild@localhost>"


def package_name(name: str) -> str:
    """A Debian package name made from a project name: lower case, other characters as '-'."""
    out = re.sub(r"[^a-z0-9+.-]+", "-", name.lower()).strip("-.+")
    return out if len(out) >= 2 else f"{out or 'x'}-pkg"


def check_version(version: str, where: str) -> str:
    if not _VERSION.match(version):
        raise ConfigError(f"{where}: {version!r} is not a Debian package version",
                          hint='a version starts with a digit, e.g. version = "1.2.0" in xbuild.toml')
    return version


def file_name(name: str, version: str, arch: str) -> str:
    """<name>_<version>_<arch>.deb, without the epoch (as Debian names its files)."""
    return f"{name}_{version.split(':', 1)[-1]}_{arch}.deb"


def _installed_kib(tree: Path) -> int:
    return sum((p.lstat().st_size + 1023) // 1024 for p in tree.rglob("*") if not p.is_dir()) or 1


def control(*, name: str, version: str, arch: str, depends: list[str], description: str,
            installed_kib: int) -> str:
    fields = [("Package", name), ("Version", version), ("Architecture", arch),
              ("Maintainer", MAINTAINER), ("Installed-Size", str(installed_kib)),
              ("Depends", ", ".join(depends)), ("Section", "misc"), ("Priority", "optional"),
              ("Description", description.splitlines()[0] if description else name)]
    return "".join(f"{k}: {v}\n" for k, v in fields if v)


# The directories ldconfig caches on Debian: the trusted /lib and /usr/lib, /usr/local/lib
# (/etc/ld.so.conf.d/libc.conf) and each one's multiarch directory (<triplet>.conf).
_LDCONFIG_DIRS = ("lib", "usr/lib", "usr/local/lib")
TRIGGERS = "activate-noawait ldconfig\n"


def _in_ldconfig_dir(path: str) -> bool:
    parent = path.rpartition("/")[0]
    above, _, last = parent.rpartition("/")
    return parent in _LDCONFIG_DIRS or (above in _LDCONFIG_DIRS and "-linux-" in last)


def ships_libraries(tree: Path, prefix: str) -> bool:
    """Whether the tree, installed at prefix, puts a shared library with a SONAME (one that
    ldconfig links and caches) in a directory the linker cache covers."""
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and not p.is_symlink()):
        if not _in_ldconfig_dir(f"{prefix.strip('/')}/{path.relative_to(tree).as_posix()}".strip("/")):
            continue
        try:
            info = elf.read_elf(path)
        except elf.ElfError:
            continue
        if info is not None and info.kind == "shared-object" and info.soname:
            return True
    return False


def _md5sums(tree: Path, prefix: str) -> str:
    lines = []
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and not p.is_symlink()):
        digest = hashlib.md5(usedforsecurity=False)
        with open_read(path) as f:  # streamed: the build's files may be gigabytes
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        lines.append(f"{digest.hexdigest()}  {prefix}/{path.relative_to(tree).as_posix()}\n")
    return "".join(lines)


def _ar_member(name: str, data: bytes, mtime: int) -> bytes:
    header = f"{name:<16}{mtime:<12}{0:<6}{0:<6}{0o100644:<8o}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def write(tree: Path, out_dir: Path, *, name: str, version: str, arch: str, depends: list[str],
          description: str, prefix: str, mtime: int) -> Path:
    """Write out_dir/<name>_<version>_<arch>.deb holding tree at `prefix` (e.g. /usr/local)."""
    prefix = prefix.strip("/")
    with tempfile.TemporaryDirectory(prefix="xbuild-deb-") as tmp:
        meta = Path(tmp, "control")
        meta.mkdir()
        (meta / "control").write_text(control(name=name, version=version, arch=arch, depends=depends,
                                              description=description,
                                              installed_kib=_installed_kib(tree)))
        (meta / "md5sums").write_text(_md5sums(tree, prefix))
        if ships_libraries(tree, prefix):
            (meta / "triggers").write_text(TRIGGERS)
        control_tar = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=control_tar, mtime=0) as gz:
            write_tar(meta, gz, mtime=mtime, prefix=".", clamp=False)
        data_tar = Path(tmp, "data.tar.gz")
        write_tar_gz(tree, data_tar, mtime=mtime, prefix=f"./{prefix}")
        deb = out_dir / file_name(name, version, arch)
        with deb.open("wb") as f:
            f.write(b"!<arch>\n")
            f.write(_ar_member("debian-binary", b"2.0\n", mtime))
            f.write(_ar_member("control.tar.gz", control_tar.getvalue(), mtime))
            size = data_tar.stat().st_size
            f.write(f"{'data.tar.gz':<16}{mtime:<12}{0:<6}{0:<6}{0o100644:<8o}{size:<10}`\n".encode())
            with data_tar.open("rb") as data:  # streamed: the data may be large
                shutil.copyfileobj(data, f)
            if size % 2:
                f.write(b"\n")
    return deb


# --- reading (`xbuild run` takes a .deb) ---------------------------------------------------------

def _members(f) -> dict[str, tuple[int, int]]:
    """name -> (offset, size) of the ar members of an open .deb."""
    if f.read(8) != b"!<arch>\n":
        raise ValueError("not an ar archive")
    found = {}
    while header := f.read(60):
        if len(header) < 60 or header[58:60] != b"`\n":
            raise ValueError("truncated ar member header")
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58].decode().strip())
        found[name] = (f.tell(), size)
        f.seek(size + size % 2, 1)
    return found


def open_data(path: Path):
    """The .deb's data.tar.gz member as a readable gzip stream (xbuild's own .debs, and Debian's
    with gzip data)."""
    import io as _io
    f = path.open("rb")
    try:
        members = _members(f)
        name = next((n for n in members if n.startswith("data.tar")), None)
        if name != "data.tar.gz":
            raise ValueError(f"data member {name or 'missing'}: only data.tar.gz is read")
        offset, size = members[name]
        f.seek(offset)
        return gzip.GzipFile(fileobj=_io.BufferedReader(_Slice(f, size)))
    except BaseException:
        f.close()
        raise


def depends(path: Path) -> list[str]:
    """The package names of the .deb's Depends field."""
    import tarfile
    with path.open("rb") as f:
        offset, size = _members(f)["control.tar.gz"]
        f.seek(offset)
        with tarfile.open(fileobj=io.BytesIO(f.read(size)), mode="r:gz") as tar:
            member = tar.extractfile("./control")
            text = member.read().decode() if member else ""
    for line in text.splitlines():
        if line.startswith("Depends:"):
            return [re.split(r"[ (]", d.strip(), maxsplit=1)[0] for d in line[8:].split(",") if d.strip()]
    return []


class _Slice(io.RawIOBase):
    """`size` bytes of an open file from its current position, closing the file with itself."""

    def __init__(self, f, size: int):
        self.f, self.left = f, size

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        data = self.f.read(min(len(buf), self.left))
        self.left -= len(data)
        buf[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.f.close()
        super().close()

"""Give a built wheel the tags wheeltags names for the board. A PEP 517 backend names the wheel for
the python3 it ran in: under qemu that is `linux_<uname of the emulated CPU>` (linux_armv7l for
a Pi Zero build, whose code is ARMv6), never a manylinux tag. The tags live in three places that
must agree: the file name, the `Tag:` lines of .dist-info/WHEEL, and WHEEL's hash in RECORD.

The wheel comes out of a build container: untrusted. Its members are copied through a bound on
what they inflate to, and the copy is deterministic (same members, order and timestamps), so two
builds of the same wheel give the same bytes (`verify`)."""

from __future__ import annotations

import base64
import hashlib
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from xbuild.artifact.wheeltags import WheelTags
from xbuild.errors import BadArtifact

MAX_INFLATED = 4 << 30  # all members together; the output limits of a build are smaller
_HINT = "give a wheel (.whl) as a PEP 517 build makes it"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel_file(text: str, tags: WheelTags) -> str:
    """WHEEL with its Tag: lines replaced by one line per tag of `tags` (sorted: deterministic)."""
    lines = [ln for ln in text.splitlines() if not ln.startswith("Tag:")]
    return "\n".join(lines + [f"Tag: {t}" for t in sorted(map(str, tags.tags))]) + "\n"


def _record_file(text: str, wheel_member: str, wheel_data: bytes) -> str:
    out = []
    for line in text.splitlines():
        if line.split(",", 1)[0] == wheel_member:
            line = f"{wheel_member},{_record_hash(wheel_data)},{len(wheel_data)}"
        out.append(line)
    return "\n".join(out) + "\n"


def retag(wheel: Path, tags: WheelTags, dest: Path) -> Path:
    """A copy of `wheel` in `dest` named and tagged with `tags`."""
    try:
        name, version, _, _ = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise BadArtifact(f"{wheel.name!r} is not a wheel's file name: {exc}", hint=_HINT) from None
    out = dest / tags.filename(name, str(version))
    try:
        with zipfile.ZipFile(wheel) as src:
            infos = src.infolist()
            if sum(i.file_size for i in infos) > MAX_INFLATED:
                raise BadArtifact(f"{wheel.name}: inflates to over {MAX_INFLATED >> 30} GiB", hint=_HINT)
            dist_info = _dist_info(wheel.name, infos)
            wheel_member, record_member = f"{dist_info}/WHEEL", f"{dist_info}/RECORD"
            wheel_data = _wheel_file(src.read(wheel_member).decode(), tags).encode()
            record_data = _record_file(src.read(record_member).decode(), wheel_member, wheel_data).encode()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
                for info in infos:
                    if info.filename == wheel_member:
                        dst.writestr(_info(info), wheel_data)
                    elif info.filename == record_member:
                        dst.writestr(_info(info), record_data)
                    else:
                        with src.open(info) as r, dst.open(_info(info), "w") as w:
                            shutil.copyfileobj(r, w, 1 << 20)  # checked against the size, by zipfile
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, EOFError, NotImplementedError) as exc:
        out.unlink(missing_ok=True)
        raise BadArtifact(f"{wheel.name}: not a readable wheel ({exc})", hint=_HINT) from None
    return out


def unpack(wheel: Path, dest: Path) -> list[str]:
    """The wheel's members as files under `dest` (a directory xbuild made), for the gate to read:
    names that would leave it (absolute, `..`) refused, links never made, the inflated size
    bounded as in retag. Returns the member names."""
    names = []
    try:
        with zipfile.ZipFile(wheel) as src:
            infos = [i for i in src.infolist() if not i.is_dir()]
            if sum(i.file_size for i in infos) > MAX_INFLATED:
                raise BadArtifact(f"{wheel.name}: inflates to over {MAX_INFLATED >> 30} GiB", hint=_HINT)
            for info in infos:
                parts = PurePosixPath(info.filename).parts
                if not parts or info.filename.startswith("/") or ".." in parts or "\\" in info.filename:
                    raise BadArtifact(f"{wheel.name}: member {info.filename!r} leaves the wheel", hint=_HINT)
                path = dest.joinpath(*parts)
                path.parent.mkdir(parents=True, exist_ok=True)
                with src.open(info) as r, path.open("xb") as w:  # x: never through what is there
                    shutil.copyfileobj(r, w, 1 << 20)
                names.append(info.filename)
    except (zipfile.BadZipFile, UnicodeDecodeError, EOFError, NotImplementedError, FileExistsError) as exc:
        raise BadArtifact(f"{wheel.name}: not a readable wheel ({exc})", hint=_HINT) from None
    return names


def _dist_info(filename: str, infos: list[zipfile.ZipInfo]) -> str:
    found = {i.filename.split("/", 1)[0] for i in infos
             if i.filename.count("/") == 1 and i.filename.endswith(".dist-info/WHEEL")}
    if len(found) != 1:
        raise BadArtifact(f"{filename}: {len(found)} .dist-info/WHEEL files, not one", hint=_HINT)
    return found.pop()


def _info(old: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """The member's name and time as they were, deflated; its mode 0644, or 0755 when it was
    executable at all: the build's umask (verify builds with 077) must not reach the wheel."""
    info = zipfile.ZipInfo(old.filename, old.date_time)
    mode = 0o755 if (old.external_attr >> 16) & 0o111 else 0o644
    info.external_attr, info.compress_type = (0o100000 | mode) << 16, zipfile.ZIP_DEFLATED
    return info

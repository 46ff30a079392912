"""Small real wheels for the tests, made from a dict of files (binary distribution format: the
.dist-info's METADATA, WHEEL and RECORD with sha256 hashes), tagged as a test needs."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(dest: Path, name: str, version: str, tags: str, files: dict[str, str] | None = None,
               metadata_extra: str = "", metadata: bytes | None = None) -> Path:
    """dest/<name>-<version>-<tags>.whl (name as given: a test may pass an unnormalized one).
    `metadata` replaces the whole METADATA file (a hostile or broken wheel)."""
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    members: dict[str, bytes] = {k: v.encode() for k, v in (files or {}).items()}
    members[f"{dist_info}/METADATA"] = metadata if metadata is not None else (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{metadata_extra}").encode()
    pure = "true" if tags.endswith("-none-any") else "false"
    wheel_tags = "".join(f"Tag: {tags.split('-')[0]}-{tags.split('-')[1]}-{p}\n"
                         for p in tags.split("-")[2].split("."))
    members[f"{dist_info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: xbuild-tests\n"
                                     f"Root-Is-Purelib: {pure}\n{wheel_tags}").encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in members.items())
    members[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name}-{version}-{tags}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for member, data in members.items():
            info = zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return path

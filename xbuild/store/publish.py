"""Builds in a store: publishing, listing, fetching, and the cache lookup on top of them.

Layout under a store's base (`s3://bucket/myproj/`, or `<XBUILD_STORE>/<project>/` for the cache):

    objects/sha256/<hex>           every file, content-addressed: a cache hit or an unchanged log
                                   is stored once however many builds name it
    <build-id>/manifest.json       the build's record: which objects make it, with checksums
    latest/<target>                {"build_id": ...}: the newest build for a target

Publishing is atomic for readers: the record is written only after every object it names is
uploaded and verified, and `latest` moves only after the record. An interrupted publish leaves
at most unreferenced objects (harmless, reused by the retry); nobody lists a build without its
record. The build id is derived from the cache key, so publishing the same build twice writes
the same record: never a duplicate."""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from pathlib import Path

from xbuild.errors import ConfigError, StoreError
from xbuild.host.archive import sha256_file
from xbuild.host.atomic import replacing
from xbuild.schema import json_value
from xbuild.store import Store, check_segments, is_segment

RECORD = "manifest.json"
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_REQUIRED = ("build_id", "target")
_OPTIONAL = ("mode", "project", "recipe", "cache_key", "source_tree_sha256", "image", "published_at")


class CorruptObject(StoreError):
    """An object's content does not match the checksum its record gives."""


def _check(base: str, build_id: str) -> None:
    check_segments(base, "store path")
    if len(check_segments(build_id, "build id")) != 1:
        raise ConfigError(f"build id {build_id!r} must be a single name", hint="see `xbuild artifacts ls`")


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p)


def object_key(base: str, sha256: str) -> str:
    return _join(base, "objects/sha256", sha256)


@dataclass(frozen=True)
class Published:
    url: str
    build_id: str
    record: dict


def publish(store: Store, base: str, out: Path, record: dict, progress=None, *,
            trust_record: bool = False) -> Published:
    """Upload every file of an output directory, then the record, then move `latest`.

    trust_record: when the store's record of this build lists exactly these files, it vouches for
    them (a record is written only after every object it names was uploaded and verified), so
    publishing costs two reads, the record and `latest`: no HEAD per object, no write, and the
    record keeps its first published_at. For a cache hit published again; not after a rebuild,
    which may be replacing an object found corrupted."""
    build_id = record["build_id"]
    _check(base, build_id)
    # not the dotfiles: xbuild's marker (atomic.MARKER) is not part of a build
    paths = sorted(p for p in out.iterdir() if p.is_file() and not p.name.startswith("."))
    shas = [sha256_file(p) for p in paths]
    files = [{"name": p.name, "sha256": sha, "size": p.stat().st_size,
              "object": _join("objects/sha256", sha)} for p, sha in zip(paths, shas, strict=True)]
    there = _published_already(store, base, {**record, "files": files}) if trust_record else None
    if there is None:
        for path, sha in zip(paths, shas, strict=True):
            key = object_key(base, sha)
            if not store.has(key, sha):
                if progress:
                    progress(f"uploading {path.name} ({path.stat().st_size} bytes)")
                store.put_file(key, path, sha)
        there = {**record, "files": files, "published_at":
                 datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        store.write(_join(base, build_id, RECORD), json.dumps(there, indent=2, sort_keys=True).encode())
    latest = json.dumps({"build_id": build_id}).encode()
    if store.read(_join(base, "latest", record["target"])) != latest:
        store.write(_join(base, "latest", record["target"]), latest)
    return Published(_join(store.url, base, build_id), build_id, there)


def put_source(store: Store, base: str, archive: Path) -> dict:
    """The project's source archive as an object of the store: what the record's `source` says,
    for a rebuild (`xbuild verify --against`)."""
    sha = sha256_file(archive)
    if not store.has(object_key(base, sha), sha):
        store.put_file(object_key(base, sha), archive, sha)
    return {"sha256": sha, "size": archive.stat().st_size, "object": _join("objects/sha256", sha)}


def get_source(store: Store, base: str, record: dict, dest: Path) -> None:
    """The record's source archive into dest, checked against its sha256."""
    sha = record["source"]["sha256"]
    store.get_file(object_key(base, sha), dest)
    if sha256_file(dest) != sha:
        raise CorruptObject(f"{store.url}: the source archive of build {record['build_id']} is corrupted")


def _published_already(store: Store, base: str, wanted: dict) -> dict | None:
    """The store's record of this build when it says what `wanted` says (published_at aside)."""
    try:
        record = read_record(store, base, wanted["build_id"])
    except StoreError:  # not a valid record: publishing writes a good one over it
        return None
    if record is None or {k: v for k, v in record.items() if k != "published_at"} != wanted:
        return None
    return record


def read_record(store: Store, base: str, build_id: str) -> dict | None:
    """The build's record, checked (a store is shared, and a record may be anyone's writing)."""
    _check(base, build_id)
    data = store.read(_join(base, build_id, RECORD))
    if data is None:
        return None
    try:
        record = json_value(data)
    except ValueError:
        raise StoreError(f"{store.url}: the record of build {build_id} is not valid JSON") from None
    problem = _record_problem(record, build_id)
    if problem:
        raise StoreError(f"{store.url}: the record of build {build_id} is not valid: {problem}",
                         hint="it was not written by xbuild, or changed since: publish the build "
                              "again (a cached build: build with --no-cache), or delete "
                              f"{_join(base, build_id, RECORD)}")
    return record


def _record_problem(record, build_id: str) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    for k in _REQUIRED:
        if not isinstance(record.get(k), str) or not record[k]:
            return f"{k!r} must be a non-empty string"
    for k in _OPTIONAL:
        if not isinstance(record.get(k, ""), str):
            return f"{k!r} must be a string"
    if record["build_id"] != build_id:
        return f"it names build {record['build_id']!r}"
    source = record.get("source")
    if source is not None and (not isinstance(source, dict) or not _SHA256.match(str(source.get("sha256")))):
        return "'source' must name the source archive's sha256"
    if not isinstance(record.get("files"), list):
        return "'files' must be a list"
    names = set()
    for i, f in enumerate(record["files"]):
        if not isinstance(f, dict):
            return f"files[{i}] is not an object"
        name, sha, size = f.get("name"), f.get("sha256"), f.get("size")
        if not isinstance(name, str) or not is_segment(name):
            return f"files[{i}]: name {name!r} is not a plain file name"
        if name in names:
            return f"files[{i}]: {name!r} appears twice"
        names.add(name)
        if not isinstance(sha, str) or not _SHA256.match(sha):
            return f"files[{i}]: sha256 {sha!r} is not a SHA-256 digest"
        if type(size) is not int or size < 0:
            return f"files[{i}]: size {size!r} is not a byte count"
        if f.get("object") != _join("objects/sha256", sha):
            return f"files[{i}]: object {f.get('object')!r} is not the object of its sha256"
    return None


def fetch(store: Store, base: str, record: dict, dest: Path, project: Path | None = None, *,
          sums: bool = True) -> None:
    """Download a build's files into dest (replaced all at once), verifying every checksum. The
    record is one read_record checked; dest must be new, empty or an earlier output. sums=False:
    SHA256SUMS is left for the caller to compare (attest verify, verify --against report what
    differs, instead of stopping at the first file)."""
    with replacing(dest, "fetch", project) as tmp:
        for f in record["files"]:
            store.get_file(object_key(base, f["sha256"]), tmp / f["name"])
            if sha256_file(tmp / f["name"]) != f["sha256"]:
                raise CorruptObject(f"{store.url}: {f['name']} of build {record['build_id']} is "
                                    f"corrupted (sha256 mismatch on {f['object']})",
                                    hint="rebuild with --no-cache to replace it")
        if sums:
            _check_sums(tmp, {f["name"] for f in record["files"]})


def open_build(url: str) -> tuple[Store, dict]:
    """(the store, the build's checked record) for STORE_URL/<build-id>; a clear error when the
    URL names no build or the store has none of that id."""
    from xbuild.store import open_store
    store_url, _, build_id = url.rstrip("/").rpartition("/")
    if not store_url or store_url.endswith(":/") or not build_id:
        raise StoreError(f"{url!r} does not name a build",
                         hint="give STORE_URL/<build-id> (see `xbuild artifacts ls`)")
    check_segments(build_id, "build id")  # before any network: `..` is refused outright
    store = open_store(store_url)
    record = read_record(store, "", build_id)
    if record is None:
        raise StoreError(f"no build {build_id!r} in {store_url}", hint=f"`xbuild artifacts ls {store_url}` lists them")
    return store, record


def _check_sums(directory: Path, names: set[str]) -> None:
    sums = directory / "SHA256SUMS"
    if not sums.is_file():
        return
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        if name in names and sha256_file(directory / name) != digest:
            raise CorruptObject(f"{name} does not match SHA256SUMS")


def list_builds(store: Store, base: str, target: str | None = None) -> list[dict]:
    records = []
    for key in store.list(base):
        rel = key[len(base):].strip("/") if base else key
        parts = rel.split("/")
        if len(parts) == 2 and parts[1] == RECORD:
            record = read_record(store, base, parts[0])
            if record and (target is None or record.get("target") == target):
                records.append(record)
    return sorted(records, key=lambda r: r.get("published_at", ""), reverse=True)

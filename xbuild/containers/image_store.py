"""Builder and runtime images moved to and from a store (file:// or s3://, xbuild/store), so a fresh
CI runner or farm worker fetches in seconds what it would otherwise bootstrap in minutes.

Layout, content-addressed:

  images/blobs/<diff_id>.gz      one layer: the uncompressed tar `docker save` writes (its sha256 is
                                 the layer's diff_id, named in the image config), gzip level 1.
                                 Stored once and shared: a deps image uploads its own layer only.
  images/tags/<kind>/<name>.json the record of one tag (xbuild/<kind>:<name>): the image config (its
                                 sha256 is the image id), the layers in order with their sizes, and
                                 the tags of its parents.

Pull checks everything before the engine may use it: the config's sha256 is the record's id, its
diff_ids are the record's layers, and every blob is uncompressed and hashed while it streams.
The load archive is assembled on the fly with manifest.json last, so a blob that fails its check
aborts the stream before the engine has anything to load; afterwards the loaded image's id must be
the record's. Store errors are reported; ensure() (images.py) then builds.

Security: tenants never write images. Only a worker (or an operator's `xbuild images push`)
publishes, and only images it built itself from xbuild's own definitions: the tag is a hash of the
definition, so a tenant's packages give a different tag, never someone else's image. A tenant's
Dockerfile image is not an ImageDef and is never published. Write access to the store's `images/`
prefix is the trust anchor: grant it to workers only.

Which store: `xbuild images push|pull` use XBUILD_STORE (or --store), any kind. Builds look in the
store and workers publish only when XBUILD_STORE is an s3:// store: a directory store on the same
disk as the engine would hold every image twice for nothing (a shared network directory can still
be used through push/pull)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from xbuild import environment
from xbuild.containers.engine import client
from xbuild.errors import ImageMissing, ImageStoreCorrupt, StoreError
from xbuild.schema import json_value
from xbuild.store import Store, check_segments, configured_url, open_store

PREFIX = "images"
LEVEL = 1            # gzip level: 1 packs a builder to about a third, at hundreds of MB/s
CHUNK = 1 << 20
SMALL = 1 << 20      # files of `docker save` kept in memory (configs, manifests, tiny layers)
PUSH_ENV = "XBUILD_IMAGES_PUSH"


def shared_url() -> str | None:
    """The store that builds pull missing images from (and workers publish to): s3:// only."""
    url = configured_url()
    return url if environment.text("XBUILD_STORE") and url.startswith("s3://") else None


def publishing() -> bool:
    """Publish the images this process builds: XBUILD_IMAGES_PUSH=1 (CI runners); a worker sets
    it by default (service/celery_app.py)."""
    return environment.flag(PUSH_ENV)


def record_key(tag: str) -> str:
    repo, _, name = tag.partition(":")
    owner, _, kind = repo.partition("/")
    if owner != "xbuild" or not name:
        raise ImageMissing(f"{tag}: only xbuild's own images (xbuild/<kind>:<name>) go to a store")
    return "/".join([PREFIX, "tags", *check_segments(f"{kind}/{name}", "image tag")]) + ".json"


def blob_key(diff_id: str) -> str:
    return f"{PREFIX}/blobs/{_hex(diff_id)}.gz"


def _hex(digest: str) -> str:
    algo, _, hexa = digest.partition(":")
    if algo != "sha256" or len(hexa) != 64 or not all(c in "0123456789abcdef" for c in hexa):
        raise ImageStoreCorrupt(f"{digest!r} is not a sha256 digest")
    return hexa


# --- push ------------------------------------------------------------------------------------
def push(store: Store, tag: str, parents: tuple[str, ...] = (), log: Callable[[str], None] = print) -> dict:
    """Upload a local image: the layers the store lacks, then its record. Returns figures."""
    from docker.errors import ImageNotFound
    start = time.monotonic()
    try:
        image = client().images.get(tag)
    except ImageNotFound:
        raise ImageMissing(f"{tag} is not on this machine") from None
    key = record_key(tag)
    old = store.read(key)
    if old is not None and _loads(old, key).get("id") == image.id:
        return {"tag": tag, "id": image.id, "action": "up to date", "uploaded_bytes": 0,
                "seconds": round(time.monotonic() - start, 2)}
    diff_ids = image.attrs["RootFS"]["Layers"]
    missing = {d for d in diff_ids if not store.exists(blob_key(d))}
    with tempfile.TemporaryDirectory(prefix="xbuild-push-") as tmp:
        config, layers = _save(tag, Path(tmp), bool(missing))
        if "sha256:" + hashlib.sha256(config).hexdigest() != image.id:
            raise ImageStoreCorrupt(f"{tag}: `docker save` gave another config than the image's")
        uploaded, entries = 0, []
        for diff_id, layer in zip(diff_ids, layers, strict=True):
            if layer["diff_id"] != diff_id:
                raise ImageStoreCorrupt(f"{tag}: a saved layer is not the one the config names")
            if diff_id in missing:
                log(f"uploading layer {diff_id[7:19]} ({layer['stored_size'] / 1e6:.0f} MB)")
                store.put_file(blob_key(diff_id), layer["path"], layer["stored_sha256"])
                uploaded += layer["stored_size"]
                missing.discard(diff_id)  # an image may hold the same layer twice
            entries.append({"diff_id": diff_id, "size": layer["size"]})
    record = {"tag": tag, "id": image.id, "config": config.decode(), "layers": entries,
              "parents": list(parents)}
    store.write(key, json.dumps(record, indent=1).encode())  # last: a record names only stored blobs
    return {"tag": tag, "id": image.id, "action": "pushed", "uploaded_bytes": uploaded,
            "size": sum(e["size"] for e in entries), "seconds": round(time.monotonic() - start, 2)}


def _save(tag: str, tmp: Path, compress: bool) -> tuple[bytes, list[dict]]:
    """`docker save`, streamed: every file hashed, large ones gzipped into `tmp`. Works on the legacy
    layout (<id>/layer.tar, Docker < 25) and the OCI one (blobs/sha256/..., Docker 25+): both name
    the config and the layers in manifest.json, which may come last."""
    files: dict[str, dict] = {}
    links: dict[str, str] = {}
    with tarfile.open(fileobj=_Reader(client().api.get_image(tag, chunk_size=CHUNK)), mode="r|") as tar:
        for member in tar:
            if member.issym():
                links[member.name] = os.path.normpath(os.path.join(os.path.dirname(member.name),
                                                                   member.linkname))
            elif member.isfile():
                src = tar.extractfile(member)
                assert src is not None
                files[member.name] = _spool(src, tmp / str(len(files)), member.size, compress)
    manifest = json.loads(files["manifest.json"]["data"])[0]
    config = files[manifest["Config"]]["data"]
    layers = [files[links.get(p, p)] for p in manifest["Layers"]]
    for layer in layers if compress else []:
        if "path" not in layer:  # small: kept in memory, written out now
            layer.update(_spool(io.BytesIO(layer["data"]), tmp / f"small{id(layer)}",
                                layer["size"], True, keep_small=False))
    return config, layers


def _spool(src, path: Path, size: int, compress: bool, keep_small: bool = True) -> dict:
    digest = hashlib.sha256()
    if size <= SMALL and keep_small:
        data = src.read()
        digest.update(data)
        return {"diff_id": "sha256:" + digest.hexdigest(), "size": size, "data": data}
    if not compress:  # every layer is in the store already: the config is all we need
        for chunk in iter(lambda: src.read(CHUNK), b""):
            digest.update(chunk)
        return {"diff_id": "sha256:" + digest.hexdigest(), "size": size}
    packer, stored = zlib.compressobj(LEVEL, zlib.DEFLATED, 31), hashlib.sha256()  # 31: gzip
    with path.open("wb") as out:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            digest.update(chunk)
            packed = packer.compress(chunk)
            stored.update(packed)
            out.write(packed)
        packed = packer.flush()
        stored.update(packed)
        out.write(packed)
    return {"diff_id": "sha256:" + digest.hexdigest(), "size": size, "path": path,
            "stored_size": path.stat().st_size, "stored_sha256": stored.hexdigest()}


class _Reader(io.RawIOBase):
    """A file object over the engine's stream of chunks (tarfile reads files, not generators)."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks, self.rest = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while not self.rest:
            self.rest = next(self.chunks, b"")
            if not self.rest:
                return 0
        n = min(len(buf), len(self.rest))
        buf[:n], self.rest = self.rest[:n], self.rest[n:]
        return n


# --- pull ------------------------------------------------------------------------------------
def fetch_record(store: Store, tag: str) -> dict | None:
    """The tag's record, checked for consistency; None when the store has none."""
    key = record_key(tag)
    data = store.read(key)
    if data is None:
        return None
    record = _loads(data, key)
    try:
        config = record["config"].encode()
        layers = record["layers"]
        diff_ids = json_value(config)["rootfs"]["diff_ids"]
        ok = (record["tag"] == tag and "sha256:" + hashlib.sha256(config).hexdigest() == record["id"]
              and diff_ids == [layer["diff_id"] for layer in layers]
              and all(isinstance(layer["size"], int) for layer in layers))
        for layer in layers:
            _hex(layer["diff_id"])
    except (KeyError, TypeError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise ImageStoreCorrupt(f"{store.url}: the record of {tag} is inconsistent (its config, "
                                f"id and layers do not agree)")
    return record


def _loads(data: bytes, key: str) -> dict:
    try:
        record = json_value(data)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise ImageStoreCorrupt(f"{key} is not an image record")
    return record


def pull(store: Store, tag: str, log: Callable[[str], None] = print) -> dict:
    """Load the tag's image from the store; every byte is checked before the engine can use it.
    An image already here under the tag is kept (the tag names its definition: it is as good)."""
    from docker.errors import ImageNotFound
    start = time.monotonic()
    try:
        return {"tag": tag, "id": client().images.get(tag).id, "action": "up to date", "seconds": 0.0}
    except ImageNotFound:
        pass
    record = fetch_record(store, tag)
    if record is None:
        raise ImageMissing(f"{store.url} has no image {tag}", hint="push it from a machine that has "
                           "it (`xbuild images push`), or build it here (`xbuild images build`)")
    present, got = _present_layers(record), [0]
    size = sum(layer["size"] for layer in record["layers"][present:])
    log(f"pulling {tag} from {store.url} ({size / 1e6:.0f} MB unpacked, "
        f"{len(record['layers']) - present} of {len(record['layers'])} layers)")
    out = client().api.load_image(_load_stream(store, record, present, got, log), quiet=True)
    for message in out:  # the engine reports a failed load in the stream, not as a status
        if "error" in message:
            raise ImageStoreCorrupt(f"the engine refused {tag} from {store.url}: {message['error']}")
    loaded = client().images.get(tag)
    if loaded.id != record["id"]:
        client().images.remove(tag)  # never leave an image other than the record's under its tag
        raise ImageStoreCorrupt(f"{tag} loaded as {loaded.id}, not the record's {record['id']}")
    return {"tag": tag, "id": record["id"], "action": "pulled", "downloaded_bytes": got[0],
            "size": sum(layer["size"] for layer in record["layers"]),
            "seconds": round(time.monotonic() - start, 2)}


def _present_layers(record: dict) -> int:
    """How many of the image's first layers the engine has already (a parent image is here):
    the engine skips a layer it has, so those are sent as empty files."""
    from docker.errors import ImageNotFound
    diff_ids = [layer["diff_id"] for layer in record["layers"]]
    for parent in record.get("parents", []):
        try:
            have = client().images.get(parent).attrs["RootFS"]["Layers"]
        except ImageNotFound:
            continue
        if have == diff_ids[:len(have)]:
            return len(have)
    return 0


def _load_stream(store: Store, record: dict, present: int, got: list[int],
                 log: Callable[[str], None]) -> Iterator[bytes]:
    """The `docker load` archive, made as it is sent: layers (checked), config, manifest.json last."""
    names = []
    for i, layer in enumerate(record["layers"]):
        name = f"{_hex(layer['diff_id'])}/layer.tar"
        names.append(name)
        if i < present:
            yield _header(name, 0)
            continue
        log(f"layer {i + 1}/{len(record['layers'])}: {layer['diff_id'][7:19]} "
            f"({layer['size'] / 1e6:.0f} MB)")
        yield _header(name, layer["size"])
        yield from _verified(store, layer, got)
        yield _padding(layer["size"])
    config = record["config"].encode()
    config_name = _hex(record["id"]) + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [record["tag"]], "Layers": names}]).encode()
    for name, data in ((config_name, config), ("manifest.json", manifest)):
        yield _header(name, len(data)) + data + _padding(len(data))
    yield b"\0" * 1024  # end of archive


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % 512)


def _verified(store: Store, layer: dict, got: list[int]) -> Iterator[bytes]:
    """A blob's tar, uncompressed as it arrives, refused (mid-stream, before manifest.json is
    sent) unless it is a whole gzip stream whose content has the record's size and sha256 (the
    diff_id, which the config names too: the content is what is checked, not its packing)."""
    key = blob_key(layer["diff_id"])
    content, size = hashlib.sha256(), 0
    unpacker = zlib.decompressobj(31)
    try:
        with store.open(key) as src:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                got[0] += len(chunk)
                data = unpacker.decompress(chunk, CHUNK)
                while data:
                    size += len(data)
                    if size > layer["size"]:  # bounded: a planted blob cannot fill the disk
                        raise ImageStoreCorrupt(f"{store.url}: {key} is larger than its record")
                    content.update(data)
                    yield data
                    data = unpacker.decompress(unpacker.unconsumed_tail, CHUNK)
    except zlib.error as exc:
        raise ImageStoreCorrupt(f"{store.url}: {key} is not a gzip stream: {exc}") from None
    if not unpacker.eof or size != layer["size"] or "sha256:" + content.hexdigest() != layer["diff_id"]:
        raise ImageStoreCorrupt(f"{store.url}: {key} fails its checksum: it is not the layer "
                                f"{layer['diff_id']}")


# --- what builds use (images.ensure) ---------------------------------------------------------
def fetch(tag: str, log: Callable[[str], None]) -> bool:
    """Pull the tag from the shared store when it is there; False (with a log line on trouble)
    when it is not, so the caller builds it."""
    url = shared_url()
    if url is None:
        return False
    try:
        store = open_store(url)
        if store.read(record_key(tag)) is None:
            return False
        figures = pull(store, tag, log)
    except (StoreError, ImageStoreCorrupt, ImageMissing) as exc:
        log(f"could not pull {tag} from {url} ({exc.message}): building it instead")
        return False
    except Exception as exc:  # noqa: BLE001 - the engine refusing a load: build instead
        from docker.errors import DockerException
        from requests.exceptions import RequestException
        if not isinstance(exc, (DockerException, RequestException)):
            raise
        log(f"could not load {tag} from {url} ({exc}): building it instead")
        return False
    log(f"pulled {tag} in {figures['seconds']:.1f} s")
    return True


def publish(tag: str, parents: tuple[str, ...], log: Callable[[str], None]) -> None:
    """After a build: push the image when this process publishes (a worker, a CI runner with
    XBUILD_IMAGES_PUSH=1) and the store is shared. Never fails the build."""
    url = shared_url()
    if url is None or not publishing():
        return
    try:
        figures = push(open_store(url, create=True), tag, parents, log)
    except (StoreError, ImageStoreCorrupt, ImageMissing) as exc:
        log(f"could not publish {tag} to {url}: {exc.message}")
        return
    log(f"published {tag} to {url} ({figures['uploaded_bytes'] / 1e6:.0f} MB in "
        f"{figures['seconds']:.1f} s)")

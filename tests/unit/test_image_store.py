"""The checks a pull makes before the engine sees a byte, on a directory store (no engine)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shlex
from pathlib import Path

import pytest

from tests.helpers import parse_cli
from xbuild.containers import image_store
from xbuild.errors import ConfigError, ImageMissing, ImageStoreCorrupt
from xbuild.store import open_store

LAYER = b"a layer's tar, as docker save writes it\n" * 50_000  # 2 MB: several stream chunks
DIFF_ID = "sha256:" + hashlib.sha256(LAYER).hexdigest()


@pytest.fixture
def store(tmp_path):
    return open_store(str(tmp_path / "store"))


def _put_blob(store, data: bytes, diff_id: str = DIFF_ID) -> None:
    store.write(image_store.blob_key(diff_id), data)


def _stream(store, size: int = len(LAYER)) -> bytes:
    return b"".join(image_store._verified(store, {"diff_id": DIFF_ID, "size": size}, [0]))


def test_a_good_blob_streams_back_its_layer(store):
    _put_blob(store, gzip.compress(LAYER, 1))
    assert _stream(store) == LAYER


@pytest.mark.parametrize("stored", [
    gzip.compress(LAYER.replace(b"layer", b"LAYER"), 1),   # planted: same size, other content
    gzip.compress(LAYER, 1)[:-100],                         # truncated
    b"not gzip at all" * 10,
    gzip.compress(LAYER + b"x" * (4 << 20), 1),             # more than the record says (a bomb)
], ids=["planted", "truncated", "not-gzip", "too-large"])
def test_a_bad_blob_is_refused(store, stored):
    _put_blob(store, stored)
    with pytest.raises(ImageStoreCorrupt):
        _stream(store)


def test_a_too_large_blob_stops_at_the_recorded_size(store):
    _put_blob(store, gzip.compress(b"\0" * (64 << 20), 1))  # 64 MB of zeros, 64 KB stored
    got = []
    with pytest.raises(ImageStoreCorrupt, match="larger than its record"):
        for chunk in image_store._verified(store, {"diff_id": DIFF_ID, "size": len(LAYER)}, [0]):
            got.append(len(chunk))
    assert sum(got) <= len(LAYER)


def _record(tag="xbuild/deps:x-1", **change) -> dict:
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [DIFF_ID]}})
    record = {"tag": tag, "id": "sha256:" + hashlib.sha256(config.encode()).hexdigest(),
              "config": config, "layers": [{"diff_id": DIFF_ID, "size": len(LAYER)}], "parents": []}
    return record | change


def test_a_consistent_record_is_read(store):
    store.write(image_store.record_key("xbuild/deps:x-1"), json.dumps(_record()).encode())
    assert image_store.fetch_record(store, "xbuild/deps:x-1")["layers"][0]["diff_id"] == DIFF_ID
    assert image_store.fetch_record(store, "xbuild/deps:other-2") is None


@pytest.mark.parametrize("change", [
    {"id": "sha256:" + "0" * 64},                                   # config is not the image id
    {"layers": [{"diff_id": "sha256:" + "1" * 64, "size": 1}]},     # layers the config does not name
    {"tag": "xbuild/deps:someone-else"},                            # another tag's record
    {"layers": [{"diff_id": "../../etc", "size": 1}]},
    {"config": 5},
], ids=["id", "layers", "tag", "digest", "config"])
def test_an_inconsistent_record_is_refused(store, change):
    store.write(image_store.record_key("xbuild/deps:x-1"), json.dumps(_record(**change)).encode())
    with pytest.raises(ImageStoreCorrupt):
        image_store.fetch_record(store, "xbuild/deps:x-1")


def test_garbage_record_is_refused(store):
    store.write(image_store.record_key("xbuild/deps:x-1"), b"[1, 2]")
    with pytest.raises(ImageStoreCorrupt):
        image_store.fetch_record(store, "xbuild/deps:x-1")


@pytest.mark.parametrize("tag", ["debian:bookworm", "xbuild/deps", "xbuild/../x:y", "evil/base:x"])
def test_only_xbuild_tags_have_records(tag):
    with pytest.raises((ImageMissing, ConfigError)):
        image_store.record_key(tag)


def test_record_and_blob_keys():
    assert image_store.record_key("xbuild/builder:trixie-armhf-cross-73a5") == \
        "images/tags/builder/trixie-armhf-cross-73a5.json"
    assert image_store.blob_key(DIFF_ID) == f"images/blobs/{DIFF_ID[7:]}.gz"


def test_only_a_configured_s3_store_is_used_by_builds(monkeypatch):
    monkeypatch.delenv("XBUILD_STORE", raising=False)
    assert image_store.shared_url() is None              # the local default: never
    monkeypatch.setenv("XBUILD_STORE", "/srv/store")
    assert image_store.shared_url() is None              # a directory: push/pull only
    monkeypatch.setenv("XBUILD_STORE", "s3://bucket/farm")
    assert image_store.shared_url() == "s3://bucket/farm"


# --- examples/ci: the commands and variables the CI recipes use exist ---------------------------
CI = Path(__file__).resolve().parents[2] / "examples" / "ci"
# An xbuild command line in a step (`sudo "$(command -v xbuild)" ...` too), up to a pipe, a
# redirection or a comment.
_COMMAND = re.compile(r"""(?:^|[\s"(])xbuild(?:\)")?[ \t]+([^|>&#\n]+)""")
_PLACEHOLDERS = {"${{ matrix.target }}": "rpi3", '"$TARGET"': "rpi3"}


def _commands(path: Path) -> list[list[str]]:
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    found = []
    for match in _COMMAND.finditer("\n".join(lines)):
        args = match.group(1)
        for placeholder, value in _PLACEHOLDERS.items():
            args = args.replace(placeholder, value)
        found.append(shlex.split(args))
    return found


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_recipes_run_real_xbuild_commands(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the build's project "." must exist: any directory does
    commands = _commands(CI / name)
    ran = {parse_cli(args).name for args in commands}
    # install and check the machine, pull the images, build
    assert {"install", "doctor", "pull", "build"} <= ran, commands
    assert ["images", "pull", "--target", "rpi3"] in commands
    assert any(args[:2] == ["--target", "rpi3"] and "--json" in args for args in commands)


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_recipes_set_variables_xbuild_reads(name):
    text = (CI / name).read_text()
    assert "\t" not in text  # YAML forbids tabs in indentation
    source = "\n".join(p.read_text() for p in (CI.parents[1] / "xbuild").rglob("*.py"))
    names = set(re.findall(r"\bXBUILD_[A-Z0-9_]+", text))
    assert {"XBUILD_STORE", "XBUILD_IMAGES_PUSH"} <= names
    assert all(f'"{n}"' in source for n in names), names - {n for n in names if f'"{n}"' in source}
    assert re.search(r"XBUILD_STORE: s3://", text)  # images are shared through S3 only


def test_a_worker_publishes_the_images_it_builds_unless_told_not_to(monkeypatch):
    from celery.signals import worker_init

    import xbuild.service.celery_app  # noqa: F401 - connects its worker_init handler
    monkeypatch.setenv("XBUILD_IMAGES_PUSH", "")  # so that monkeypatch restores it, unset or not,
    monkeypatch.delenv("XBUILD_IMAGES_PUSH")      # after the handler has set it
    assert not image_store.publishing()  # the CLI: only when asked
    worker_init.send(sender=None)
    assert image_store.publishing()
    monkeypatch.setenv("XBUILD_IMAGES_PUSH", "0")
    worker_init.send(sender=None)
    assert not image_store.publishing()

"""Images through a real store (SeaweedFS): push, remove, pull gives the same image; a build pulls
instead of building; a corrupted layer never loads and the build makes the image itself.

Each test uses a throwaway image (one small layer on the host's trixie base, which the rpi3 cross
builder needs anyway), so no image other tests share is removed."""

from __future__ import annotations

import contextlib
import gzip
import json
import uuid

import pytest

from tests.helpers import xbuild
from xbuild.containers import image_store, images
from xbuild.errors import ImageMissing, ImageStoreCorrupt
from xbuild.store import open_store

pytestmark = pytest.mark.integration


@pytest.fixture
def throwaway(engine):
    """A definition of our own: built here, removed afterwards."""
    from xbuild.board.targets import host_arch
    from xbuild.containers.engine import client
    base = images.base_def(host_arch(), "trixie", "linux/amd64")
    images.ensure(base, lambda line: None)
    nonce = uuid.uuid4().hex[:12]
    defn = images.ImageDef(f"xbuild/deps:test-imgstore-{nonce}", "deps", base.platform,
                           ((images.LABEL, "deps"),),
                           f"FROM {base.tag}\nRUN echo {nonce} > /nonce\n", base)
    yield defn
    with contextlib.suppress(Exception):  # already gone
        client().images.remove(defn.tag, force=True)


@pytest.fixture
def bucket(s3_env, monkeypatch):
    url = f"s3://imgstore-{uuid.uuid4().hex[:10]}/farm"
    monkeypatch.setenv("XBUILD_STORE", url)
    monkeypatch.delenv("XBUILD_IMAGES_PUSH", raising=False)  # builds publish only where a test asks
    return open_store(url, create=True)


def _remove(tag: str) -> None:
    from xbuild.containers.engine import client
    client().images.remove(tag, force=True)


def _present(tag: str) -> bool:
    from docker.errors import ImageNotFound

    from xbuild.containers.engine import client
    try:
        client().images.get(tag)
        return True
    except ImageNotFound:
        return False


def test_push_remove_pull_gives_the_same_image(throwaway, bucket):
    built = images.ensure(throwaway, lambda line: None)
    pushed = image_store.push(bucket, throwaway.tag, images.parents(throwaway), lambda line: None)
    assert pushed["action"] == "pushed" and pushed["id"] == built.id
    # Pushed again: the record is there with this id, nothing is uploaded.
    assert image_store.push(bucket, throwaway.tag, (), lambda line: None)["action"] == "up to date"
    keys = bucket.list("images")
    assert image_store.record_key(throwaway.tag) in keys
    assert len([k for k in keys if k.startswith("images/blobs/")]) == 2  # base layer + ours
    _remove(throwaway.tag)
    pulled = image_store.pull(bucket, throwaway.tag, lambda line: None)
    assert pulled["id"] == built.id
    from xbuild.containers.engine import client
    out = client().containers.run(throwaway.tag, ["cat", "/nonce"], remove=True)
    assert out.decode().strip() == throwaway.tag.rsplit("-", 1)[1]
    # The base is on this machine: only our own layer travelled (gzip'd, a few hundred bytes).
    assert 0 < pulled["downloaded_bytes"] < 10_000


def test_ensure_pulls_instead_of_building(throwaway, bucket):
    images.ensure(throwaway, lambda line: None)
    image_store.push(bucket, throwaway.tag, images.parents(throwaway), lambda line: None)
    _remove(throwaway.tag)
    log: list[str] = []
    image = images.ensure(throwaway, log.append)
    assert not image.built
    assert any(line.startswith(f"pulled {throwaway.tag}") for line in log), log
    assert not any("building" in line or line.startswith("Step ") for line in log), log


def _corrupt_top_layer(store, tag: str) -> None:
    """Replace the image's own layer with other content of the same size, as a hostile writer or a
    broken disk would: a valid gzip stream, so only the content check can catch it."""
    record = json.loads(store.read(image_store.record_key(tag)))
    key = image_store.blob_key(record["layers"][-1]["diff_id"])
    tar = bytearray(gzip.decompress(store.read(key)))
    at = tar.index(b"nonce")
    tar[at:at + 5] = b"NONCE"
    store.write(key, gzip.compress(bytes(tar)))


def test_a_corrupted_layer_never_loads_and_ensure_builds_instead(throwaway, bucket, monkeypatch):
    images.ensure(throwaway, lambda line: None)
    image_store.push(bucket, throwaway.tag, images.parents(throwaway), lambda line: None)
    _corrupt_top_layer(bucket, throwaway.tag)
    _remove(throwaway.tag)
    with pytest.raises(ImageStoreCorrupt, match="fails its checksum"):
        image_store.pull(bucket, throwaway.tag, lambda line: None)
    assert not _present(throwaway.tag)  # nothing half-loaded under the tag
    log: list[str] = []
    image = images.ensure(throwaway, log.append)
    assert image.built
    assert any(line.startswith(f"could not pull {throwaway.tag}") for line in log), log
    assert any(line.startswith(f"building {throwaway.tag}") for line in log), log


def test_a_build_publishes_its_image_when_asked(throwaway, bucket, monkeypatch):
    log: list[str] = []
    images.ensure(throwaway, log.append)  # not asked: nothing goes to the store
    assert bucket.read(image_store.record_key(throwaway.tag)) is None
    _remove(throwaway.tag)
    monkeypatch.setenv("XBUILD_IMAGES_PUSH", "1")  # a CI runner; a worker sets it by default
    image = images.ensure(throwaway, log.append)
    record = image_store.fetch_record(bucket, throwaway.tag)
    assert record is not None and record["id"] == image.id
    assert record["parents"] == list(images.parents(throwaway))
    assert any(line.startswith(f"published {throwaway.tag}") for line in log), log


def test_cli_push_then_pull_the_boards_images(builds, bucket, tmp_path):
    builds.get("hello-make", "rpi3")  # the rpi3 cross builder and runtime are here
    push = xbuild("images", "push", "-t", "rpi3", "--json")
    assert push.returncode == 0, push.stderr
    pushed = json.loads(push.stdout)
    tags = [i["tag"] for i in pushed["images"]]
    assert any(t.startswith("xbuild/builder:") for t in tags) and any(t.startswith("xbuild/base:") for t in tags)
    assert all(i["action"] == "pushed" for i in pushed["images"])
    for tag in tags:
        assert image_store.fetch_record(bucket, tag) is not None
    # Everything is here already: a pull keeps the local images and says so.
    pull = xbuild("images", "pull", "-t", "rpi3", "--json")
    assert pull.returncode == 0, pull.stderr
    assert [(i["tag"], i["action"]) for i in json.loads(pull.stdout)["images"]] == \
        [(t, "up to date") for t in tags]


def test_pull_of_an_image_the_store_lacks(throwaway, bucket):
    with pytest.raises(ImageMissing, match="has no image") as err:
        image_store.pull(bucket, throwaway.tag, lambda line: None)
    assert err.value.exit_code == 40
    log: list[str] = []
    assert images.ensure(throwaway, log.append).built  # a build just builds it, quietly
    assert not any("could not pull" in line for line in log), log
